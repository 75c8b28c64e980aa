"""The reads of :class:`~headroom.memory.adapters.postgres.store.PostgresMemoryStore`.

Look-ups by id or primary key take the owner's optional ``user_id``; with it the SQL also filters
by ``user_id``, so a user-sharded database (Citus) reads one shard. All reads run once more after
a lost connection (:func:`~headroom.memory.adapters.postgres.connect.retried`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import and_, func, select, type_coerce

from headroom.memory.adapters.postgres.connect import retried, translate_errors
from headroom.memory.adapters.postgres.filters import pg_filter_clause
from headroom.memory.adapters.postgres.schema import (
    SEQ_SUM_SQL,
    TABLE,
    PgVector,
    as_array,
    int_array,
    store_stats,
)
from headroom.memory.adapters.sql.common import MEMORY_COLUMNS, SqlStoreBase, query_statement
from headroom.memory.adapters.sql.tables import row_to_memory
from headroom.memory.models import Memory
from headroom.memory.ports import FloatArray, MemoryFilter, StoreChanges

__all__ = ["PgStoreReads", "owned"]

T = TABLE.c


def owned(where: Any, user_id: str | None) -> Any:
    """``where`` AND ``user_id = ...`` when the owner is known (routes to one shard)."""
    return and_(T.user_id == user_id, where) if user_id is not None else where


class PgStoreReads(SqlStoreBase):
    """Reads over the store's rows (the store adds the lifecycle and the writes)."""

    _dimension: int

    _EMBEDDING = type_coerce(T.embedding, PgVector()).label("embedding")

    @translate_errors
    @retried
    def get(self, memory_id: str, *, user_id: str | None = None) -> Memory | None:
        """The record, or None; with ``user_id``, only if that user owns it (one shard)."""
        with self._read() as conn:
            where = owned(T.id == memory_id, user_id)
            row = conn.execute(select(*MEMORY_COLUMNS).where(where)).first()
        return row_to_memory(row) if row is not None else None

    @translate_errors
    @retried
    def get_by_pks(self, pks: Sequence[int], *, user_id: str | None = None) -> dict[int, Memory]:
        if not len(pks):
            return {}
        with self._read() as conn:
            where = owned(T.pk == func.any(int_array(pks)), user_id)
            rows = conn.execute(select(*MEMORY_COLUMNS).where(where))
            return {int(row.pk): row_to_memory(row) for row in rows}

    @translate_errors
    @retried
    def get_vectors(
        self, pks: Sequence[int], *, user_id: str | None = None
    ) -> dict[int, FloatArray]:
        if not len(pks):
            return {}
        with self._read() as conn:
            where = owned(T.pk == func.any(int_array(pks)), user_id)
            rows = conn.execute(
                select(T.pk, self._EMBEDDING).where(where, T.embedding.is_not(None))
            ).all()
        return {int(r.pk): as_array(r.embedding) for r in rows}

    @translate_errors
    @retried
    def query(self, f: MemoryFilter) -> list[Memory]:
        with self._read() as conn:
            return [row_to_memory(r) for r in conn.execute(query_statement(pg_filter_clause(f), f))]

    @translate_errors
    @retried
    def count(self, f: MemoryFilter) -> int:
        with self._read() as conn:
            stmt = select(func.count()).select_from(TABLE).where(pg_filter_clause(f))
            return int(conn.execute(stmt).scalar_one())

    @translate_errors
    @retried
    def matching_pks(self, f: MemoryFilter) -> npt.NDArray[np.int64]:
        with self._read() as conn:
            pks = conn.execute(select(T.pk).where(pg_filter_clause(f))).scalars().all()
        return np.asarray(pks, dtype=np.int64)

    @translate_errors
    @retried
    def current_seq(self) -> int:
        with self._read() as conn:
            return int(conn.execute(SEQ_SUM_SQL).scalar_one())

    def changes_since(self, seq: int) -> StoreChanges:
        """Vectors live in the rows themselves: there is never anything to replay (no query)."""
        return StoreChanges(seq=seq)

    @translate_errors
    @retried
    def snapshot_vectors(self) -> tuple[int, list[int], FloatArray]:
        """Every stored vector and the sequence number they are consistent with (one read)."""
        with self.engine.connect() as conn, conn.begin():
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            now = int(conn.execute(SEQ_SUM_SQL).scalar_one())
            rows = conn.execute(
                select(T.pk, self._EMBEDDING).where(T.embedding.is_not(None)).order_by(T.pk)
            ).all()
        vecs = (
            np.stack([as_array(r.embedding) for r in rows])
            if rows
            else np.zeros((0, self._dimension), dtype=np.float32)
        )
        return now, [int(r.pk) for r in rows], vecs

    @translate_errors
    @retried
    def vector_count(self) -> int:
        with self._read() as conn:
            return int(
                conn.execute(select(func.count()).where(T.embedding.is_not(None))).scalar_one()
            )

    @translate_errors
    @retried
    def stats(self, user_id: str | None = None) -> dict[str, Any]:
        with self._read() as conn:
            return store_stats(conn, user_id)
