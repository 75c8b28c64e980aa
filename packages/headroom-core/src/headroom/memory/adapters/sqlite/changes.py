"""The SQLite store's change feed: its sequence (probed cheaply), what changed since a sequence
(for the vector index, the row-id cache and the text postings), and the store's error mapping."""

from __future__ import annotations

import contextlib
import functools
import logging
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.exc import DatabaseError, OperationalError

from headroom.memory.adapters.sql.common import TABLE, D, M, SqlStoreBase
from headroom.memory.adapters.sql.tables import bytes_to_vectors
from headroom.memory.errors import StorageError, db_error_message
from headroom.memory.ports import FloatArray, StoreChanges

__all__ = ["SQLiteChangeFeed", "translate_errors"]

logger = logging.getLogger("headroom.memory.adapters.sqlite.store")
P = ParamSpec("P")
R = TypeVar("R")
T = TABLE.c


def translate_errors(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (OperationalError, DatabaseError, sqlite3.Error) as exc:
            logger.debug("memory store error in %s", fn.__name__, exc_info=True)  # with the SQL
            raise StorageError(
                f"memory store error in {fn.__name__}: {db_error_message(exc)}"
            ) from exc

    return wrapper


class SQLiteChangeFeed(SqlStoreBase):
    """The base of :class:`~headroom.memory.adapters.sqlite.store.SQLModelMemoryStore`."""

    _dimension: int

    def _init_change_feed(self) -> None:
        self._probe: Any = None  # a DB-API connection kept for current_seq()
        self._probe_lock = threading.Lock()
        self._probe_state: tuple[int, int] | None = None  # (data_version, seq) last read

    @translate_errors
    def current_seq(self) -> int:
        """The change sequence, read on every search: ``PRAGMA data_version`` on a connection
        kept for this (it changes only when another connection, of any process, commits) says
        whether the sequence read last time still holds, so a search on an unchanged store
        costs microseconds here, not a query through the pool."""
        with self._probe_lock:
            if self._probe is None:
                self._probe = self.engine.raw_connection()
            cursor = self._probe.cursor()
            try:
                version = int(cursor.execute("PRAGMA data_version").fetchone()[0])
                if self._probe_state is not None and self._probe_state[0] == version:
                    return self._probe_state[1]
                seq = int(cursor.execute(
                    "SELECT value FROM headroom_meta WHERE key = 'seq'").fetchone()[0])  # fmt: skip
            finally:
                cursor.close()
            self._probe_state = (version, seq)  # a commit after the PRAGMA moves it again
            return seq

    def close(self) -> None:
        with self._probe_lock:
            if self._probe is not None:
                with contextlib.suppress(Exception):
                    self._probe.close()
                self._probe, self._probe_state = None, None
        super().close()

    @translate_errors
    def touched_since(
        self, seq: int, limit: int = 100_000
    ) -> tuple[int, frozenset[str], npt.NDArray[np.int64]] | None:
        """What changed after ``seq``, in one snapshot: the sequence now, the users whose rows
        were written, and the primary keys deleted; None past ``limit`` changed rows (callers
        then start over). Lets row-id caches keep the entries of users nobody wrote to."""
        with self._read() as conn:
            now = int(conn.exec_driver_sql(
                "SELECT value FROM headroom_meta WHERE key = 'seq'").scalar_one())  # fmt: skip
            if now == seq:
                return now, frozenset(), np.empty(0, np.int64)
            changed = conn.exec_driver_sql(
                "SELECT count(*) FROM memories WHERE change_seq > ?", (seq,)
            ).scalar_one()
            if changed > limit:
                return None
            users = frozenset(str(u) for (u,) in conn.exec_driver_sql(
                "SELECT DISTINCT user_id FROM memories WHERE change_seq > ?", (seq,)))  # fmt: skip
            deleted = np.fromiter((int(p) for (p,) in conn.exec_driver_sql(
                "SELECT pk FROM memory_deletions WHERE seq > ?", (seq,))), np.int64)  # fmt: skip
        return now, users, deleted

    @translate_errors
    def changes_since(self, seq: int) -> StoreChanges:
        with self._read() as conn:
            now = int(conn.execute(select(M.c.value).where(M.c.key == "seq")).scalar_one())
            if now == seq:
                return StoreChanges(seq=now)
            rows = conn.execute(
                select(T.pk, T.embedding).where(T.change_seq > seq, T.embedding.is_not(None))
            ).all()
            removed = conn.execute(select(D.c.pk).where(D.c.seq > seq)).scalars().all()
        return StoreChanges(
            upserted_ids=[int(r.pk) for r in rows],
            upserted_vectors=bytes_to_vectors([r.embedding for r in rows], self._dimension),
            removed_ids=[int(p) for p in removed],
            seq=now,
        )

    @translate_errors
    def snapshot_vectors(self) -> tuple[int, list[int], FloatArray]:
        """Every stored vector and the sequence number they are consistent with (one read)."""
        with self._read() as conn:
            now = int(conn.execute(select(M.c.value).where(M.c.key == "seq")).scalar_one())
            rows = conn.execute(select(T.pk, T.embedding).where(T.embedding.is_not(None))).all()
        return (
            now,
            [int(r.pk) for r in rows],
            bytes_to_vectors([r.embedding for r in rows], self._dimension),
        )
