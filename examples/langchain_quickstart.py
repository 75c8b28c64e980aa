"""LangChain quick start (README "Framework adapters"): a chain, an agent, a retriever, a history.

Run: python examples/langchain_quickstart.py
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

from langchain.agents import create_agent
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI

from headroom_langchain import HeadroomMemory

llm = ChatOpenAI(model="gpt-4o-mini")
prompt = ChatPromptTemplate.from_messages([("system", "You are helpful."), ("human", "{question}")])
memory = HeadroomMemory(db_path="memory.db", user_id="alice", session_id="morning")

chain = prompt | memory.wrap(llm) | StrOutputParser()  # inject, extract, strip (also streaming)
print(chain.invoke({"question": "I prefer Rust for systems work."}))
agent = create_agent(llm, tools=[], middleware=[memory.middleware()], store=memory.store())
state = agent.invoke({"messages": [("user", "Which language do I prefer for systems work?")]})
print(state["messages"][-1].content)  # recalled in the agent, from the chain's fact
docs = memory.as_retriever(k=3).invoke("favourite language")  # memories as Documents
history = memory.chat_history("morning")  # raw conversation, same database

print([d.page_content for d in docs])
assert any("Rust" in d.page_content for d in docs) or not OFFLINE
if OFFLINE:
    assert "User prefers Rust for systems work" in state["messages"][-1].content
    assert "<memory>" not in state["messages"][-1].content
memory.close()
