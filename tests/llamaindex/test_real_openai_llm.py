"""The real llama-index ``OpenAI`` LLM (llama-index-llms-openai) over HTTP against FakeOpenAIServer.

* HeadroomLLM + HeadroomMemoryBlock in ``Memory``: the memories reach the model once;
* HeadroomMemory with a plain LLM: facts are stored (one extraction call) and recalled later, and
  no ``<memory>`` block ever reaches the user.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.memory import ChatMemoryBuffer, Memory
from llama_index.core.memory.memory import InsertMethod

from headroom.inline.injection import INSTRUCTION_MARKER
from headroom.memory import HierarchicalMemory, MemoryFilter
from headroom.testing.fake_openai import FakeOpenAIServer
from headroom_llamaindex import (
    HeadroomChatStore,
    HeadroomDBChatStore,
    HeadroomLLM,
    HeadroomMemory,
    HeadroomMemoryBlock,
    headroom_memory_blocks_template,
)
from headroom_llamaindex.headroom_memory import EXTRACTION_SYSTEM_PROMPT

pytest.importorskip("llama_index.llms.openai")
from llama_index.llms.openai import OpenAI

FACT = "User likes Rust"
BLOCK = f'<memory>{{"memories": [{{"content": "{FACT}"}}]}}</memory>'


def responder(request: dict[str, Any]) -> str:
    """A model that follows instructions: a block only when asked for one, about Rust only."""
    text = json.dumps(request["messages"])
    said_rust = "I like Rust" in text
    if EXTRACTION_SYSTEM_PROMPT[:40] in text:
        return BLOCK if said_rust else '<memory>{"memories": []}</memory>'
    if INSTRUCTION_MARKER in text and said_rust:
        return f"Noted. {BLOCK}"
    return "You like Rust." if FACT in text else "Noted."


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(responder, chunk_size=4) as fake:
        yield fake


def openai_llm(server: FakeOpenAIServer) -> OpenAI:
    return OpenAI(model="gpt-4o-mini", api_base=server.base_url, api_key="sk-test", max_retries=0)


def contents(hm: HierarchicalMemory, user_id: str = "alice") -> list[str]:
    return [m.content for m in hm.sync.query(MemoryFilter(user_id=user_id))]


@pytest.mark.parametrize("insert_method", [InsertMethod.SYSTEM, InsertMethod.USER])
async def test_llm_and_block_inject_once(
    hm: HierarchicalMemory, server: FakeOpenAIServer, insert_method: InsertMethod
) -> None:
    hm.sync.add(FACT, "alice")
    llm = HeadroomLLM(openai_llm(server), user_id="alice", session_id="s1", memory=hm)
    memory = Memory.from_defaults(
        session_id="s1",
        chat_store=HeadroomDBChatStore(memory=hm),
        memory_blocks=[HeadroomMemoryBlock(memory=hm, user_id="alice", session_id="s1")],
        memory_blocks_template=headroom_memory_blocks_template(),
        insert_method=insert_method,
    )
    chat = SimpleChatEngine.from_defaults(llm=llm, memory=memory)
    reply = await chat.achat("Which language do I like?")
    assert str(reply) == "You like Rust."
    sent = json.dumps(server.requests[-1]["messages"])
    assert sent.count(FACT) == 1  # once: the block's, not the block's and the LLM's
    assert sent.count("<headroom_context>\\n") == 1  # (the instruction names the tag too)
    assert sent.count(INSTRUCTION_MARKER) == 1  # HeadroomLLM still asks for facts


def test_llm_and_block_keep_block_refs_for_supersession(
    hm: HierarchicalMemory, server: FakeOpenAIServer
) -> None:
    old = hm.sync.add("User lives in Paris", "alice")
    server.responder = lambda request: (
        'Noted. <memory>{"memories": [{"content": "User lives in Berlin", "supersedes": "m1"}]}'
        "</memory>"
    )
    llm = HeadroomLLM(openai_llm(server), user_id="alice", memory=hm)
    memory = Memory.from_defaults(
        session_id="s",
        memory_blocks=[HeadroomMemoryBlock(memory=hm, user_id="alice")],
        memory_blocks_template=headroom_memory_blocks_template(),
    )
    chat = SimpleChatEngine.from_defaults(llm=llm, memory=memory)
    assert str(chat.chat("I moved from Paris to Berlin; where do I live?")) == "Noted."
    assert contents(hm) == ["User lives in Berlin"]
    assert next(m.content for m in hm.sync.get_history(old.id)) == "User lives in Paris"


def test_headroom_memory_with_a_plain_llm_stores_and_recalls(
    hm: HierarchicalMemory, server: FakeOpenAIServer
) -> None:
    llm = openai_llm(server)
    memory = HeadroomMemory.from_defaults(user_id="alice", llm=llm, session_id="s1", memory=hm)
    chat = SimpleChatEngine.from_defaults(llm=llm, memory=memory)
    reply = chat.chat("Hi! I like Rust.")
    assert str(reply) == "Noted." and "<memory" not in str(reply)
    assert contents(hm) == [FACT]
    assert all(
        INSTRUCTION_MARKER not in json.dumps(r) or EXTRACTION_SYSTEM_PROMPT[:40] in json.dumps(r)
        for r in server.requests
    )  # the chat model itself is never asked for a block
    assert "<memory" not in json.dumps([m.content for m in memory.get_all()])

    # a new engine, a new session: the fact is recalled into the model's prompt
    later = HeadroomMemory.from_defaults(user_id="alice", llm=llm, session_id="s2", memory=hm)
    chat2 = SimpleChatEngine.from_defaults(llm=llm, memory=later)
    assert str(chat2.chat("Which language do I like?")) == "You like Rust."
    question = next(r for r in server.requests if "Which language" in json.dumps(r))
    assert FACT in json.dumps(question["messages"])
    bob = HeadroomMemory.from_defaults(user_id="bob", llm=llm, memory=hm)
    assert FACT not in json.dumps([m.content for m in bob.get("Which language?")])
    assert contents(hm) == [FACT]


async def test_headroom_memory_async_and_streaming(
    hm: HierarchicalMemory, server: FakeOpenAIServer
) -> None:
    llm = openai_llm(server)
    memory = HeadroomMemory.from_defaults(
        user_id="alice",
        llm=llm,
        memory=hm,
        primary_memory=ChatMemoryBuffer.from_defaults(
            chat_store=HeadroomChatStore(memory=hm), chat_store_key="s"
        ),
    )
    chat = SimpleChatEngine.from_defaults(llm=llm, memory=memory)
    streamed = await chat.astream_chat("I like Rust, remember it.")
    text = "".join([token async for token in streamed.async_response_gen()])
    assert text == "Noted."
    for _ in range(100):  # the engine writes the reply to memory in a task of its own
        if contents(hm):
            break
        await asyncio.sleep(0.1)
    assert contents(hm) == [FACT]
    reply = await chat.achat("Which language do I like?")
    assert str(reply) == "You like Rust."


async def test_block_with_llm_extracts_flushed_messages(
    hm: HierarchicalMemory, server: FakeOpenAIServer
) -> None:
    """A HeadroomMemoryBlock next to a plain LLM stores facts when Memory flushes messages."""
    llm = openai_llm(server)
    block = HeadroomMemoryBlock(user_id="alice", memory=hm, llm=llm)
    memory = Memory.from_defaults(
        session_id="s",
        token_limit=120,
        chat_history_token_ratio=0.5,
        token_flush_size=20,
        memory_blocks=[block],
        memory_blocks_template=headroom_memory_blocks_template(),
    )
    chat = SimpleChatEngine.from_defaults(llm=llm, memory=memory)
    await chat.achat("Hi! I like Rust, remember it.")
    for turn in range(6):  # enough turns to push the first one out of the short-term queue
        await chat.achat(f"Tell me something about the number {turn}.")
    assert contents(hm) == [FACT]
    assert any(EXTRACTION_SYSTEM_PROMPT[:40] in json.dumps(r) for r in server.requests)
    no_llm = HeadroomMemoryBlock(user_id="bob", memory=hm)
    await no_llm._aput([])  # recall-only block: nothing to do, nothing raised
