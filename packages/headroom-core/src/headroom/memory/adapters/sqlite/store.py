"""SQLModelMemoryStore: memories, embeddings and a change sequence in one SQLite file.

The store is the single source of truth. Every write transaction bumps ``headroom_meta.seq`` and
stamps the rows it touched with it (``change_seq``); deletions are logged in ``memory_deletions``.
Derived indexes (FAISS, caches) in this or another process compare sequence numbers to catch up.
Writes take SQLite's write lock up front (``BEGIN IMMEDIATE``) so concurrent writers in several
processes queue on ``busy_timeout`` instead of failing on a lock upgrade.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sqlite3
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine, delete, func, insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError

from headroom.memory.adapters.sql.common import (
    MEMORY_COLUMNS,
    SCHEMA_VERSION,
    TABLE,
    D,
    M,
    SqlStoreBase,
    check_dimension,
    check_meta,
    close_superseded,
    context_of_search_text,
    count_stats,
    default_search_text,
    keep_indexed_context,
    new_meta_rows,
    query_statement,
)
from headroom.memory.adapters.sql.filters import filter_clause
from headroom.memory.adapters.sql.tables import (
    MEMORY_SELECT_SQL,
    bytes_to_vectors,
    memory_to_values,
    row_to_memory,
    table_metadata,
    values_to_memory,
    vector_to_bytes,
)
from headroom.memory.adapters.sqlite.connect import create_sqlite_engine
from headroom.memory.errors import (
    ConfigurationError,
    MemoryNotFoundError,
    ReadOnlyError,
    StorageError,
    db_error_message,
)
from headroom.memory.models import Memory
from headroom.memory.ports import FloatArray, MemoryFilter, StoreChanges

__all__ = [
    "SCHEMA_VERSION",
    "SQLModelMemoryStore",
    "context_of_search_text",
    "default_search_text",
]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
T = TABLE.c


def _translate_errors(fn: Callable[P, R]) -> Callable[P, R]:
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


class SQLModelMemoryStore(SqlStoreBase):
    """The SQLite store (WAL, busy timeout, one file at ``db_path``)."""

    def __init__(
        self,
        db_path: str | Path,
        *,
        busy_timeout_ms: int = 10_000,
        cache_size_kb: int = 65_536,
        search_text: Callable[[Memory], str] = default_search_text,
        on_create: Sequence[Callable[[Connection], None]] = (),
        read_only: bool = False,
    ) -> None:
        self.read_only = read_only
        self.db_path = Path(db_path)
        self._busy_timeout_ms = busy_timeout_ms
        self._cache_size_kb = cache_size_kb
        self._search_text = search_text
        self._on_create = list(on_create)
        self._dimension = 0
        self._engine: Engine | None = None
        self.database_id = ""
        """A random id stored in the database; derived index files record it (see open())."""
        self._probe: Any = None  # a DB-API connection kept for current_seq()
        self._probe_lock = threading.Lock()
        self._probe_state: tuple[int, int] | None = None  # (data_version, seq) last read

    # -- lifecycle -----------------------------------------------------------------------------

    @_translate_errors
    def open(self, *, embedder_model: str, dimension: int) -> None:
        if self.db_path.parent and not self.db_path.parent.exists():
            raise ConfigurationError(f"directory of db_path does not exist: {self.db_path.parent}")
        if self.db_path.is_file() and self.db_path.stat().st_size == 0:
            logger.warning(
                "%s is an empty (0-byte) file: it is opened as a new, empty memory database",
                self.db_path,
            )
        if self.read_only:
            self._open_read_only(embedder_model, dimension)
            return
        engine = create_sqlite_engine(
            f"sqlite:///{self.db_path}", busy_timeout_ms=self._busy_timeout_ms,
            cache_size_kb=self._cache_size_kb, read_only=False,
        )  # fmt: skip
        self._engine = engine
        self._dimension = dimension
        with self._write() as conn:
            table_metadata.create_all(conn)
            for hook in self._on_create:
                hook(conn)
            meta = {row.key: row.value for row in conn.execute(select(M))}
            if not meta:
                conn.execute(
                    insert(M),
                    [
                        *new_meta_rows(embedder_model, dimension),
                        {"key": "database_id", "value": uuid.uuid4().hex},
                    ],
                )
                self.database_id = self._read_database_id(conn)
                return
            if "database_id" not in meta:  # databases created before the id existed
                conn.execute(insert(M), [{"key": "database_id", "value": uuid.uuid4().hex}])
            self.database_id = self._read_database_id(conn)
        check_meta(self.db_path, meta, embedder_model, dimension)

    def _open_read_only(self, embedder_model: str, dimension: int) -> None:
        """Open without writing anything (``mode=ro``); on a read-only filesystem, where SQLite
        cannot create the WAL index, fall back to ``immutable=1``. Writes raise ReadOnlyError."""
        if not self.db_path.is_file():
            raise StorageError(f"no memory database at {str(self.db_path)!r} to open read-only")
        uri = "file:" + urllib.parse.quote(str(self.db_path.resolve()))
        meta: dict[str, str] = {}
        for options in ("mode=ro", "mode=ro&immutable=1"):
            self._engine = create_sqlite_engine(
                f"sqlite:///{uri}?{options}&uri=true", busy_timeout_ms=self._busy_timeout_ms,
                cache_size_kb=self._cache_size_kb, read_only=True,
            )  # fmt: skip
            try:
                with self._read() as conn:
                    names = set(conn.exec_driver_sql(
                        "SELECT name FROM sqlite_master WHERE type = 'table'").scalars())  # fmt: skip
                    if "headroom_meta" in names:
                        meta = {row.key: row.value for row in conn.execute(select(M))}
                break
            except OperationalError:
                self.close()
                if "immutable" in options:
                    raise
                logger.info("%s: read-only open failed; retrying as immutable", self.db_path)
        if not meta:
            self.close()
            raise StorageError(f"{str(self.db_path)!r} is not a headroom memory database")
        self._dimension = dimension
        check_meta(self.db_path, meta, embedder_model, dimension)
        self.database_id = meta.get("database_id", "")

    @staticmethod
    def _read_database_id(conn: Connection) -> str:
        return str(conn.execute(select(M.c.value).where(M.c.key == "database_id")).scalar_one())

    # -- transactions --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        if self.read_only:
            raise ReadOnlyError(
                f"the memory database {str(self.db_path)!r} was opened read-only "
                "(MemoryConfig(read_only=True)); open it without read_only to change it"
            )
        with self.engine.connect() as conn:
            conn.info["headroom_write"] = True
            try:
                with conn.begin():
                    yield conn
            finally:
                conn.info.pop("headroom_write", None)

    def _bump_seq(self, conn: Connection) -> int:
        value = conn.execute(
            text(
                "UPDATE headroom_meta SET value = CAST(value AS INTEGER) + 1 "
                "WHERE key = 'seq' RETURNING value"
            )
        ).scalar_one()
        return int(value)

    # -- writes --------------------------------------------------------------------------------

    def _vector_blob(self, vector: FloatArray | None) -> bytes | None:
        if vector is None:
            return None
        check_dimension(vector, self._dimension)
        return vector_to_bytes(vector)

    @_translate_errors
    def insert(self, memories: Sequence[Memory], vectors: FloatArray | None) -> list[int]:
        if not memories:
            return []
        with self._write() as conn:
            seq = self._bump_seq(conn)
            rows = []
            for i, memory in enumerate(memories):
                values = memory_to_values(memory, self._search_text(memory))
                values["embedding"] = self._vector_blob(vectors[i] if vectors is not None else None)
                values["change_seq"] = seq
                rows.append(values)
            try:
                result = conn.execute(
                    insert(TABLE).returning(T.pk, sort_by_parameter_order=True),  # type: ignore[attr-defined]
                    rows,
                )
            except IntegrityError as exc:
                raise StorageError(f"duplicate memory id: {db_error_message(exc)}") from exc
            return [int(r[0]) for r in result]

    @_translate_errors
    def update(self, memory: Memory, vector: FloatArray | None) -> None:
        if memory.context is None:  # records read back carry no context: keep the indexed one
            with self.engine.connect() as conn:
                memory = keep_indexed_context(conn, memory)
        values = memory_to_values(memory, self._search_text(memory))
        if vector is not None:
            values["embedding"] = self._vector_blob(vector)
        with self._write() as conn:
            values["change_seq"] = self._bump_seq(conn)
            result = conn.execute(update(TABLE).where(T.id == memory.id).values(**values))  # type: ignore[attr-defined]
            if result.rowcount == 0:
                raise MemoryNotFoundError(f"no memory with id {memory.id!r}")

    @_translate_errors
    def supersede(self, old: Memory, new: Memory, vector: FloatArray | None) -> None:
        """Close ``old`` and insert ``new`` atomically; fails if ``old`` was superseded meanwhile."""
        with self._write() as conn:
            seq = self._bump_seq(conn)
            close_superseded(conn, old, change_seq=seq)
            values = memory_to_values(new, self._search_text(new))
            values["embedding"] = self._vector_blob(vector)
            values["change_seq"] = seq
            conn.execute(insert(TABLE), [values])  # type: ignore[attr-defined]

    @_translate_errors
    def delete(self, memory_ids: Sequence[str]) -> int:
        if not memory_ids:
            return 0
        with self._write() as conn:
            pks = [int(r[0]) for r in conn.execute(select(T.pk).where(T.id.in_(list(memory_ids))))]
            if not pks:
                return 0
            return self._delete_pks(conn, pks)

    @_translate_errors
    def delete_matching(self, f: MemoryFilter) -> int:
        with self._write() as conn:
            pks = [int(r[0]) for r in conn.execute(select(T.pk).where(filter_clause(f)))]
            return self._delete_pks(conn, pks) if pks else 0

    def _delete_pks(self, conn: Connection, pks: list[int]) -> int:
        seq = self._bump_seq(conn)
        deleted = 0
        for start in range(0, len(pks), 500):
            chunk = pks[start : start + 500]
            deleted += conn.execute(delete(TABLE).where(T.pk.in_(chunk))).rowcount  # type: ignore[attr-defined]
            conn.execute(insert(D), [{"seq": seq, "pk": pk} for pk in chunk])
        return deleted

    # -- reads ---------------------------------------------------------------------------------

    @_translate_errors
    def get(self, memory_id: str) -> Memory | None:
        with self._read() as conn:
            row = conn.execute(select(*MEMORY_COLUMNS).where(T.id == memory_id)).first()
        return row_to_memory(row) if row is not None else None

    @_translate_errors
    def get_by_pks(self, pks: Sequence[int]) -> dict[int, Memory]:
        out: dict[int, Memory] = {}
        with self._read() as conn:  # the search hot path: driver-level SQL, positional rows
            for start in range(0, len(pks), 500):
                chunk = tuple(int(p) for p in pks[start : start + 500])
                sql = f"{MEMORY_SELECT_SQL} WHERE pk IN ({','.join('?' * len(chunk))})"
                for row in conn.exec_driver_sql(sql, chunk):
                    out[int(row[0])] = values_to_memory(row)
        return out

    @_translate_errors
    def get_vectors(self, pks: Sequence[int]) -> dict[int, FloatArray]:
        out: dict[int, FloatArray] = {}
        with self._read() as conn:  # the search hot path: driver-level SQL
            for start in range(0, len(pks), 500):
                chunk = tuple(int(p) for p in pks[start : start + 500])
                rows = conn.exec_driver_sql(
                    f"SELECT pk, embedding FROM memories WHERE pk IN ({','.join('?' * len(chunk))})"
                    " AND embedding IS NOT NULL",
                    chunk,
                ).fetchall()
                vecs = bytes_to_vectors([r[1] for r in rows], self._dimension)
                out.update({int(r[0]): vecs[i] for i, r in enumerate(rows)})
        return out

    @_translate_errors
    def query(self, f: MemoryFilter) -> list[Memory]:
        with self._read() as conn:
            return [row_to_memory(r) for r in conn.execute(query_statement(filter_clause(f), f))]

    @_translate_errors
    def count(self, f: MemoryFilter) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.count()).where(filter_clause(f))).scalar_one())

    @_translate_errors
    def matching_pks(self, f: MemoryFilter) -> npt.NDArray[np.int64]:
        with self._read() as conn:
            pks = conn.execute(select(T.pk).where(filter_clause(f))).scalars().all()
        return np.asarray(pks, dtype=np.int64)

    @_translate_errors
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

    @_translate_errors
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

    @_translate_errors
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

    @_translate_errors
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

    @_translate_errors
    def vector_count(self) -> int:
        with self._read() as conn:
            return int(
                conn.execute(select(func.count()).where(T.embedding.is_not(None))).scalar_one()
            )

    @_translate_errors
    def stats(self, user_id: str | None = None) -> dict[str, Any]:
        size = sum(
            p.stat().st_size for p in (self.db_path, Path(f"{self.db_path}-wal")) if p.exists()
        )
        with self._read() as conn:
            return count_stats(conn, user_id, filter_clause, size)
