"""HeadroomLLM with real LlamaIndex chat engines and a scripted LLM whose replies carry blocks."""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.chat_engine import CondensePlusContextChatEngine, SimpleChatEngine
from llama_index.core.llms import ChatMessage, MessageRole, TextBlock
from llama_index.core.memory import ChatMemoryBuffer, Memory
from llama_index.core.memory.memory import DEFAULT_MEMORY_BLOCKS_TEMPLATE

from headroom.inline.extraction import split_memory_block
from headroom.memory import HierarchicalMemory, MemoryFilter
from headroom_llamaindex import (
    HeadroomChatStore,
    HeadroomDBChatStore,
    HeadroomLLM,
    HeadroomMemoryBlock,
    HeadroomRetriever,
    headroom_memory_blocks_template,
)

FACT_REPLY = (
    "Nice to meet you, Alice! Rust is a great choice.\n"
    '<memory>{"memories": [{"content": "User\'s favourite programming language is Rust", '
    '"category": "preference", "importance": 0.9}]}</memory>'
)
RECALL_REPLY = 'You told me you love Rust.\n<memory>{"memories": []}</memory>'


def contents(hm: HierarchicalMemory, user_id: str = "alice") -> list[str]:
    return [m.content for m in hm.sync.query(MemoryFilter(user_id=user_id))]


def engine(llm: HeadroomLLM, store: HeadroomChatStore, key: str) -> SimpleChatEngine:
    buffer = ChatMemoryBuffer.from_defaults(chat_store=store, chat_store_key=key, token_limit=3000)
    return SimpleChatEngine.from_defaults(llm=llm, memory=buffer)


def test_simple_chat_engine_recalls_a_user_fact_in_a_new_session(
    hm: HierarchicalMemory, scripted: Any
) -> None:
    store = HeadroomChatStore(memory=hm)
    first_llm = scripted([FACT_REPLY])
    llm1 = HeadroomLLM(first_llm, user_id="alice", session_id="morning", memory=hm)
    reply = engine(llm1, store, "morning").chat("Hi, I'm Alice and my favourite language is Rust.")
    assert str(reply) == "Nice to meet you, Alice! Rust is a great choice."
    assert "<memory>" not in str(reply)
    stored = hm.sync.query(MemoryFilter(user_id="alice"))
    assert [m.content for m in stored] == ["User's favourite programming language is Rust"]
    assert stored[0].scope_level.value == "user" and stored[0].session_id == "morning"
    assert "[headroom-memory-instruction]" in first_llm.prompts[0]
    assert [m.content for m in store.get_messages("morning")][-1] == str(reply)

    second_llm = scripted([RECALL_REPLY])
    llm2 = HeadroomLLM(second_llm, user_id="alice", session_id="afternoon", memory=hm)
    reply2 = engine(llm2, store, "afternoon").chat("Which programming language do I like?")
    assert str(reply2) == "You told me you love Rust."
    prompt = second_llm.prompts[0]
    assert "<headroom_context>" in prompt
    assert "favourite programming language is Rust" in prompt
    assert "Hi, I'm Alice" not in prompt  # a new session: no chat history, only memories
    assert contents(hm) == ["User's favourite programming language is Rust"]
    # another user sharing the database sees nothing
    bob_llm = scripted(["hello bob"])
    HeadroomLLM(bob_llm, user_id="bob", memory=hm).chat(
        [ChatMessage(role="user", content="Which language?")]
    )
    assert "Rust" not in bob_llm.prompts[0]
    store.close()


async def test_async_chat_engine(hm: HierarchicalMemory, scripted: Any) -> None:
    store = HeadroomChatStore(memory=hm)
    llm = HeadroomLLM(
        scripted([FACT_REPLY, RECALL_REPLY]), user_id="alice", session_id="s", memory=hm
    )
    chat = engine(llm, store, "s")
    first = await chat.achat("My favourite language is Rust.")
    assert str(first) == "Nice to meet you, Alice! Rust is a great choice."
    second = await chat.achat("Which programming language do I like?")
    assert str(second) == "You told me you love Rust."
    history = [m.content for m in await store.aget_messages("s")]
    assert all("<memory" not in (text or "") for text in history)
    assert contents(hm) == ["User's favourite programming language is Rust"]
    store.close()


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 7, 11])
def test_stream_chat_hides_a_block_split_across_chunks(
    hm: HierarchicalMemory, scripted: Any, chunk_size: int
) -> None:
    inner = scripted([FACT_REPLY], chunk_size=chunk_size)
    llm = HeadroomLLM(inner, user_id="alice", memory=hm)
    chunks = list(llm.stream_chat([ChatMessage(role="user", content="I love Rust")]))
    deltas = "".join(c.delta or "" for c in chunks)
    visible = "Nice to meet you, Alice! Rust is a great choice."
    assert deltas == visible
    assert chunks[-1].message.content == visible
    assert all("<" not in (c.delta or "") for c in chunks)
    assert contents(hm) == ["User's favourite programming language is Rust"]


