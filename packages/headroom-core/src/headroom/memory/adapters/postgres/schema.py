"""The PostgreSQL schema: the shared SQLModel tables plus the pgvector / tsvector columns.

``create_all`` makes the same tables as on SQLite; then, once, ``embedding`` becomes a
``vector(dim)`` and a generated ``search_tsv`` (english) gets a GIN index. The HNSW index
(:data:`HNSW_DDL`) is created by the store when the configuration asks for it.

Keys ready for sharding by user (Citus requires every primary key and unique constraint of a
distributed table to include the distribution column): the primary key is ``(user_id, pk)``
(which also serves the per-user filters) and ``id`` is unique per user, ``(user_id, id)``; plain
indexes on ``pk`` and ``id`` serve look-ups that do not name the user. ``pk`` still comes from
one sequence and ``id`` is a UUID4, so both stay unique in practice. Databases created before
this layout (primary key ``pk``, unique ``id``) keep working unchanged.

The change sequence is the sum of :data:`SEQ_STRIPES` counter rows (``seq``, ``seq:1`` ...);
see :mod:`headroom.memory.adapters.postgres.store`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.types import UserDefinedType

from headroom.memory.adapters.postgres.filters import pg_filter_clause
from headroom.memory.adapters.sql.common import (
    TABLE,
    D,
    M,
    check_meta,
    count_stats,
    new_meta_rows,
)
from headroom.memory.adapters.sql.tables import table_metadata
from headroom.memory.ports import FloatArray

__all__ = [
    "HNSW_DDL",
    "LOCK_KEY",
    "SEQ_STRIPES",
    "SEQ_SUM_SQL",
    "TABLE",
    "D",
    "M",
    "PgVector",
    "as_array",
    "check_meta",
    "create_schema",
    "int_array",
    "store_stats",
]

LOCK_KEY = 0x4845414452  # advisory lock taken while creating the schema ("HEADR")
SEQ_STRIPES = 16
SEQ_SUM_SQL = text(
    "SELECT COALESCE(sum(CAST(value AS BIGINT)), 0) FROM headroom_meta "
    "WHERE key = 'seq' OR key LIKE 'seq:%'"
)
"""The change sequence: one statement, so one snapshot of every stripe."""
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64


class PgVector(UserDefinedType[Any]):
    """``vector`` values passed straight to psycopg (pgvector's binary dumper/loader)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "vector"


def _schema_ddl(dim: int) -> list[str]:
    return [
        f"ALTER TABLE memories ALTER COLUMN embedding TYPE vector({dim}) USING NULL",
        "ALTER TABLE memories ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS "
        "(to_tsvector('english'::regconfig, search_text)) STORED",
        "CREATE INDEX ix_memories_search_tsv ON memories USING gin (search_tsv)",
        # keys that include the distribution column (user_id), see the module docstring
        "ALTER TABLE memories DROP CONSTRAINT memories_pkey",
        "ALTER TABLE memories ADD CONSTRAINT memories_pkey PRIMARY KEY (user_id, pk)",
        "CREATE INDEX ix_memories_pk ON memories (pk)",
        "DROP INDEX ix_memories_id",
        "CREATE UNIQUE INDEX ux_memories_user_id_id ON memories (user_id, id)",
        "CREATE INDEX ix_memories_id ON memories (id)",
        # keep the vector in the row (pgvector stores it out of line once a row passes ~2 KB,
        # which a 384-d row does: each vector read was then 2 more index + heap look-ups)
        "ALTER TABLE memories SET (toast_tuple_target = 8160)",
        # change_seq is SQLite's replay stamp; PostgreSQL never reads it (always 0 here)
        "DROP INDEX ix_memories_change_seq",
    ]


HNSW_DDL = (
    "CREATE INDEX IF NOT EXISTS ix_memories_embedding_hnsw ON memories USING hnsw "
    f"(embedding vector_cosine_ops) WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
)


def create_schema(conn: Connection, embedder_model: str, dimension: int) -> dict[str, str] | None:
    """Create the tables once (under an advisory lock); the stored meta, or None when new."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
    fresh = conn.execute(text("SELECT to_regclass('memories') IS NULL")).scalar_one()
    table_metadata.create_all(conn, tables=[TABLE, M, D])
    if fresh:
        for statement in _schema_ddl(dimension):
            conn.exec_driver_sql(statement)
    meta = {row.key: row.value for row in conn.execute(select(M))}
    if not meta:
        conn.execute(insert(M), new_meta_rows(embedder_model, dimension))
    conn.execute(  # the sequence's other stripes (also added to databases made without them)
        text(
            "INSERT INTO headroom_meta (key, value) SELECT 'seq:' || i, '0' "
            "FROM generate_series(1, :n) AS i ON CONFLICT (key) DO NOTHING"
        ),
        {"n": SEQ_STRIPES - 1},
    )
    return meta or None


def store_stats(conn: Connection, user_id: str | None) -> dict[str, Any]:
    """Counts by category and scope, users and on-disk size (the MemoryStore.stats shape)."""
    size = conn.execute(
        text(
            "SELECT pg_total_relation_size('memories') + "
            "pg_total_relation_size('memory_deletions') + "
            "pg_total_relation_size('headroom_meta')"
        )
    ).scalar_one()
    return count_stats(conn, user_id, pg_filter_clause, int(size))


def int_array(pks: Sequence[int] | npt.NDArray[np.int64]) -> Any:
    from sqlalchemy.dialects.postgresql import ARRAY
    from sqlalchemy.types import BigInteger

    return bindparam("pks", [int(p) for p in pks], type_=ARRAY(BigInteger))


def as_array(value: Any) -> FloatArray:
    if isinstance(value, np.ndarray):
        return value.astype(np.float32, copy=False)
    if hasattr(value, "to_numpy"):
        return np.asarray(value.to_numpy(), dtype=np.float32)
    from pgvector import Vector

    return np.asarray(Vector._from_db(value), dtype=np.float32)
