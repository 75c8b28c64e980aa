"""BaseChatStore contract, run over LlamaIndex's SimpleChatStore and HeadroomChatStore."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.llms import ChatMessage, MessageRole
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.core.storage.chat_store import SimpleChatStore
from llama_index.core.storage.chat_store.base import BaseChatStore

from headroom.memory import HierarchicalMemory, MemoryConfig
from headroom.memory.errors import HeadroomError, StorageError
from headroom.testing import HashEmbedder
from headroom_llamaindex import ChatStoreIndexError, HeadroomChatStore, HeadroomDBChatStore
from headroom_llamaindex._memory import shown_location


def msg(text: str, role: MessageRole = MessageRole.USER) -> ChatMessage:
    return ChatMessage(role=role, content=text)


def texts(messages: list[ChatMessage] | None) -> list[str | None] | None:
    return None if messages is None else [m.content for m in messages]


@pytest.fixture(
    params=["simple", "headroom", pytest.param("headroom-postgres", marks=pytest.mark.postgres)]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BaseChatStore]:
    if request.param == "simple":
        yield SimpleChatStore()
    else:
        location: Path | str = tmp_path / "chat.db"
        if request.param == "headroom-postgres":
            location = request.getfixturevalue("pg_chat_url")()
        chat_store = HeadroomChatStore(db_path=location)
        yield chat_store
        chat_store.close()


# -- sync --------------------------------------------------------------------------------------


def test_unknown_key_gives_empty_results(store: BaseChatStore) -> None:
    assert store.get_messages("nobody") == []
    assert store.get_keys() == []
    assert store.delete_messages("nobody") is None
    assert store.delete_message("nobody", 0) is None
    assert store.delete_last_message("nobody") is None
    assert store.get_keys() == []


def test_set_get_roundtrip_keeps_roles_and_kwargs(store: BaseChatStore) -> None:
    messages = [
        ChatMessage(role=MessageRole.SYSTEM, content="be brief"),
        msg("hi"),
        ChatMessage(role=MessageRole.ASSISTANT, content="hello", additional_kwargs={"n": 1}),
    ]
    store.set_messages("k", messages)
    got = store.get_messages("k")
    assert [m.role for m in got] == [MessageRole.SYSTEM, MessageRole.USER, MessageRole.ASSISTANT]
    assert texts(got) == ["be brief", "hi", "hello"]
    assert got[2].additional_kwargs == {"n": 1}
    store.set_messages("k", [msg("replaced")])
    assert texts(store.get_messages("k")) == ["replaced"]


def test_add_message_appends_and_inserts(store: BaseChatStore) -> None:
    store.add_message("k", msg("a"))
    store.add_message("k", msg("c"))
    store.add_message("k", msg("b"), idx=1)  # type: ignore[call-arg]
    store.add_message("k", msg("start"), idx=0)  # type: ignore[call-arg]
    store.add_message("k", msg("end"), idx=99)  # type: ignore[call-arg]
    assert texts(store.get_messages("k")) == ["start", "a", "b", "c", "end"]


def test_delete_messages(store: BaseChatStore) -> None:
    store.set_messages("k", [msg("a"), msg("b")])
    store.set_messages("other", [msg("x")])
    assert texts(store.delete_messages("k")) == ["a", "b"]
    assert store.get_messages("k") == []
    assert store.get_keys() == ["other"]
    assert store.delete_messages("k") is None


def test_delete_message_by_index(store: BaseChatStore) -> None:
    store.set_messages("k", [msg("a"), msg("b"), msg("c"), msg("d")])
    deleted = store.delete_message("k", 1)
    assert deleted is not None and deleted.content == "b"
    assert texts(store.get_messages("k")) == ["a", "c", "d"]
    last = store.delete_message("k", -1)
    assert last is not None and last.content == "d"
    store.add_message("k", msg("e"))
    assert texts(store.get_messages("k")) == ["a", "c", "e"]


def test_delete_last_message(store: BaseChatStore) -> None:
    store.set_messages("k", [msg("a"), msg("b")])
    assert texts([store.delete_last_message("k")]) == ["b"]  # type: ignore[list-item]
    assert texts(store.get_messages("k")) == ["a"]


def test_keys_in_insertion_order_and_empty_lists(store: BaseChatStore) -> None:
    store.add_message("b", msg("1"))
    store.set_messages("a", [])
    store.add_message("c", msg("2"))
    assert store.get_keys() == ["b", "a", "c"]
    assert store.get_messages("a") == []


def test_empty_string_key(store: BaseChatStore) -> None:
    store.add_message("", msg("x"))
    assert texts(store.get_messages("")) == ["x"]
    assert "" in store.get_keys()
    assert texts(store.delete_messages("")) == ["x"]


def test_negative_index_out_of_range_raises_index_error(store: BaseChatStore) -> None:
    store.set_messages("k", [msg("a")])
    with pytest.raises(IndexError):
        store.delete_message("k", -5)
    assert texts(store.get_messages("k")) == ["a"]


def test_delete_last_message_of_empty_list_raises_index_error(store: BaseChatStore) -> None:
    store.set_messages("k", [])
    with pytest.raises(IndexError):
        store.delete_last_message("k")


def test_chat_memory_buffer_uses_the_store(store: BaseChatStore) -> None:
    memory = ChatMemoryBuffer.from_defaults(
        chat_store=store, chat_store_key="conv", token_limit=1000
    )
    memory.put(msg("hello"))
    memory.put(msg("hi there", MessageRole.ASSISTANT))
    assert texts(memory.get()) == ["hello", "hi there"]
    assert texts(store.get_messages("conv")) == ["hello", "hi there"]
    memory.reset()
    assert store.get_messages("conv") == []


# -- async -------------------------------------------------------------------------------------


async def test_async_methods_mirror_sync(store: BaseChatStore) -> None:
    assert await store.aget_messages("k") == []
    await store.aset_messages("k", [msg("a"), msg("b")])
    await store.async_add_message("k", msg("c"))
    assert texts(await store.aget_messages("k")) == ["a", "b", "c"]
    assert texts([await store.adelete_message("k", 0)]) == ["a"]  # type: ignore[list-item]
    assert texts([await store.adelete_last_message("k")]) == ["c"]  # type: ignore[list-item]
    assert await store.aget_keys() == ["k"]
    assert texts(await store.adelete_messages("k")) == ["b"]
    assert await store.adelete_messages("k") is None
    assert await store.adelete_message("k", 0) is None
    assert await store.adelete_last_message("k") is None
    assert await store.aget_keys() == []


async def test_async_chat_memory_buffer(store: BaseChatStore) -> None:
    memory = ChatMemoryBuffer.from_defaults(chat_store=store, chat_store_key="conv")
    await memory.aput(msg("hello"))
    assert texts(await memory.aget()) == ["hello"]


# -- Headroom-specific behaviour ---------------------------------------------------------------


@pytest.fixture
def headroom_store(chat_location: Path | str) -> Iterator[HeadroomChatStore]:
    chat_store = HeadroomChatStore(db_path=chat_location)
    yield chat_store
    chat_store.close()


@pytest.mark.parametrize("idx", [3, 10, -4])
async def test_index_out_of_range_is_a_clear_typed_error(
    headroom_store: HeadroomChatStore, idx: int
) -> None:
    """Documented difference: SimpleChatStore returns None for idx >= len; we raise."""
    headroom_store.set_messages("k", [msg("a"), msg("b"), msg("c")])
    with pytest.raises(ChatStoreIndexError, match=r"index .* out of range .*3 messages") as info:
        headroom_store.delete_message("k", idx)
    assert isinstance(info.value, HeadroomError) and isinstance(info.value, IndexError)
    with pytest.raises(ChatStoreIndexError):
        await headroom_store.adelete_message("k", idx)
    assert texts(headroom_store.get_messages("k")) == ["a", "b", "c"]


def test_simple_chat_store_returns_none_past_the_end() -> None:
    """The reference behaviour we deliberately differ from (kept as documentation)."""
    simple = SimpleChatStore()
    simple.set_messages("k", [msg("a")])
    assert simple.delete_message("k", 5) is None


def test_assistant_memory_blocks_are_stripped(headroom_store: HeadroomChatStore) -> None:
    reply = 'Noted!\n<memory>{"memories": [{"content": "User likes tea"}]}</memory>'
    headroom_store.add_message("k", msg(reply, MessageRole.ASSISTANT))
    headroom_store.set_messages(
        "j", [msg(reply, MessageRole.ASSISTANT), msg("<memory>x</memory> hi")]
    )
    assert texts(headroom_store.get_messages("k")) == ["Noted!"]
    # user text is left alone: only assistant replies carry extraction blocks
    assert texts(headroom_store.get_messages("j")) == ["Noted!", "<memory>x</memory> hi"]


def test_returned_messages_are_copies(headroom_store: HeadroomChatStore) -> None:
    headroom_store.set_messages("k", [msg("a")])
    headroom_store.get_messages("k")[0].content = "changed"
    assert texts(headroom_store.get_messages("k")) == ["a"]


def _tables(location: Path | str) -> set[str]:
    if isinstance(location, str):
        import psycopg

        with psycopg.connect(location) as conn:
            sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            return {r[0] for r in conn.execute(sql).fetchall()}  # type: ignore[arg-type]
    import sqlite3

    with sqlite3.connect(location) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


@pytest.mark.parametrize("owner", [HeadroomChatStore, HeadroomDBChatStore])
def test_shares_the_memory_database(chat_location: Path | str, owner: type) -> None:
    """memory= (SQLite or PostgreSQL, no db_path): the chat tables go in the memory's database."""
    hm = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=chat_location, vector_dimension=64), embedder=HashEmbedder(64)
    )
    try:
        chat_store = owner(memory=hm)
        if owner is HeadroomChatStore:
            chat_store.add_message("k", msg("hello"))
        else:
            asyncio.run(chat_store.add_message("k", msg("hello")))
        chat_store.close()
        assert {"memories", "headroom_llama_chat_messages"} <= _tables(chat_location)
        again = HeadroomChatStore(config=hm.config)
        assert texts(again.get_messages("k")) == (["hello"] if owner is HeadroomChatStore else [])
        assert again.db_path == shown_location(hm.config.database_url or chat_location)
        again.close()
    finally:
        hm.sync.close()