def test_streaming_chat_engine(hm: HierarchicalMemory, scripted: Any) -> None:
    store = HeadroomChatStore(memory=hm)
    llm = HeadroomLLM(scripted([FACT_REPLY], chunk_size=4), user_id="alice", memory=hm)
    response = engine(llm, store, "k").stream_chat("I love Rust")
    text = "".join(response.response_gen)
    assert text == "Nice to meet you, Alice! Rust is a great choice."
    assert [m.content for m in store.get_messages("k")][-1] == text
    assert contents(hm) == ["User's favourite programming language is Rust"]
    store.close()


async def test_astream_chat_and_completions(hm: HierarchicalMemory, scripted: Any) -> None:
    llm = HeadroomLLM(scripted([FACT_REPLY] * 4, chunk_size=3), user_id="alice", memory=hm)
    visible = "Nice to meet you, Alice! Rust is a great choice."
    gen = await llm.astream_chat([ChatMessage(role="user", content="I love Rust")])
    assert "".join([c.delta or "" async for c in gen]) == visible
    assert llm.complete("I love Rust").text == visible
    assert (await llm.acomplete("I love Rust")).text == visible
    stream = list(llm.stream_complete("I love Rust"))
    assert "".join(c.delta or "" for c in stream) == visible and stream[-1].text == visible
    assert contents(hm) == ["User's favourite programming language is Rust"]  # deduplicated


async def test_astream_complete(hm: HierarchicalMemory, scripted: Any) -> None:
    llm = HeadroomLLM(scripted([FACT_REPLY], chunk_size=2), user_id="alice", memory=hm)
    gen = await llm.astream_complete("I love Rust")
    parts = [c async for c in gen]
    assert parts[-1].text == "Nice to meet you, Alice! Rust is a great choice."
    assert contents(hm) == ["User's favourite programming language is Rust"]


def test_multimodal_and_metadata_pass_through(hm: HierarchicalMemory, scripted: Any) -> None:
    inner = scripted(["plain answer"])
    llm = HeadroomLLM(inner, user_id="alice", memory=hm)
    assert llm.metadata.model_name == "scripted"
    message = ChatMessage(role="user", content="describe", additional_kwargs={"tag": 1})
    assert llm.chat([message]).message.content == "plain answer"
    assert message.content == "describe"  # the caller's message is not mutated


def test_condense_plus_context_engine_with_retriever(hm: HierarchicalMemory, scripted: Any) -> None:
    hm.sync.add("User lives in Lisbon", "alice", category="fact", importance=0.8)
    hm.sync.add("Bob lives in Oslo", "bob")
    inner = scripted(
        [
            "You live in Lisbon.\n"
            '<memory>{"memories": [{"content": "User asked where they live", "scope": "session"}]}</memory>',
            "Standalone question: where does the user live now?",
            "Still Lisbon.",
        ]
    )
    llm = HeadroomLLM(inner, user_id="alice", session_id="s1", memory=hm)
    retriever = HeadroomRetriever(memory=hm, user_id="alice", session_id="s1", top_k=3)
    store = HeadroomChatStore(memory=hm)
    buffer = ChatMemoryBuffer.from_defaults(chat_store=store, chat_store_key="s1")
    chat = CondensePlusContextChatEngine.from_defaults(retriever=retriever, llm=llm, memory=buffer)
    reply = chat.chat("Where do I live?")
    assert str(reply) == "You live in Lisbon."
    assert "User lives in Lisbon" in inner.prompts[0]
    assert "Oslo" not in inner.prompts[0]
    assert reply.source_nodes[0].node.node_id == hm.sync.query(MemoryFilter(user_id="alice"))[0].id
    session_facts = hm.sync.query(MemoryFilter(user_id="alice", session_id="s1", exact_scope=True))
    assert "User asked where they live" in [m.content for m in session_facts]
    assert str(chat.chat("And now?")) == "Still Lisbon."
    store.close()


# -- memory block and tag collision -------------------------------------------------------------


