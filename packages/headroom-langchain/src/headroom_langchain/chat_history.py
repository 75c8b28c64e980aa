"""HeadroomChatMessageHistory: the raw conversation, in the memory database's own table.

Messages live in the table ``headroom_chat_messages`` of the same database as the memories: the
SQLite file, or the PostgreSQL database of a ``postgresql://`` URL (one row per message: user id, session id, position, type, ``message_to_dict`` JSON). Assistant
messages are stored with their ``<memory>`` block removed. Async methods run the database work in a
thread (:func:`asyncio.to_thread`), so they never block the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict
from sqlalchemy import (
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from headroom.memory import HierarchicalMemory, MemoryConfig
from headroom.memory.config import postgres_url
from headroom.memory.errors import StorageError
from headroom.memory.validation import check_id, check_optional_id

from ._memory import resolve_db_path
from ._messages import strip_ai_message

__all__ = ["CHAT_TABLE", "ChatMessageStore", "HeadroomChatMessageHistory"]

logger = logging.getLogger(__name__)

CHAT_TABLE = "headroom_chat_messages"
_LOCK_KEY = 0x48524348  # PostgreSQL advisory lock class of chat appends


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__


_metadata = MetaData()
_table = Table(
    CHAT_TABLE,
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(255), nullable=False, default=""),
    Column("session_id", String(255), nullable=False),
    Column("position", Integer, nullable=False),
    Column("type", String(32), nullable=False),
    Column("message_json", Text, nullable=False),
    Column("created_at", String(40), nullable=False),
    Index("ix_headroom_chat_messages_session", "user_id", "session_id", "position", unique=True),
)


class ChatMessageStore:
    """The chat-message table of one database (one SQLAlchemy engine, shareable).

    ``db_path`` is a SQLite file, or a ``postgresql://`` / ``postgresql+psycopg://`` URL (needs
    ``headroom-core[postgres]``; the table is created in the URL's database / search_path).
    """

    def __init__(self, db_path: str | Path, *, busy_timeout_ms: int = 10_000) -> None:
        url = postgres_url(db_path)
        self.db_path: Path | str
        self._postgres = url is not None
        if url is not None:
            from headroom.memory.adapters.postgres.connect import create_pg_engine, redact

            self.db_path = url
            self._where_shown = redact(url)
            self._engine: Engine = create_pg_engine(url, pool_size=2)
        else:
            self.db_path = Path(db_path)
            self._where_shown = str(self.db_path)
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            self._engine = create_engine(f"sqlite:///{self.db_path}")
            self._sqlite_pragmas(int(busy_timeout_ms))
        try:
            with self._engine.begin() as conn:
                if self._postgres:  # processes creating the table together: one at a time
                    conn.execute(select(func.pg_advisory_xact_lock(_LOCK_KEY, 0)))
                _metadata.create_all(conn)
        except (SQLAlchemyError, sqlite3.Error) as exc:
            raise StorageError(
                f"cannot create {CHAT_TABLE} in {self._where_shown}: {_first_line(exc)}"
            ) from exc

    def _sqlite_pragmas(self, timeout: int) -> None:
        @event.listens_for(self._engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout={timeout}")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        @event.listens_for(self._engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    def _where(self, user_id: str | None, session_id: str) -> Any:
        return (_table.c.user_id == (user_id or "")) & (_table.c.session_id == session_id)

    def load(self, user_id: str | None, session_id: str) -> list[BaseMessage]:
        query = (
            select(_table.c.message_json)
            .where(self._where(user_id, session_id))
            .order_by(_table.c.position)
        )
        try:
            with self._engine.connect() as conn:
                rows = conn.execute(query).scalars().all()
        except (SQLAlchemyError, sqlite3.Error) as exc:
            raise StorageError(f"cannot read chat history: {exc}") from exc
        return messages_from_dict([json.loads(row) for row in rows])

    def append(self, user_id: str | None, session_id: str, messages: Sequence[BaseMessage]) -> None:
        if not messages:
            return
        now = datetime.now(UTC).isoformat()
        try:
            with self._engine.begin() as conn:
                if self._postgres:  # writers of one session take turns (as BEGIN IMMEDIATE does)
                    conn.execute(
                        select(func.pg_advisory_xact_lock(_LOCK_KEY, func.hashtext(session_id)))
                    )
                last = conn.execute(
                    select(func.max(_table.c.position)).where(self._where(user_id, session_id))
                ).scalar()
                start = -1 if last is None else int(last)
                rows = [
                    {
                        "user_id": user_id or "",
                        "session_id": session_id,
                        "position": start + offset,
                        "type": message.type,
                        "message_json": json.dumps(message_to_dict(message), ensure_ascii=False),
                        "created_at": now,
                    }
                    for offset, message in enumerate(messages, start=1)
                ]
                conn.execute(insert(_table), rows)
        except (SQLAlchemyError, sqlite3.Error, TypeError) as exc:
            raise StorageError(f"cannot append to chat history: {exc}") from exc

    def clear(self, user_id: str | None, session_id: str) -> int:
        try:
            with self._engine.begin() as conn:
                return int(
                    conn.execute(delete(_table).where(self._where(user_id, session_id))).rowcount
                )
        except (SQLAlchemyError, sqlite3.Error) as exc:
            raise StorageError(f"cannot clear chat history: {exc}") from exc

    def close(self) -> None:
        self._engine.dispose()


class HeadroomChatMessageHistory(BaseChatMessageHistory):
    """Chat history of one session (optionally of one user) in the Headroom database.

    ``HeadroomChatMessageHistory("s1", db_path="memory.db", user_id="alice")``, or
    ``memory=`` (an open HierarchicalMemory: its database is used, SQLite file or PostgreSQL) or
    ``config=``; ``db_path`` may be a ``postgresql://`` URL. Works with
    ``RunnableWithMessageHistory`` (sync and async).
    """

    def __init__(
        self,
        session_id: str,
        *,
        memory: HierarchicalMemory | None = None,
        db_path: str | Path | None = None,
        config: MemoryConfig | None = None,
        user_id: str | None = None,
        store: ChatMessageStore | None = None,
    ) -> None:
        self.session_id = check_id(session_id, "session_id")
        self.user_id = check_optional_id(user_id, "user_id")
        self._owns_store = store is None
        self._store = store or ChatMessageStore(
            resolve_db_path(memory, db_path=db_path, config=config)
        )

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        return self._store.load(self.user_id, self.session_id)

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        cleaned = [strip_ai_message(message)[0] for message in messages]
        self._store.append(self.user_id, self.session_id, cleaned)

    def clear(self) -> None:
        self._store.clear(self.user_id, self.session_id)

    async def aget_messages(self) -> list[BaseMessage]:
        return await asyncio.to_thread(self._store.load, self.user_id, self.session_id)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        await asyncio.to_thread(self.add_messages, list(messages))

    async def aclear(self) -> None:
        await asyncio.to_thread(self.clear)

    def close(self) -> None:
        """Release the database connection pool (if this history created it)."""
        if self._owns_store:
            self._store.close()

    def __repr__(self) -> str:
        return (
            f"HeadroomChatMessageHistory(session_id={self.session_id!r}, user_id={self.user_id!r})"
        )
