"""HeadroomMemory.wrap: LCEL chains with injection, extraction, stripping, streaming."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from headroom.inline.injection import INSTRUCTION_MARKER
from headroom.memory import HierarchicalMemory, MemoryFilter, ScopeLevel
from headroom_langchain import HeadroomChatModel, HeadroomMemory

PROMPT = ChatPromptTemplate.from_messages([("system", "You are helpful."), ("human", "{question}")])
ANSWER = "Noted, you like Rust."


def test_lcel_chain_recalls_user_fact_across_sessions(
    hm: HierarchicalMemory, scripted: Any, memory_block: Any
) -> None:
    llm = scripted(
        replies=[f"{ANSWER}\n{memory_block('User prefers Rust for systems work')}", "Use Rust."]
    )
    morning = HeadroomMemory(hm, user_id="alice", session_id="morning")
    chain = PROMPT | morning.wrap(llm) | StrOutputParser()

    assert chain.invoke({"question": "I love Rust for systems work."}) == ANSWER
    first = llm.calls[0]
    assert isinstance(first[0], SystemMessage)
    assert INSTRUCTION_MARKER in str(first[0].content)
    stored = hm.sync.query(MemoryFilter(user_id="alice"))
    assert [m.content for m in stored] == ["User prefers Rust for systems work"]
    assert stored[0].scope_level is ScopeLevel.USER
    assert stored[0].session_id == "morning"

    afternoon = HeadroomMemory(hm, user_id="alice", session_id="afternoon")
    chain2 = PROMPT | afternoon.wrap(llm) | StrOutputParser()
    assert chain2.invoke({"question": "Which language for systems work?"}) == "Use Rust."
    last_user = llm.calls[1][-1]
    assert isinstance(last_user, HumanMessage)
    assert "User prefers Rust for systems work" in str(last_user.content)
    assert str(last_user.content).rstrip().endswith("Which language for systems work?")
    # the prompt template's system message kept its text, the instruction was appended once
    assert str(llm.calls[1][0].content).startswith("You are helpful.")

    bob = HeadroomMemory(hm, user_id="bob")
    (PROMPT | bob.wrap(llm) | StrOutputParser()).invoke(
        {"question": "Which language for systems work?"}
    )
    assert "Rust for systems" not in llm.prompt_text(2)


async def test_ainvoke_and_batch(
    hm: HierarchicalMemory, scripted: Any, memory_block: Any, contents: Any
) -> None:
    llm = scripted(replies=[f"Hi! {memory_block('User is named Ada')}"])
    memory = HeadroomMemory(hm, user_id="ada", session_id="s1")
    chain = PROMPT | memory.wrap(llm) | StrOutputParser()
    assert await chain.ainvoke({"question": "My name is Ada"}) == "Hi!"
    assert contents(hm, "ada") == ["User is named Ada"]
    outputs = chain.batch([{"question": "hello"}, {"question": "what is my name?"}])
    assert outputs == ["Hi!", "Hi!"]
    assert contents(hm, "ada") == ["User is named Ada"]  # near-duplicate not stored twice
    assert "User is named Ada" in llm.prompt_text(-1)


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 8, 13])
def test_stream_never_shows_block(
    hm: HierarchicalMemory, scripted: Any, memory_block: Any, contents: Any, chunk_size: int
) -> None:
    reply = f"Sure, tabs it is. {memory_block('User prefers tabs')}"
    llm = scripted(replies=[reply], chunk_size=chunk_size)
    memory = HeadroomMemory(hm, user_id="u", session_id="s")
    chunks = list(
        (PROMPT | memory.wrap(llm) | StrOutputParser()).stream({"question": "I like tabs"})
    )
    assert "".join(chunks) == "Sure, tabs it is."
    assert all("<" not in c and "memory" not in c for c in chunks)
    assert len(chunks) > 1
    assert contents(hm, "u") == ["User prefers tabs"]


async def test_astream_and_events_never_show_block(
    hm: HierarchicalMemory, scripted: Any, memory_block: Any, contents: Any
) -> None:
    reply = f"Done. {memory_block('User works at Acme')} "
    llm = scripted(replies=[reply], chunk_size=3)
    memory = HeadroomMemory(hm, user_id="u")
    wrapped = memory.wrap(llm)
    chunks = [
        c
        async for c in (PROMPT | wrapped | StrOutputParser()).astream(
            {"question": "I work at Acme"}
        )
    ]
    assert "".join(chunks) == "Done."
    assert contents(hm, "u") == ["User works at Acme"]

    streamed: list[str] = []
    async for event in wrapped.astream_events([HumanMessage("hi")], version="v2"):
        if event["event"] == "on_chat_model_stream":
            streamed.append(str(event["data"]["chunk"].content))
    assert "".join(streamed) == "Done."


def test_history_blocks_stripped_and_tool_calls_pass_through(
    hm: HierarchicalMemory, scripted: Any, memory_block: Any
) -> None:
    tool_reply = AIMessage(
        content="", tool_calls=[{"name": "lookup", "args": {"q": "x"}, "id": "call_1"}]
    )
    llm = scripted(replies=[tool_reply])
    wrapped = HeadroomMemory(hm, user_id="u").wrap(llm)
    old = AIMessage(content=f"Earlier answer. {memory_block('old fact')}", id="a1")
    result = wrapped.invoke([HumanMessage("first", id="h1"), old, HumanMessage("second")])
    assert result.tool_calls and result.tool_calls[0]["id"] == "call_1"
    sent = llm.calls[0]
    assert sent[1].id == "h1" and sent[1].content == "first"  # earlier history byte-identical
    assert sent[2].content == "Earlier answer." and sent[2].id == "a1"
    assert isinstance(wrapped, HeadroomChatModel) and wrapped._llm_type == "headroom:scripted"
    assert wrapped.bind_tools([]).bound.model is llm  # type: ignore[attr-defined]


def test_list_content_reply_is_stripped(
    hm: HierarchicalMemory, scripted: Any, memory_block: Any, contents: Any
) -> None:
    parts = [
        {"type": "text", "text": "Hello <mem"},
        {"type": "text", "text": f"ory>{memory_block('x')[8:]} there"},
    ]
    llm = scripted(replies=[AIMessage(content=parts)])  # type: ignore[arg-type]
    result = HeadroomMemory(hm, user_id="u").wrap(llm).invoke("hi")
    text = "".join(p["text"] for p in result.content)  # type: ignore[index,union-attr]
    assert "memory" not in text and text.startswith("Hello") and text.endswith("there")
    assert contents(hm, "u") == ["x"]


def test_db_path_construction_owns_memory(tmp_path: Any, scripted: Any) -> None:
    from headroom.memory import MemoryConfig
    from headroom.testing import HashEmbedder

    cfg = MemoryConfig(db_path=tmp_path / "own.db", vector_dimension=64)
    with HeadroomMemory(config=cfg, embedder=HashEmbedder(64), user_id="u") as memory:
        assert memory.wrap(scripted(replies=["ok"])).invoke("hi").content == "ok"
        inner = memory.memory
    assert inner.closed


async def test_propagate_callbacks_nests_inner_run(
    hm: HierarchicalMemory, scripted: Any, memory_block: Any
) -> None:
    from langchain_core.callbacks import BaseCallbackHandler

    class Recorder(BaseCallbackHandler):
        def __init__(self) -> None:
            self.starts: list[tuple[str, Any]] = []

        def on_chat_model_start(
            self,
            serialized: Any,
            messages: Any,
            *,
            run_id: Any,
            parent_run_id: Any = None,
            **kw: Any,
        ) -> None:
            self.starts.append((str(run_id), parent_run_id))

    llm = scripted(replies=[f"ok {memory_block('fact')}"])
    wrapped = HeadroomMemory(hm, user_id="u").wrap(llm, propagate_callbacks=True)
    recorder = Recorder()
    assert wrapped.invoke("hi", config={"callbacks": [recorder]}).content == "ok"
    assert (await wrapped.ainvoke("hi", config={"callbacks": [recorder]})).content == "ok"
    assert len(recorder.starts) == 4
    outer_ids = {recorder.starts[0][0], recorder.starts[2][0]}
    assert recorder.starts[1][1] is not None and str(recorder.starts[1][1]) in outer_ids


def test_public_api() -> None:
    import headroom_langchain

    assert sorted(headroom_langchain.__all__) == [
        "HeadroomChatMessageHistory", "HeadroomChatModel", "HeadroomMemory",
        "HeadroomMiddleware", "HeadroomRetriever", "HeadroomStore",
    ]  # fmt: skip
    for name in headroom_langchain.__all__:
        assert getattr(headroom_langchain, name).__name__ == name
