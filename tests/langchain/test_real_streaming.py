"""Fault 1 of issue 12: streaming agents never leak the raw ``<memory>`` block.

Real framework objects only: ``langchain_openai.ChatOpenAI`` over HTTP against the project's
FakeOpenAIServer, ``langchain.agents.create_agent``, the RunnableBinding that ``bind_tools``
returns, a LangGraph ``StateGraph``, LangGraph ``stream_mode="messages"`` and ``astream_events``.
Before the fix, ``create_agent(memory.wrap(llm), tools)`` and ``middleware()`` both streamed
``...}]}</memory>`` to the client.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from headroom.memory import HierarchicalMemory
from headroom.testing import FakeOpenAIServer
from headroom_langchain import HeadroomMemory

FACT = "User lives in Oslo"
BLOCK = f'<memory>{{"memories": [{{"content": "{FACT}", "category": "fact"}}]}}</memory>'
ANSWER = "Sunny in Oslo today."


def responder(request: dict[str, Any]) -> str | dict[str, Any]:
    """A tool call first (when tools are offered), then an answer with a block (when instructed)."""
    messages = request["messages"]
    if request.get("tools") and not any(m["role"] == "tool" for m in messages):
        call = {"id": "c1", "type": "function",
                "function": {"name": "weather", "arguments": json.dumps({"city": "Oslo"})}}  # fmt: skip
        return {"content": None, "tool_calls": [call]}
    instructed = any(m["role"] == "system" and "<memory>" in str(m["content"]) for m in messages)
    return f"{ANSWER} {BLOCK}" if instructed else ANSWER  # a block only when asked, like a model


@tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(responder, chunk_size=3) as srv:
        yield srv


@pytest.fixture
def llm(server: FakeOpenAIServer) -> ChatOpenAI:
    return ChatOpenAI(base_url=server.base_url, api_key="test", model="gpt-4o-mini", max_retries=0)


def _agent(kind: str, memory: HeadroomMemory, llm: ChatOpenAI) -> Any:
    if kind == "wrap":
        return create_agent(memory.wrap(llm), [weather])
    return create_agent(llm, [weather], middleware=[memory.middleware()])


def _check(chunks: list[Any], hm: HierarchicalMemory, contents: Any) -> None:
    ai = [c for c in chunks if isinstance(c, AIMessageChunk)]
    texts = [str(c.content) for c in ai]
    assert ai and "".join(texts).strip() == ANSWER
    for text in texts:
        assert "<" not in text and "memory" not in text and "}" not in text
    assert contents(hm, "alice") == [FACT]


@pytest.mark.parametrize("kind", ["wrap", "middleware"])
def test_agent_stream_messages_sync(
    kind: str, hm: HierarchicalMemory, llm: ChatOpenAI, contents: Any
) -> None:
    agent = _agent(kind, HeadroomMemory(hm, user_id="alice"), llm)
    chunks = [
        chunk
        for chunk, _meta in agent.stream(
            {"messages": [HumanMessage("Weather at home?")]}, stream_mode="messages"
        )
    ]
    _check(chunks, hm, contents)


@pytest.mark.parametrize("kind", ["wrap", "middleware"])
async def test_agent_stream_messages_async(
    kind: str, hm: HierarchicalMemory, llm: ChatOpenAI, contents: Any
) -> None:
    agent = _agent(kind, HeadroomMemory(hm, user_id="alice"), llm)
    chunks = [
        chunk
        async for chunk, _meta in agent.astream(
            {"messages": [HumanMessage("Weather at home?")]}, stream_mode="messages"
        )
    ]
    _check(chunks, hm, contents)


@pytest.mark.parametrize("kind", ["wrap", "middleware"])
async def test_agent_astream_events_never_show_block(
    kind: str, hm: HierarchicalMemory, llm: ChatOpenAI, contents: Any
) -> None:
    agent = _agent(kind, HeadroomMemory(hm, user_id="alice"), llm)
    streamed: list[str] = []
    async for event in agent.astream_events(
        {"messages": [HumanMessage("Weather at home?")]}, version="v2"
    ):
        if event["event"] in ("on_chat_model_stream", "on_chat_model_end", "on_chain_end"):
            assert "</memory>" not in repr(event["data"]), event["event"]
        if event["event"] == "on_chat_model_stream":
            streamed.append(str(event["data"]["chunk"].content))
    assert "".join(streamed).strip() == ANSWER
    assert contents(hm, "alice") == [FACT]


async def test_bound_model_in_state_graph_streams_stripped(
    hm: HierarchicalMemory, llm: ChatOpenAI, contents: Any
) -> None:
    """A hand-built LangGraph graph whose node calls ``wrap(llm).bind_tools(...)`` (a binding)."""
    from langgraph.graph import START, MessagesState, StateGraph

    bound = HeadroomMemory(hm, user_id="alice").wrap(llm).bind_tools([weather])

    def answer(state: MessagesState) -> dict[str, Any]:
        return {"messages": [bound.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("answer", answer)
    builder.add_edge(START, "answer")
    graph = builder.compile()
    # the tool result is already in the history, so the model answers with text + block
    history = [
        HumanMessage("Weather at home?"),
        *[m for m in _tool_turn()],
    ]
    chunks = [c for c, _ in graph.stream({"messages": history}, stream_mode="messages")]
    _check(chunks, hm, contents)
    async_chunks = [
        c async for c, _ in graph.astream({"messages": history}, stream_mode="messages")
    ]
    assert "".join(str(c.content) for c in async_chunks if isinstance(c, AIMessageChunk)) == ANSWER


def _tool_turn() -> list[Any]:
    from langchain_core.messages import AIMessage, ToolMessage

    call = {"name": "weather", "args": {"city": "Oslo"}, "id": "c1"}
    return [
        AIMessage(content="", tool_calls=[call]),
        ToolMessage("Sunny in Oslo", tool_call_id="c1"),
    ]


def test_propagate_callbacks_traces_inner_run_without_streaming_it(
    hm: HierarchicalMemory, llm: ChatOpenAI
) -> None:
    """With ``propagate_callbacks=True`` a tracer sees the nested inner run, no streamer does.

    (LangChain passes no run manager to ``_stream`` on its streaming paths, so inner runs are
    nested on ``invoke``/``ainvoke`` only; streams are never nested, and never leak.)
    """

    class Tracer(BaseCallbackHandler):
        def __init__(self) -> None:
            self.tokens: list[str] = []
            self.starts = 0

        def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
            self.starts += 1

        def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
            self.tokens.append(token)

    tracer = Tracer()
    wrapped = HeadroomMemory(hm, user_id="alice").wrap(llm, propagate_callbacks=True)
    agent = create_agent(wrapped, [weather])
    chunks = [
        c
        for c, _ in agent.stream(
            {"messages": [HumanMessage("Weather?")]},
            {"callbacks": [tracer]},
            stream_mode="messages",
        )
    ]
    assert "</memory>" not in "".join(str(c.content) for c in chunks)
    assert "".join(tracer.tokens).count("</memory>") == 0

    tracer = Tracer()
    state = agent.invoke({"messages": [HumanMessage("Weather?")]}, {"callbacks": [tracer]})
    assert state["messages"][-1].content == ANSWER
    assert tracer.starts == 4  # two model calls, each an outer run and a nested inner run


@pytest.mark.parametrize("memory_first", [False, True])
def test_model_swapping_middleware_never_leaks(
    memory_first: bool, hm: HierarchicalMemory, llm: ChatOpenAI, contents: Any
) -> None:
    """With ``ModelFallbackMiddleware`` (which swaps ``request.model``) in either order."""
    from langchain.agents.middleware import ModelFallbackMiddleware

    def failing(request: dict[str, Any]) -> dict[str, Any]:
        return {"error": {"message": "primary down", "type": "server_error"}, "status": 500}

    with FakeOpenAIServer(failing) as down:
        primary = ChatOpenAI(base_url=down.base_url, api_key="t", model="gpt-4o", max_retries=0)
        memory = HeadroomMemory(hm, user_id="alice")
        fallback = ModelFallbackMiddleware(llm)
        middleware = (
            [memory.middleware(), fallback] if memory_first else [fallback, memory.middleware()]
        )
        agent = create_agent(primary, [weather], middleware=middleware)
        chunks = [
            c
            for c, _ in agent.stream(
                {"messages": [HumanMessage("Weather at home?")]}, stream_mode="messages"
            )
        ]
    text = "".join(str(c.content) for c in chunks if isinstance(c, AIMessageChunk))
    assert "memory" not in text and ANSWER in text
    # memory innermost: the fallback model is wrapped too, so its fact is stored; memory
    # outermost: the fallback model runs unwrapped (no instruction, so no block, nothing stored)
    assert contents(hm, "alice") == ([] if memory_first else [FACT])


async def test_consumer_stopping_early_closes_cleanly(
    hm: HierarchicalMemory, llm: ChatOpenAI
) -> None:
    wrapped = HeadroomMemory(hm, user_id="alice").wrap(llm)
    for chunk in wrapped.stream("Weather at home?"):
        assert "<" not in str(chunk.content)
        break
    async for chunk in wrapped.astream("Weather at home?"):
        assert "<" not in str(chunk.content)
        break
    assert (await wrapped.ainvoke("Weather at home?")).content == ANSWER  # still usable
