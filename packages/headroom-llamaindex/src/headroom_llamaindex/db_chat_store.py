"""HeadroomDBChatStore: the ``AsyncDBChatStore`` that ``llama_index.core.memory.Memory`` needs.

``Memory.from_defaults(chat_store=...)`` rejects a ``BaseChatStore``; this store keeps Memory's
FIFO queue (``MessageStatus.ACTIVE``) and its flushed messages (``ARCHIVED``) in the Headroom
memory database, table ``headroom_llama_memory_messages``. Semantics follow LlamaIndex's
``SQLAlchemyChatStore`` (insertion order, ``set_messages`` replaces every status of the key,
``get_keys`` lists keys holding any message), except:

* ``delete_message(key, idx)``: ``idx`` is the position in ``get_messages(key, status=None)``
  (``SQLAlchemyChatStore`` takes its internal row id); negative indexes count from the end; an
  index out of range on an existing key raises :class:`ChatStoreIndexError`; unknown key: ``None``;
* assistant messages are stored with their ``<memory>`` blocks removed.

All methods run their SQLite work on a worker thread, so they never block the event loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.llms import ChatMessage
from llama_index.core.storage.chat_store.base_db import AsyncDBChatStore, MessageStatus

from headroom.memory.config import MemoryConfig
from headroom.memory.core import HierarchicalMemory
from headroom.memory.errors import ValidationError

from ._chat_db import (
    NO_LIMIT,
    ChatConnection,
    ChatDatabase,
    ChatStoreIndexError,
    dump_message,
    load_message,
    now,
    strip_message,
)
from ._memory import resolve_db_path, shown_location

__all__ = ["HeadroomDBChatStore"]

_TABLE = "headroom_llama_memory_messages"


def _status_clause(status: MessageStatus | None) -> tuple[str, tuple[Any, ...]]:
    if status is None:
        return "", ()
    return " AND status = ?", (MessageStatus(status).value,)


def _get(
    conn: ChatConnection,
    key: str,
    status: MessageStatus | None,
    limit: int | None,
    offset: int | None,
) -> list[ChatMessage]:
    clause, params = _status_clause(status)
    sql = f"SELECT message FROM {_TABLE} WHERE key = ?{clause} ORDER BY id"
    args: tuple[Any, ...] = (key, *params)
    if limit is not None or offset is not None:
        sql += " LIMIT ? OFFSET ?"
        args = (*args, NO_LIMIT if limit is None or limit < 0 else limit, max(0, offset or 0))
    return [load_message(row[0]) for row in conn.execute(sql, args).fetchall()]


def _count(conn: ChatConnection, key: str, status: MessageStatus | None) -> int:
    clause, params = _status_clause(status)
    row = conn.execute(
        f"SELECT COUNT(*) FROM {_TABLE} WHERE key = ?{clause}", (key, *params)
    ).fetchone()
    return int(row[0])


def _insert(conn: ChatConnection, key: str, data: list[str], status: MessageStatus) -> None:
    stamp, value = now(), MessageStatus(status).value
    conn.executemany(
        f"INSERT INTO {_TABLE} (key, status, message, created_at) VALUES (?, ?, ?, ?)",
        [(key, value, item, stamp) for item in data],
    )


def _set(conn: ChatConnection, key: str, data: list[str], status: MessageStatus) -> None:
    conn.execute(f"DELETE FROM {_TABLE} WHERE key = ?", (key,))
    _insert(conn, key, data, status)


def _delete_at(conn: ChatConnection, key: str, idx: int) -> ChatMessage | None:
    size = _count(conn, key, None)
    if size == 0:
        return None
    position = idx + size if idx < 0 else idx
    if not 0 <= position < size:
        raise ChatStoreIndexError(
            f"chat store key {key!r}: message index {idx} is out of range (it holds {size} messages)"
        )
    row = conn.execute(
        f"SELECT id, message FROM {_TABLE} WHERE key = ? ORDER BY id LIMIT 1 OFFSET ?",
        (key, position),
    ).fetchone()
    conn.execute(f"DELETE FROM {_TABLE} WHERE id = ?", (row[0],))
    return load_message(row[1])


def _delete(conn: ChatConnection, key: str, status: MessageStatus | None) -> None:
    clause, params = _status_clause(status)
    conn.execute(f"DELETE FROM {_TABLE} WHERE key = ?{clause}", (key, *params))


def _oldest(conn: ChatConnection, key: str, n: int, *, archive: bool) -> list[ChatMessage]:
    if n <= 0:
        return []
    rows = conn.execute(
        f"SELECT id, message FROM {_TABLE} WHERE key = ? AND status = ? ORDER BY id LIMIT ?",
        (key, MessageStatus.ACTIVE.value, n),
    ).fetchall()
    ids = [(row[0],) for row in rows]
    if archive:
        conn.executemany(
            f"UPDATE {_TABLE} SET status = '{MessageStatus.ARCHIVED.value}' WHERE id = ?", ids
        )
    else:
        conn.executemany(f"DELETE FROM {_TABLE} WHERE id = ?", ids)
    return [load_message(row[1]) for row in rows]


def _keys(conn: ChatConnection) -> list[str]:
    rows = conn.execute(f"SELECT key FROM {_TABLE} GROUP BY key ORDER BY MIN(id)").fetchall()
    return [row[0] for row in rows]


class HeadroomDBChatStore(AsyncDBChatStore):
    """Memory's chat store in the Headroom database: ``Memory.from_defaults(chat_store=store)``.

    Construct with ``memory=`` (its database file is used) or ``db_path=`` / ``config=``.
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
        return "HeadroomDBChatStore"

    async def get_messages(
        self,
        key: str,
        status: MessageStatus | None = MessageStatus.ACTIVE,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[ChatMessage]:
        if (limit is not None and limit < 0) or (offset is not None and offset < 0):
            raise ValidationError("limit and offset must be >= 0")
        return await self._db.arun(lambda conn: _get(conn, key, status, limit, offset))

    async def count_messages(
        self, key: str, status: MessageStatus | None = MessageStatus.ACTIVE
    ) -> int:
        return await self._db.arun(lambda conn: _count(conn, key, status))

    async def add_message(
        self, key: str, message: ChatMessage, status: MessageStatus = MessageStatus.ACTIVE
    ) -> None:
        data = [dump_message(strip_message(message))]
        await self._db.arun(lambda conn: _insert(conn, key, data, status), write=True)

    async def add_messages(
        self, key: str, messages: list[ChatMessage], status: MessageStatus = MessageStatus.ACTIVE
    ) -> None:
        data = [dump_message(strip_message(message)) for message in messages]
        await self._db.arun(lambda conn: _insert(conn, key, data, status), write=True)

    async def set_messages(
        self, key: str, messages: list[ChatMessage], status: MessageStatus = MessageStatus.ACTIVE
    ) -> None:
        data = [dump_message(strip_message(message)) for message in messages]
        await self._db.arun(lambda conn: _set(conn, key, data, status), write=True)

    async def delete_message(self, key: str, idx: int) -> ChatMessage | None:
        return await self._db.arun(lambda conn: _delete_at(conn, key, idx), write=True)

    async def delete_messages(self, key: str, status: MessageStatus | None = None) -> None:
        await self._db.arun(lambda conn: _delete(conn, key, status), write=True)

    async def delete_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        return await self._db.arun(lambda conn: _oldest(conn, key, n, archive=False), write=True)

    async def archive_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        return await self._db.arun(lambda conn: _oldest(conn, key, n, archive=True), write=True)

    async def get_keys(self) -> list[str]:
        return await self._db.arun(_keys)

    def close(self) -> None:
        """Close the store's SQLite connection (the memory database itself stays open)."""
        self._db.close()
