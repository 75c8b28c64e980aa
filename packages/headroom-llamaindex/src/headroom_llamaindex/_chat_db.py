"""SQLite storage of LlamaIndex chat messages, in the same database file as the memories.

Two tables live next to the memory tables (they never touch them):

* ``headroom_llama_chat_keys`` / ``headroom_llama_chat_messages`` (key, position, message JSON):
  the :class:`~headroom_llamaindex.HeadroomChatStore` (``BaseChatStore``) lists;
* ``headroom_llama_memory_messages`` (id, key, status, message JSON): the FIFO queue of the
  :class:`~headroom_llamaindex.HeadroomDBChatStore` (``AsyncDBChatStore``) used by ``Memory``.

Each store owns one ``sqlite3`` connection (WAL, ``busy_timeout``) guarded by a lock, so the
blocking work can run on any thread: the async methods run it through ``asyncio.to_thread``
and never block the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from llama_index.core.llms import ChatMessage, MessageRole, TextBlock

from headroom.inline.extraction import strip_memory_blocks
from headroom.memory.errors import ClosedError, HeadroomError, StorageError

__all__ = ["ChatDatabase", "ChatStoreIndexError", "dump_message", "load_message", "strip_message"]

logger = logging.getLogger(__name__)

R = TypeVar("R")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS headroom_llama_chat_keys (
    key TEXT PRIMARY KEY,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS headroom_llama_chat_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    position INTEGER NOT NULL,
    message TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_headroom_llama_chat_messages_key
    ON headroom_llama_chat_messages (key, position);
CREATE TABLE IF NOT EXISTS headroom_llama_memory_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_headroom_llama_memory_messages_key
    ON headroom_llama_memory_messages (key, status, id);
"""


class ChatStoreIndexError(HeadroomError, IndexError):
    """A message index is out of range for a chat store key (also an ``IndexError``)."""


def dump_message(message: ChatMessage) -> str:
    """A chat message as JSON (``ChatMessage.model_dump_json``)."""
    return message.model_dump_json()


def load_message(data: str) -> ChatMessage:
    return ChatMessage.model_validate_json(data)


def strip_message(message: ChatMessage) -> ChatMessage:
    """A copy of an assistant message with every ``<memory>`` block removed from its text.

    Other roles, and assistant messages without a block, are returned unchanged.
    """
    if message.role != MessageRole.ASSISTANT:
        return message
    blocks = list(message.blocks)
    changed = False
    for index, block in enumerate(blocks):
        if isinstance(block, TextBlock):
            visible = strip_memory_blocks(block.text)
            if visible != block.text:
                blocks[index] = TextBlock(text=visible)
                changed = True
    return message.model_copy(update={"blocks": blocks}) if changed else message


class ChatDatabase:
    """One sqlite3 connection to the memory database file, serialised by a lock."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 10_000) -> None:
        self.path = Path(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise ClosedError("this chat store is closed")
        if self._conn is None:
            if str(self.path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(self.path),
                timeout=self._busy_timeout_ms / 1000,
                check_same_thread=False,
                isolation_level=None,
            )
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            self._conn = conn
        return self._conn

    def run(self, fn: Callable[[sqlite3.Connection], R], *, write: bool = False) -> R:
        """Run ``fn(connection)`` in one transaction (``BEGIN IMMEDIATE`` for writes)."""
        with self._lock:
            try:
                conn = self._connection()
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    result = fn(conn)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                return result
            except sqlite3.Error as exc:
                raise StorageError(f"chat store database error: {exc}") from exc

    async def arun(self, fn: Callable[[sqlite3.Connection], R], *, write: bool = False) -> R:
        """:meth:`run` on a worker thread (the event loop is never blocked)."""
        return await asyncio.to_thread(self.run, fn, write=write)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed


def now() -> float:
    return time.time()
