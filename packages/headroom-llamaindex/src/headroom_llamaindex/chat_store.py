"""HeadroomChatStore: a LlamaIndex ``BaseChatStore`` in the memory database.

Used by ``ChatMemoryBuffer`` (and so by ``SimpleChatEngine``, ``CondensePlusContextChatEngine``
and agents that take a ``ChatMemoryBuffer``). The new ``llama_index.core.memory.Memory`` takes
an ``AsyncDBChatStore`` instead: see :class:`~headroom_llamaindex.HeadroomDBChatStore`.

Behaviour, compared with LlamaIndex's ``SimpleChatStore`` (the reference in the tests):

* the same results for every method on existing and unknown keys (``[]`` / ``None``), key order
  (insertion order) and ``add_message(key, message, idx=...)`` (``list.insert`` semantics);
* **one deliberate difference:** ``delete_message(key, idx)`` with an index out of range on an
  existing key raises :class:`ChatStoreIndexError` (a ``HeadroomError`` and an ``IndexError``)
  where ``SimpleChatStore`` silently returns ``None`` for ``idx >= len`` (and raises a bare
  ``IndexError`` for a negative one). Negative indexes count from the end like ``list.pop``.
  ``delete_last_message`` on a key whose list is empty raises it too (``SimpleChatStore`` raises
  ``IndexError`` there);
* assistant messages are stored with their ``<memory>`` blocks removed, so a reply produced
  without :class:`~headroom_llamaindex.HeadroomLLM` never leaks a block into the next prompt;
* messages are copies: mutating a returned message does not change the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.llms import ChatMessage
from llama_index.core.storage.chat_store.base import BaseChatStore

from headroom.memory.config import MemoryConfig
from headroom.memory.core import HierarchicalMemory

from ._chat_db import (
    ChatConnection,
    ChatDatabase,
    ChatStoreIndexError,
    dump_message,
    load_message,
    now,
    strip_message,
)
from ._memory import resolve_db_path, shown_location

__all__ = ["ChatStoreIndexError", "HeadroomChatStore"]

_KEYS = "headroom_llama_chat_keys"
_MESSAGES = "headroom_llama_chat_messages"


def _exists(conn: ChatConnection, key: str) -> bool:
    return conn.execute(f"SELECT 1 FROM {_KEYS} WHERE key = ?", (key,)).fetchone() is not None


def _count(conn: ChatConnection, key: str) -> int:
    row = conn.execute(f"SELECT COUNT(*) FROM {_MESSAGES} WHERE key = ?", (key,)).fetchone()
    return int(row[0])


def _touch(conn: ChatConnection, key: str) -> None:
    conn.execute(
        f"INSERT INTO {_KEYS} (key, created_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
        (key, now()),
    )


def _set(conn: ChatConnection, key: str, messages: list[str]) -> None:
    _touch(conn, key)
    conn.execute(f"DELETE FROM {_MESSAGES} WHERE key = ?", (key,))
    stamp = now()
    conn.executemany(
        f"INSERT INTO {_MESSAGES} (key, position, message, created_at) VALUES (?, ?, ?, ?)",
        [(key, position, data, stamp) for position, data in enumerate(messages)],
    )


def _get(conn: ChatConnection, key: str) -> list[ChatMessage]:
    rows = conn.execute(
        f"SELECT message FROM {_MESSAGES} WHERE key = ? ORDER BY position, id", (key,)
    ).fetchall()
    return [load_message(row[0]) for row in rows]


def _add(conn: ChatConnection, key: str, data: str, idx: int | None) -> None:
    _touch(conn, key)
    size = _count(conn, key)
    position = size if idx is None else min(max(0, size + idx) if idx < 0 else idx, size)
    if position < size:
        conn.execute(
            f"UPDATE {_MESSAGES} SET position = position + 1 WHERE key = ? AND position >= ?",
            (key, position),
        )
    conn.execute(
        f"INSERT INTO {_MESSAGES} (key, position, message, created_at) VALUES (?, ?, ?, ?)",
        (key, position, data, now()),
    )


def _delete_all(conn: ChatConnection, key: str) -> list[ChatMessage] | None:
    if not _exists(conn, key):
        return None
    messages = _get(conn, key)
    conn.execute(f"DELETE FROM {_MESSAGES} WHERE key = ?", (key,))
    conn.execute(f"DELETE FROM {_KEYS} WHERE key = ?", (key,))
    return messages


def _delete_at(
    conn: ChatConnection, key: str, idx: int, *, last: bool = False
) -> ChatMessage | None:
    if not _exists(conn, key):
        return None
    size = _count(conn, key)
    position = idx + size if idx < 0 else idx
    if not 0 <= position < size:
        what = "no message to delete" if last else f"message index {idx} is out of range"
        raise ChatStoreIndexError(f"chat store key {key!r}: {what} (it holds {size} messages)")
    row = conn.execute(
        f"SELECT id, message FROM {_MESSAGES} WHERE key = ? ORDER BY position, id LIMIT 1 OFFSET ?",
        (key, position),
    ).fetchone()
    conn.execute(f"DELETE FROM {_MESSAGES} WHERE id = ?", (row[0],))
    conn.execute(
        f"UPDATE {_MESSAGES} SET position = position - 1 WHERE key = ? AND position > ?",
        (key, position),
    )
    return load_message(row[1])


def _keys(conn: ChatConnection) -> list[str]:
    return [row[0] for row in conn.execute(f"SELECT key FROM {_KEYS} ORDER BY rowid").fetchall()]


def _dump_all(messages: Sequence[ChatMessage]) -> list[str]:
    return [dump_message(strip_message(message)) for message in messages]


class HeadroomChatStore(BaseChatStore):
    """Chat messages per key, persisted in the Headroom memory database (own tables).

    Construct with ``memory=`` (an open :class:`~headroom.memory.HierarchicalMemory`: its database
    file is used) or ``db_path=`` / ``config=``. Only the file is shared: the store opens its own
    SQLite connection (WAL mode), so no embedder is loaded for it. Call :meth:`close` (or use it as
    a context manager) to release the connection.
    """

    db_path: str
    _db: ChatDatabase = PrivateAttr()

    def __init__(
        self,
        *,
        memory: HierarchicalMemory | None = None,
        db_path: str | Path | None = None,
        config: MemoryConfig | None = None,
        busy_timeout_ms: int | None = None,
        **kwargs: Any,
    ) -> None:
        path = resolve_db_path(memory, db_path, config)
        super().__init__(db_path=shown_location(path), **kwargs)  # type: ignore[call-arg]
        timeout = busy_timeout_ms
        if timeout is None:
            timeout = (
                memory.config if memory is not None else config or MemoryConfig()
            ).busy_timeout_ms
        self._db = ChatDatabase(path, busy_timeout_ms=timeout)

    @classmethod
    def class_name(cls) -> str:
        return "HeadroomChatStore"

    # -- sync ------------------------------------------------------------------------------------

    def set_messages(self, key: str, messages: list[ChatMessage]) -> None:
        data = _dump_all(messages)
        self._db.run(lambda conn: _set(conn, key, data), write=True)

    def get_messages(self, key: str) -> list[ChatMessage]:
        return self._db.run(lambda conn: _get(conn, key))

    def add_message(self, key: str, message: ChatMessage, idx: int | None = None) -> None:
        data = dump_message(strip_message(message))
        self._db.run(lambda conn: _add(conn, key, data, idx), write=True)

    def delete_messages(self, key: str) -> list[ChatMessage] | None:
        return self._db.run(lambda conn: _delete_all(conn, key), write=True)

    def delete_message(self, key: str, idx: int) -> ChatMessage | None:
        return self._db.run(lambda conn: _delete_at(conn, key, idx), write=True)

    def delete_last_message(self, key: str) -> ChatMessage | None:
        return self._db.run(lambda conn: _delete_at(conn, key, -1, last=True), write=True)

    def get_keys(self) -> list[str]:
        return self._db.run(_keys)

    # -- async (blocking work on a worker thread) ------------------------------------------------

    async def aset_messages(self, key: str, messages: list[ChatMessage]) -> None:
        data = _dump_all(messages)
        await self._db.arun(lambda conn: _set(conn, key, data), write=True)

    async def aget_messages(self, key: str) -> list[ChatMessage]:
        return await self._db.arun(lambda conn: _get(conn, key))

    async def async_add_message(
        self, key: str, message: ChatMessage, idx: int | None = None
    ) -> None:
        data = dump_message(strip_message(message))
        await self._db.arun(lambda conn: _add(conn, key, data, idx), write=True)

    async def adelete_messages(self, key: str) -> list[ChatMessage] | None:
        return await self._db.arun(lambda conn: _delete_all(conn, key), write=True)

    async def adelete_message(self, key: str, idx: int) -> ChatMessage | None:
        return await self._db.arun(lambda conn: _delete_at(conn, key, idx), write=True)

    async def adelete_last_message(self, key: str) -> ChatMessage | None:
        return await self._db.arun(lambda conn: _delete_at(conn, key, -1, last=True), write=True)

    async def aget_keys(self) -> list[str]:
        return await self._db.arun(_keys)

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the store's SQLite connection (the memory database itself stays open)."""
        self._db.close()

    def __enter__(self) -> HeadroomChatStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