def test_unreachable_postgres_is_one_clear_error() -> None:
    pytest.importorskip("psycopg")
    for owner in (HeadroomChatStore, HeadroomDBChatStore):
        with pytest.raises(StorageError, match="cannot connect") as info:
            owner(db_path="postgresql://u:secret@127.0.0.1:9/db")
        assert "secret" not in str(info.value)
        with pytest.raises(HeadroomError) as bad:
            owner(db_path="postgresql://u:secret@host:notaport/db")
        assert "secret" not in str(bad.value)


async def test_async_does_not_block_the_event_loop(headroom_store: HeadroomChatStore) -> None:
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.gather(
        *(headroom_store.async_add_message(f"k{i % 3}", msg(str(i))) for i in range(30))
    )
    stop.set()
    await task
    assert ticks > 5
    sizes = [len(await headroom_store.aget_messages(f"k{i}")) for i in range(3)]
    assert sizes == [10, 10, 10]


def test_messages_survive_a_restart_across_processes(chat_location: Path | str) -> None:
    path = chat_location
    script = textwrap.dedent(
        f"""
        from llama_index.core.llms import ChatMessage
        from headroom_llamaindex import HeadroomChatStore
        store = HeadroomChatStore(db_path={str(path)!r})
        store.add_message("conv", ChatMessage(role="user", content="written by the child"))
        store.add_message("conv", ChatMessage(role="assistant", content="ack <memory>[]</memory>"))
        store.close()
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    reopened = HeadroomChatStore(db_path=path)
    try:
        assert texts(reopened.get_messages("conv")) == ["written by the child", "ack"]
        assert reopened.get_keys() == ["conv"]
    finally:
        reopened.close()


@pytest.mark.postgres
def test_password_never_shown(pg_chat_url: Any) -> None:
    """The pydantic field (serialised with the store) and errors carry the URL without password."""
    url = pg_chat_url()
    if ":@" not in url:
        pytest.skip("needs the password-less (trust) URL of the test server")
    url = url.replace(":@", ":secret@", 1)
    chat_store = HeadroomChatStore(db_path=url)
    try:
        chat_store.add_message("k", msg("hi"))
        assert texts(chat_store.get_messages("k")) == ["hi"]
        assert "secret" not in repr(chat_store) and "secret" not in chat_store.model_dump_json()
    finally:
        chat_store.close()
