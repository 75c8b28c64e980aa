"""HeadroomMiddleware with langchain.agents.create_agent (sync and async)."""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool

from headroom.inline.injection import INSTRUCTION_MARKER
from headroom.memory import HierarchicalMemory
from headroom_langchain import HeadroomMemory, HeadroomMiddleware


def test_agent_stores_strips_and_recalls(
    hm: HierarchicalMemory, scripted: Any, memory_block: Any, contents: Any
) -> None:
    llm = scripted(replies=[f"Got it. {memory_block('User is vegetarian')}", "Try a lentil curry."])
    memory = HeadroomMemory(hm, user_id="alice")
    middleware = memory.middleware()
    assert isinstance(middleware, HeadroomMiddleware)
    agent = create_agent(llm, tools=[], system_prompt="You are a cook.", middleware=[middleware])

    state = agent.invoke({"messages": [HumanMessage("I am vegetarian.")]})
    final = state["messages"][-1]
    assert isinstance(final, AIMessage) and final.content == "Got it."
    assert contents(hm, "alice") == ["User is vegetarian"]
    sent = llm.calls[0]
    assert isinstance(sent[0], SystemMessage)
    assert str(sent[0].content).startswith("You are a cook.") and INSTRUCTION_MARKER in str(
        sent[0].content
    )

    state = agent.invoke({"messages": [HumanMessage("What should the user cook tonight?")]})
    assert state["messages"][-1].content == "Try a lentil curry."
    assert "User is vegetarian" in str(llm.calls[1][-1].content)
    # the injection is per call: the state keeps the user's own words
    assert state["messages"][0].content == "What should the user cook tonight?"


async def test_agent_async_with_tools_and_context_identity(
    hm: HierarchicalMemory, scripted: Any, memory_block: Any, contents: Any
) -> None:
    @tool
    def weather(city: str) -> str:
        """The weather in a city."""
        return f"Sunny in {city}"

    call = AIMessage(
        content="", tool_calls=[{"name": "weather", "args": {"city": "Oslo"}, "id": "c1"}]
    )
    llm = scripted(
        replies=[call, f"Sunny in Oslo. {memory_block('User lives in Oslo')}", "Yes, Oslo."]
    )
    memory = HeadroomMemory(hm, user_id="default-user")
    agent = create_agent(llm, tools=[weather], middleware=[memory.middleware()])

    state = await agent.ainvoke(
        {"messages": [HumanMessage("Weather at home? I live in Oslo.")]}, context={"user_id": "bob"}
    )
    texts = [m.content for m in state["messages"]]
    assert texts[-1] == "Sunny in Oslo." and "Sunny in Oslo" in texts[-2]
    assert len(llm.calls) == 2
    assert contents(hm, "bob") == ["User lives in Oslo"]
    assert contents(hm, "default-user") == []

    state = await agent.ainvoke(
        {"messages": [HumanMessage("Where do I live?")]}, context={"user_id": "bob"}
    )
    assert "User lives in Oslo" in str(llm.calls[2][-1].content)
    assert state["messages"][-1].content == "Yes, Oslo."
