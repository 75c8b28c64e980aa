"""A create_agent agent with Headroom: middleware, a LangGraph store, streamed tokens.

Run: python examples/langchain_agent.py
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

from typing import TypedDict

from langchain.agents import create_agent
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from headroom_langchain import HeadroomMemory


class Context(TypedDict):
    user_id: str


@tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


llm = ChatOpenAI(model="gpt-4o-mini")
memory = HeadroomMemory(db_path="memory.db", user_id="anonymous")
store = memory.store()  # LangGraph store over the same memories: (user_id, "memories") = the user
agent = create_agent(
    llm, [weather], middleware=[memory.middleware()], store=store, context_schema=Context
)

store.put(("alice", "memories"), "diet", {"text": "User is vegetarian"})  # e.g. from onboarding
for question in ["I live in Oslo.", "Where do I live? Am I vegetarian?"]:
    stream = agent.stream(
        {"messages": [("user", question)]}, context={"user_id": "alice"}, stream_mode="messages"
    )
    for token, _metadata in stream:
        print(token.content, end="", flush=True)  # the <memory> block is never streamed
    print()

from headroom.memory import MemoryFilter

facts = [m.content for m in memory.memory.sync.query(MemoryFilter(user_id="alice"))]
print(facts)  # the store's item and the fact the agent's model extracted, both alice's
found = store.search(("alice",), query="what does the user eat")
print([(item.key, item.value, round(item.score or 0, 3)) for item in found])
if OFFLINE:
    assert sorted(facts) == ["User is vegetarian", "User lives in Oslo"]
    assert found[0].key == "diet" and found[0].score is not None
    reply = agent.invoke(
        {"messages": [("user", "Am I vegetarian?")]}, context={"user_id": "alice"}
    )["messages"][-1].content
    assert "vegetarian" in reply and "<memory>" not in reply
    other = agent.invoke({"messages": [("user", "Where do I live?")]}, context={"user_id": "bob"})
    assert "Oslo" not in other["messages"][-1].content
memory.close()
