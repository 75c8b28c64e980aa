"""Storage of LlamaIndex chat messages, in the same database as the memories (SQLite or PostgreSQL).

Two tables live next to the memory tables (they never touch them):

* ``headroom_llama_chat_keys`` / ``headroom_llama_chat_messages`` (key, position, message JSON):
  the :class:`~headroom_llamaindex.HeadroomChatStore` (``BaseChatStore``) lists;
* ``headroom_llama_memory_messages`` (id, key, status, message JSON): the FIFO queue of the
  :class:`~headroom_llamaindex.HeadroomDBChatStore` (``AsyncDBChatStore``) used by ``Memory``.

Each store owns one connection guarded by a lock, so the blocking work can run on any thread: the
async methods run it through ``asyncio.to_thread`` and never block the event loop. On SQLite it is a
``sqlite3`` connection (WAL, ``busy_timeout``, writes in ``BEGIN IMMEDIATE``); given a
``postgresql://`` / ``postgresql+psycopg://`` URL it is a psycopg 3 connection (extra
``headroom-core[postgres]``; writes take a transaction advisory lock, so writers of several
processes take turns as they do on SQLite). The SQL is shared: ``?`` placeholders become ``%s``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from llama_index.core.llms import ChatMessage, MessageRole, TextBlock

from headroom.inline.extraction import strip_memory_blocks
from headroom.memory.config import postgres_url
from headroom.memory.errors import (
    ClosedError,
    ConfigurationError,
    HeadroomError,
    MissingDependencyError,
    StorageError,
)

__all__ = [
    "ChatConnection",
    "ChatDatabase",
    "ChatStoreIndexError",
    "dump_message",
    "load_message",
    "strip_message",
]

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

# The same tables on PostgreSQL (``rowid`` keeps the keys' insertion order, as SQLite's does).
_PG_SCHEMA = (
    _SCHEMA.replace(
        "created_at REAL NOT NULL\n);",
        "created_at DOUBLE PRECISION NOT NULL,\n    rowid BIGSERIAL\n);",
        1,
    )
    .replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
    .replace("REAL", "DOUBLE PRECISION")
)
_PG_LOCK = 0x48524C43  # advisory lock key of the chat tables (schema creation and writes)

NO_LIMIT = 2**62  # "no LIMIT" as a number both databases accept


class ChatConnection(Protocol):
    """What the chat SQL needs of a connection (``sqlite3.Connection`` or the PostgreSQL one)."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any: ...

    def executemany(self, sql: str, parameters: Sequence[Sequence[Any]], /) -> Any: ...


class _PgConnection:
    """A psycopg connection speaking the ``?``-placeholder SQL of the SQLite path."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any:
        return self.conn.execute(sql.replace("?", "%s"), tuple(parameters))

    def executemany(self, sql: str, parameters: Sequence[Sequence[Any]], /) -> Any:
        with self.conn.cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), [tuple(row) for row in parameters])


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
    """One connection to the memory database (SQLite file or PostgreSQL URL), serialised by a lock."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 10_000) -> None:
        self.url = postgres_url(path)
        self.path: Path | str = self.url if self.url is not None else Path(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pg: _PgConnection | None = None
        self._closed = False
        if self.url is not None:
            with self._lock:
                self._pg_connection()  # a bad URL / a server that is down fails here, clearly

    def _pg_connection(self) -> _PgConnection:
        from headroom.memory.adapters.postgres.connect import redact

        assert self.url is not None
        if self._closed:
            raise ClosedError("this chat store is closed")
        if self._pg is not None and not self._pg.conn.closed and not self._pg.conn.broken:
            return self._pg
        try:
            import psycopg
        except ImportError as exc:
            raise MissingDependencyError(exc.name or "psycopg", "postgres") from exc
        libpq_url = self.url.replace("postgresql+psycopg://", "postgresql://", 1)
        try:
            conn = psycopg.connect(libpq_url, connect_timeout=10, application_name="headroom")
        except psycopg.ProgrammingError as exc:
            raise ConfigurationError(f"invalid PostgreSQL URL {redact(self.url)}: {exc}") from exc
        except psycopg.Error as exc:
            raise StorageError(
                f"cannot connect to PostgreSQL at {redact(self.url)}: {_first_line(exc)}"
            ) from exc
        try:
            conn.execute(f"SELECT pg_advisory_xact_lock({_PG_LOCK})")
            for statement in filter(str.strip, _PG_SCHEMA.split(";")):
                conn.execute(statement)  # type: ignore[call-overload]
            conn.commit()
        except psycopg.Error as exc:
            conn.close()
            raise StorageError(f"cannot create the chat tables: {_first_line(exc)}") from exc
        self._pg = _PgConnection(conn)
        return self._pg

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise ClosedError("this chat store is closed")
        if self._conn is None:
            if str(self.path) != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
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

    def run(self, fn: Callable[[ChatConnection], R], *, write: bool = False) -> R:
        """Run ``fn(connection)`` in one transaction (``BEGIN IMMEDIATE`` for writes)."""
        with self._lock:
            if self.url is not None:
                return self._run_pg(fn, write=write)
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

    def _run_pg(self, fn: Callable[[ChatConnection], R], *, write: bool) -> R:
        import psycopg

        for attempt in (1, 2):
            pg = self._pg_connection()
            committing = False
            try:
                if write:
                    pg.execute(f"SELECT pg_advisory_xact_lock({_PG_LOCK})")
                result = fn(pg)
                committing = True
                pg.conn.commit()
                return result
            except BaseException as exc:
                lost = isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
                if not pg.conn.closed:
                    try:
                        pg.conn.rollback()
                    except psycopg.Error:
                        lost = True
                if lost:
                    pg.conn.close()
                    self._pg = None
                if not isinstance(exc, psycopg.Error):
                    raise
                # a read, or a write whose transaction never reached COMMIT (the server rolled
                # it back): run once more on a new connection
                if lost and attempt == 1 and not (write and committing):
                    logger.warning("PostgreSQL chat store connection lost; retrying once")
                    continue
                if lost and write and committing:
                    raise StorageError(
                        "the chat store's PostgreSQL connection dropped while committing: the "
                        f"write may or may not have been applied ({_first_line(exc)})"
                    ) from exc
                raise StorageError(f"chat store database error: {_first_line(exc)}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def arun(self, fn: Callable[[ChatConnection], R], *, write: bool = False) -> R:
        """:meth:`run` on a worker thread (the event loop is never blocked)."""
        return await asyncio.to_thread(self.run, fn, write=write)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._pg is not None:
                self._pg.conn.close()
                self._pg = None
            self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def now() -> float:
    return time.time()
