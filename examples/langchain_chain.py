"""One LCEL chain for many users: per-request identity, recall across sessions, streaming.

Run: python examples/langchain_chain.py
Offline by default (the project's scripted OpenAI-compatible server, through the real
langchain-openai ChatOpenAI); with OPENAI_API_KEY set it talks to OpenAI. Creates memory.db in the
working directory.
"""
# ruff: noqa: E402

import atexit
import os

from headroom.testing import FakeOpenAIServer

OFFLINE = not os.environ.get("OPENAI_API_KEY")
if OFFLINE:  # a local scripted model that follows Headroom's memory protocol
    server = FakeOpenAIServer().start()
    atexit.register(server.stop)
    os.environ.update(OPENAI_API_KEY="offline", OPENAI_BASE_URL=server.base_url)

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI

from headroom_langchain import HeadroomMemory

llm = ChatOpenAI(model="gpt-4o-mini")
prompt = ChatPromptTemplate.from_messages([("system", "You are helpful."), ("human", "{question}")])
memory = HeadroomMemory(db_path="memory.db", user_id="anonymous")
chain = prompt | memory.wrap(llm) | StrOutputParser()  # one chain serves every user


def ask(question: str, user_id: str, session_id: str) -> str:
    # the identity comes from your authenticated request, never from the message text
    config = {"configurable": {"user_id": user_id, "session_id": session_id}}
    return "".join(chain.stream({"question": question}, config))  # streamed, block removed


print(ask("I prefer Rust for systems work.", "alice", "morning"))  # fact extracted and stored
print(ask("Which language do I prefer for systems work?", "alice", "afternoon"))  # recalled
print(ask("Which language do I prefer for systems work?", "bob", "morning"))  # not alice's

assert "<memory>" not in ask("Which language do I prefer?", "alice", "evening")
if OFFLINE:
    assert "User prefers Rust" in ask("Which language do I prefer for systems work?", "alice", "x")
    assert "Rust" not in ask("Which language do I prefer for systems work?", "bob", "x")
memory.close()
