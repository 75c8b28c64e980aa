"""HeadroomDBChatStore: the AsyncDBChatStore contract and LlamaIndex Memory on top of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from llama_index.core.llms import ChatMessage, MessageRole
from llama_index.core.memory import Memory
from llama_index.core.storage.chat_store.base_db import MessageStatus

from headroom_llamaindex import ChatStoreIndexError, HeadroomDBChatStore

ACTIVE, ARCHIVED = MessageStatus.ACTIVE, MessageStatus.ARCHIVED


def msg(text: str, role: MessageRole = MessageRole.USER) -> ChatMessage:
    return ChatMessage(role=role, content=text)


def texts(messages: list[ChatMessage]) -> list[str | None]:
    return [m.content for m in messages]


@pytest.fixture
async def store(chat_location: Path | str) -> AsyncIterator[HeadroomDBChatStore]:
    chat_store = HeadroomDBChatStore(db_path=chat_location)
    yield chat_store
    chat_store.close()


async def test_unknown_key(store: HeadroomDBChatStore) -> None:
    assert await store.get_messages("nobody") == []
    assert await store.count_messages("nobody") == 0
    assert await store.delete_message("nobody", 0) is None
    assert await store.delete_oldest_messages("nobody", 3) == []
    assert await store.archive_oldest_messages("nobody", 3) == []
    await store.delete_messages("nobody")
    assert await store.get_keys() == []


async def test_add_get_count_with_status_limit_offset(store: HeadroomDBChatStore) -> None:
    await store.add_message("k", msg("a"))
    await store.add_messages("k", [msg("b"), msg("c"), msg("d")])
    await store.add_message("k", msg("old"), status=ARCHIVED)
    assert texts(await store.get_messages("k")) == ["a", "b", "c", "d"]
    assert texts(await store.get_messages("k", status=ARCHIVED)) == ["old"]
    assert texts(await store.get_messages("k", status=None)) == ["a", "b", "c", "d", "old"]
    assert texts(await store.get_messages("k", limit=2, offset=1)) == ["b", "c"]
    assert texts(await store.get_messages("k", offset=3)) == ["d"]
    assert await store.count_messages("k") == 4
    assert await store.count_messages("k", status=ARCHIVED) == 1
    assert await store.count_messages("k", status=None) == 5


async def test_set_messages_replaces_every_status(store: HeadroomDBChatStore) -> None:
    await store.add_messages("k", [msg("a"), msg("b")])
    await store.archive_oldest_messages("k", 1)
    await store.set_messages("k", [msg("x"), msg("y")])
    assert texts(await store.get_messages("k", status=None)) == ["x", "y"]


async def test_archive_and_delete_oldest(store: HeadroomDBChatStore) -> None:
    await store.add_messages("k", [msg(t) for t in "abcde"])
    assert texts(await store.archive_oldest_messages("k", 2)) == ["a", "b"]
    assert texts(await store.get_messages("k")) == ["c", "d", "e"]
    assert texts(await store.get_messages("k", status=ARCHIVED)) == ["a", "b"]
    assert texts(await store.delete_oldest_messages("k", 2)) == ["c", "d"]
    assert texts(await store.get_messages("k", status=None)) == ["a", "b", "e"]
    await store.delete_messages("k", status=ARCHIVED)
    assert texts(await store.get_messages("k", status=None)) == ["e"]
    await store.delete_messages("k")
    assert await store.get_keys() == []


async def test_delete_message_by_position_and_out_of_range(store: HeadroomDBChatStore) -> None:
    await store.add_messages("k", [msg("a"), msg("b"), msg("c")])
    assert (await store.delete_message("k", 1)).content == "b"  # type: ignore[union-attr]
    assert (await store.delete_message("k", -1)).content == "c"  # type: ignore[union-attr]
    with pytest.raises(ChatStoreIndexError, match="out of range"):
        await store.delete_message("k", 1)
    assert texts(await store.get_messages("k")) == ["a"]


async def test_keys_and_stripping(store: HeadroomDBChatStore) -> None:
    await store.add_message(
        "one", msg('hi <memory>{"memories": []}</memory>', MessageRole.ASSISTANT)
    )
    await store.add_message("two", msg("x"))
    assert await store.get_keys() == ["one", "two"]
    assert texts(await store.get_messages("one")) == ["hi"]


async def test_persists_across_instances(chat_location: Path | str) -> None:
    first = HeadroomDBChatStore(db_path=chat_location)
    await first.add_message("k", msg("kept"))
    first.close()
    second = HeadroomDBChatStore(db_path=chat_location)
    assert texts(await second.get_messages("k")) == ["kept"]
    second.close()


async def test_memory_from_defaults_put_get_flush_archive(store: HeadroomDBChatStore) -> None:
    memory = Memory.from_defaults(
        session_id="conv",
        chat_store=store,
        token_limit=60,
        chat_history_token_ratio=0.5,
        token_flush_size=10,
    )
    for i in range(6):
        await memory.aput(msg(f"user message number {i} with some padding words"))
        await memory.aput(
            msg(f"assistant reply number {i} with some padding", MessageRole.ASSISTANT)
        )
    active = await store.get_messages("conv")
    archived = await store.get_messages("conv", status=ARCHIVED)
    assert archived, "token pressure must archive the oldest messages"
    assert len(active) + len(archived) == 12
    assert texts(archived + active) == texts(await store.get_messages("conv", status=None))
    got = await memory.aget()
    assert texts(got)[-1] == "assistant reply number 5 with some padding"
    assert "user message number 0" not in " ".join(t or "" for t in texts(got))
    all_messages = await memory.aget_all()
    assert len(all_messages) == 12
    await memory.areset()
    assert await store.count_messages("conv", status=None) == 0


def test_memory_sync_api(chat_location: Path | str) -> None:
    store = HeadroomDBChatStore(db_path=chat_location)
    memory = Memory.from_defaults(session_id="s", chat_store=store)
    memory.put(msg("hello"))
    memory.put(msg("hi", MessageRole.ASSISTANT))
    assert texts(memory.get()) == ["hello", "hi"]
    store.close()


async def test_writers_on_two_connections_take_turns(chat_location: Path | str) -> None:
    """Two stores (two connections, as two processes would have) append concurrently: no loss."""
    import asyncio

    from headroom_llamaindex import HeadroomChatStore

    stores = [HeadroomChatStore(db_path=chat_location) for _ in range(2)]
    queues = [HeadroomDBChatStore(db_path=chat_location) for _ in range(2)]
    try:
        await asyncio.gather(
            *(
                stores[i % 2].async_add_message("k", msg(f"m{i}"), idx=0 if i % 3 == 0 else None)
                for i in range(30)
            ),
            *(queues[i % 2].add_message("q", msg(f"q{i}")) for i in range(30)),
        )
        got = texts(await stores[0].aget_messages("k"))
        assert sorted(got, key=str) == sorted((f"m{i}" for i in range(30)), key=str)
        assert await queues[1].count_messages("q") == 30
    finally:
        for store in (*stores, *queues):
            store.close()