def test_memory_block_in_memory_without_tag_collision(hm: HierarchicalMemory, db_path: Any) -> None:
    hm.sync.add("User's favourite programming language is Rust", "alice", category="preference")
    block = HeadroomMemoryBlock(memory=hm, user_id="alice")
    store = HeadroomDBChatStore(memory=hm)
    memory = Memory.from_defaults(
        session_id="s",
        chat_store=store,
        memory_blocks=[block],
        memory_blocks_template=headroom_memory_blocks_template(),
    )
    memory.put(ChatMessage(role="user", content="Which programming language do I like?"))
    messages = memory.get()
    system = messages[0]
    assert system.role == MessageRole.SYSTEM
    text = system.content or ""
    assert "<memory_blocks>" in text and "<headroom_memories>" in text
    assert "favourite programming language is Rust" in text and "<headroom_context>" in text
    assert "<memory>" not in text
    assert split_memory_block(text) == (text, [])  # extraction never mistakes it for a block
    store.close()


def test_default_template_would_collide_and_headroom_template_does_not() -> None:
    blocks = [("headroom_memories", [TextBlock(text="- User likes tea")])]
    default = DEFAULT_MEMORY_BLOCKS_TEMPLATE.format_messages(memory_blocks=blocks)[0].content or ""
    ours = headroom_memory_blocks_template().format_messages(memory_blocks=blocks)[0].content or ""
    assert "User likes tea" not in split_memory_block(default)[0]  # the hazard
    assert split_memory_block(ours) == (ours, [])
    for size in (1, 2, 3, 8):  # streaming too
        from headroom.inline.extraction import StreamingMemoryStripper

        stripper = StreamingMemoryStripper()
        out = "".join(stripper.feed(ours[i : i + size]) for i in range(0, len(ours), size))
        assert out + stripper.finish() == ours and not stripper.items


def test_llm_renames_the_default_template_wrapper(hm: HierarchicalMemory, scripted: Any) -> None:
    hm.sync.add("User's favourite programming language is Rust", "alice", category="preference")
    inner = scripted(["Rust!"])
    llm = HeadroomLLM(inner, user_id="alice", memory=hm)
    memory = Memory.from_defaults(
        session_id="s", memory_blocks=[HeadroomMemoryBlock(memory=hm, user_id="alice")]
    )
    chat = SimpleChatEngine.from_defaults(llm=llm, memory=memory)
    assert str(chat.chat("Which programming language do I like?")) == "Rust!"
    prompt = inner.prompts[0]
    assert "<memory_blocks>" in prompt and "<memory>\n<headroom_memories>" not in prompt


async def test_memory_block_truncation_and_priority(hm: HierarchicalMemory) -> None:
    for i in range(6):
        hm.sync.add(f"Rust fact number {i}: the user writes Rust code daily", "alice")
    block = HeadroomMemoryBlock(memory=hm, user_id="alice", top_k=6, priority=2)
    question = [ChatMessage(role="user", content="What about Rust code?")]
    content = await block.aget(question)
    assert content.count("\n- [m") == 6
    smaller = await block.atruncate(content, 30)
    assert smaller is not None and 0 < smaller.count("\n- [m") < 6
    assert smaller.startswith("<headroom_context>") and smaller.endswith("</headroom_context>")
    assert await block.atruncate(content, 10_000) is None
    assert await block.aget([ChatMessage(role="assistant", content="no user message")]) == ""
    budgeted = HeadroomMemoryBlock(memory=hm, user_id="alice", top_k=6, token_budget=60)
    assert 0 < (await budgeted.aget(question)).count("\n- [m") < 6
    # inside Memory: a tight token limit truncates the block instead of failing
    memory = Memory.from_defaults(session_id="t", memory_blocks=[block], token_limit=120)
    await memory.aput(question[0])
    text = (await memory.aget())[0].content or ""
    assert 0 < text.count("- [m") < 6


async def test_function_agent_runs_through_headroom_llm(hm: HierarchicalMemory) -> None:
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.core.llms.mock import MockFunctionCallingLLM

    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    llm = HeadroomLLM(MockFunctionCallingLLM(), user_id="alice", memory=hm)
    assert llm.metadata.is_function_calling_model
    store = HeadroomChatStore(memory=hm)
    buffer = ChatMemoryBuffer.from_defaults(chat_store=store, chat_store_key="agent")
    result = await FunctionAgent(tools=[add], llm=llm).run("hello", memory=buffer)
    assert str(result)
    roles = [m.role for m in await store.aget_messages("agent")]
    assert MessageRole.USER in roles and MessageRole.ASSISTANT in roles
    store.close()
