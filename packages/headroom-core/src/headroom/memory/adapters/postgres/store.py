"""PostgresMemoryStore: memories, pgvector embeddings, a tsvector and a change sequence.

The same SQLModel tables as the SQLite store (:mod:`headroom.memory.adapters.sql.tables`); the
dialect differences live here: ``embedding`` is a ``vector(dim)`` column with an HNSW (cosine)
index, ``search_tsv`` a generated ``tsvector`` with a GIN index, and the JSON filters use jsonb.

Every write is one transaction that, as its last statement, adds 1 to one of
:data:`~headroom.memory.adapters.postgres.schema.SEQ_STRIPES` counter rows of ``headroom_meta``
(chosen by the server process id); the change sequence is their sum, read in one statement.
Concurrent writers so rarely wait for each other's row lock (and never for each other's commit
flush), yet the sequence stays exact: each committed write adds exactly 1 to the sum at the
instant it commits, so a reader that saw ``S`` has seen every write counted in ``S``, and the
sum changes whenever anything commits afterwards (this is what caches in any process rely on).
The vectors and the full-text index live in the same rows, so nothing derived has to catch up:
``changes_since`` only reports the sequence number.

Look-ups by id or primary key accept the owner's ``user_id`` (``routes_by_user``): the SQL then
filters by ``user_id`` too, so a user-sharded deployment (Citus, distribution column
``user_id``) routes them to one shard. ``update`` and ``supersede`` use the record's own user.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    Engine,
    bindparam,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from headroom.memory.adapters.postgres.connect import (
    commit_or_fail,
    create_pg_engine,
    ensure_vector_extension,
    redact,
    retried,
    translate_errors,
)
from headroom.memory.adapters.postgres.filters import pg_filter_clause
from headroom.memory.adapters.postgres.reads import PgStoreReads, owned
from headroom.memory.adapters.postgres.schema import (
    HNSW_DDL,
    LOCK_KEY,
    SEQ_STRIPES,
    TABLE,
    M,
    PgVector,
    create_schema,
)
from headroom.memory.adapters.sql.common import (
    check_dimension,
    check_meta,
    close_superseded,
    context_of_search_text,
    default_search_text,
)
from headroom.memory.adapters.sql.tables import (
    memory_to_values,
)
from headroom.memory.errors import (
    DimensionMismatchError,
    MemoryNotFoundError,
    ReadOnlyError,
    StorageError,
)
from headroom.memory.models import Memory
from headroom.memory.ports import FloatArray, MemoryFilter

__all__ = ["PostgresMemoryStore"]

logger = logging.getLogger(__name__)

T = TABLE.c


class PostgresMemoryStore(PgStoreReads):
    """The PostgreSQL store; any number of processes and hosts may share one database."""

    routes_by_user = True
    """Look-ups by id / pk take an optional ``user_id`` (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 5,
        search_text: Any = None,
        hnsw: str = "auto",
        hnsw_min_entries: int = 200_000,
        read_only: bool = False,
    ) -> None:
        self.url = url
        self.db_path = url
        self._pool_size = pool_size
        self._search_text = search_text or default_search_text
        self._dimension = 0
        self._engine: Engine | None = None
        self.read_only = read_only
        self._hnsw_mode = hnsw
        self._hnsw_min_entries = hnsw_min_entries
        self.pgvector_version: tuple[int, ...] = ()
        self.has_hnsw = False
        """True when the HNSW index exists (searches of large visible sets then use it)."""

    def __repr__(self) -> str:
        return f"PostgresMemoryStore({redact(self.url)})"

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def dimension(self) -> int:
        return self._dimension

    @translate_errors
    def open(self, *, embedder_model: str, dimension: int) -> None:
        engine = create_pg_engine(self.url, pool_size=self._pool_size)
        try:
            self._engine = engine
            self._dimension = dimension
            meta: dict[str, str] | None
            if self.read_only:
                meta = self._existing_meta()
            else:
                ensure_vector_extension(engine)
                meta = self._create_schema(embedder_model, dimension)
        except BaseException:
            engine.dispose()
            self._engine = None
            raise
        if meta is not None:
            self._check_meta(meta, embedder_model, dimension)
        self._ensure_hnsw()

    def _existing_meta(self) -> dict[str, str]:
        """Read-only opening: the stored meta; nothing is created."""
        with self._read() as conn:
            if conn.execute(text("SELECT to_regclass('headroom_meta')")).scalar() is None:
                raise StorageError(f"no Headroom memory in {redact(self.url)} (opened read-only)")
            return {row.key: row.value for row in conn.execute(select(M))}

    def _ensure_hnsw(self) -> None:
        """HNSW index: always ("always"), never ("never"), or once the table is large ("auto").

        Inserting into an HNSW graph costs far more than the row itself, and per-user searches
        of small visible sets are exact scans anyway, so AUTO builds the index (in one pass, on
        open) only when the table holds more than ``hnsw_min_entries`` vectors.
        """
        with self._read() as conn:
            exists = conn.execute(
                text("SELECT to_regclass('ix_memories_embedding_hnsw') IS NOT NULL")
            ).scalar_one()
            version = conn.execute(
                text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            ).scalar_one()
        self.pgvector_version = tuple(int(p) for p in str(version).split(".")[:2] if p.isdigit())
        if self.pgvector_version < (0, 8):
            # without iterative index scans a filtered HNSW search can lose a user's matches
            logger.warning("pgvector %s < 0.8: vector search stays exact (no HNSW)", version)
            self.has_hnsw = False
            return
        want = self._hnsw_mode == "always" or (
            self._hnsw_mode == "auto" and self.vector_count() > self._hnsw_min_entries
        )
        if want and not exists and not self.read_only:
            logger.info("building the HNSW index of %s", redact(self.url))
            with self._write() as conn:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
                conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
                conn.exec_driver_sql(HNSW_DDL)
            exists = True
        self.has_hnsw = bool(exists)

    def _check_meta(self, meta: dict[str, str], embedder_model: str, dimension: int) -> None:
        try:
            check_meta(redact(self.url), meta, embedder_model, dimension)
        except DimensionMismatchError:
            self.close()
            raise

    def _create_schema(self, embedder_model: str, dimension: int) -> dict[str, str] | None:
        with self._write() as conn:
            return create_schema(conn, embedder_model, dimension)

    # -- transactions --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        if self.read_only:
            raise ReadOnlyError(
                f"the memory database {redact(self.url)} was opened read-only "
                "(MemoryConfig(read_only=True)); open it without read_only to change it"
            )
        with self.engine.connect() as conn:
            trans = conn.begin()
            try:
                yield conn
            except BaseException:
                with contextlib.suppress(SQLAlchemyError, OSError):  # a dead link rolls back
                    trans.rollback()
                raise
            commit_or_fail(trans.commit, "write")

    def _bump_seq(self, conn: Connection) -> None:
        """Call last in a write transaction: +1 on this backend's stripe of the sequence."""
        conn.execute(_BUMP_SQL, {"n": SEQ_STRIPES})

    # -- writes --------------------------------------------------------------------------------

    def _vector(self, vector: FloatArray | None) -> npt.NDArray[np.float32] | None:
        if vector is None:
            return None
        check_dimension(vector, self._dimension)
        return np.ascontiguousarray(vector, dtype=np.float32)

    def _rows(self, memories: Sequence[Memory], vectors: FloatArray | None) -> list[dict[str, Any]]:
        rows = []
        for i, memory in enumerate(memories):
            values = memory_to_values(memory, self._search_text(memory))
            values["vec"] = self._vector(vectors[i] if vectors is not None else None)
            values["change_seq"] = 0
            rows.append(values)
        return rows

    _INSERT = insert(TABLE).values(embedding=bindparam("vec", type_=PgVector()))  # type: ignore[attr-defined]

    @translate_errors
    @retried
    def insert(self, memories: Sequence[Memory], vectors: FloatArray | None) -> list[int]:
        if not memories:
            return []
        rows = self._rows(memories, vectors)
        with self._write() as conn:
            pks = self._insert_rows(conn, rows)
            self._bump_seq(conn)
            return pks

    def _insert_rows(self, conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
        """Insert with primary keys drawn from the serial sequence up front (order is explicit)."""
        pks = [
            int(p)
            for p in conn.execute(
                text(
                    "SELECT nextval(pg_get_serial_sequence('memories', 'pk')) "
                    "FROM generate_series(1, :n)"
                ),
                {"n": len(rows)},
            ).scalars()
        ]
        for row, pk in zip(rows, pks, strict=True):
            row["pk"] = pk
        try:
            conn.execute(self._INSERT, rows)
        except IntegrityError as exc:
            raise StorageError(f"duplicate memory id: {exc.orig}") from exc
        return pks

    @translate_errors
    @retried
    def update(self, memory: Memory, vector: FloatArray | None) -> None:
        """Rewrite the record (matched by id and its own user_id)."""
        values: dict[str, Any] = memory_to_values(memory, self._search_text(memory))
        params: dict[str, Any] = {}
        if vector is not None:
            values["embedding"] = bindparam("vec", type_=PgVector())
            params["vec"] = self._vector(vector)
        with self._write() as conn:
            if memory.context is None:  # records read back carry no context: keep the indexed one
                old = conn.execute(
                    select(T.search_text).where(T.user_id == memory.user_id, T.id == memory.id)
                ).scalar()
                context = context_of_search_text(old) if old else None
                if context is not None:
                    values["search_text"] = self._search_text(replace(memory, context=context))
            stmt = (
                update(TABLE)  # type: ignore[attr-defined]
                .where(T.user_id == memory.user_id, T.id == memory.id)
                .values(**values)
            )
            result = conn.execute(stmt, params) if params else conn.execute(stmt)
            if result.rowcount == 0:
                raise MemoryNotFoundError(f"no memory with id {memory.id!r}")
            self._bump_seq(conn)

    @translate_errors
    @retried
    def supersede(self, old: Memory, new: Memory, vector: FloatArray | None) -> None:
        """Close ``old`` and insert ``new`` atomically; fails if ``old`` was superseded meanwhile.

        Two processes superseding the same memory: the second UPDATE waits for the first
        transaction's row lock, then re-checks ``superseded_by IS NULL`` and matches no row.
        """
        rows = self._rows([new], vector[None, :] if vector is not None else None)
        with self._write() as conn:
            close_superseded(conn, old, by_user=True)
            self._insert_rows(conn, rows)
            self._bump_seq(conn)

    @translate_errors
    @retried
    def delete(self, memory_ids: Sequence[str], *, user_id: str | None = None) -> int:
        if not memory_ids:
            return 0
        where = owned(T.id.in_(list(memory_ids)), user_id)
        with self._write() as conn:
            pks = [int(r[0]) for r in conn.execute(select(T.pk).where(where).order_by(T.pk))]
            return self._delete_pks(conn, pks, user_id) if pks else 0

    @translate_errors
    @retried
    def delete_matching(self, f: MemoryFilter) -> int:
        with self._write() as conn:
            pks = [
                int(r[0])
                for r in conn.execute(select(T.pk).where(pg_filter_clause(f)).order_by(T.pk))
            ]
            return self._delete_pks(conn, pks, f.user_id) if pks else 0

    def _delete_pks(self, conn: Connection, pks: list[int], user_id: str | None) -> int:
        """Delete the rows (PostgreSQL keeps no deletion log: nothing derived replays it)."""
        deleted = 0
        for start in range(0, len(pks), 5000):
            chunk = pks[start : start + 5000]
            where = owned(T.pk.in_(chunk), user_id)
            deleted += conn.execute(delete(TABLE).where(where)).rowcount  # type: ignore[attr-defined]
        self._bump_seq(conn)
        return deleted


_BUMP_SQL = text(
    "UPDATE headroom_meta SET value = (CAST(value AS BIGINT) + 1)::text "
    "WHERE key = CASE WHEN pg_backend_pid() % :n = 0 THEN 'seq' "
    "ELSE 'seq:' || (pg_backend_pid() % :n) END"
)
