"""Vector and full-text search inside PostgreSQL (the rows of :class:`PostgresMemoryStore`).

Vectors: ``embedding <=> query`` (cosine distance) over a ``vector(dim)`` column with an HNSW
index. The engine hands over the primary keys the request may see (filter before rank), and the
rule that keeps a user's best match is:

* at most ``exact_max`` visible vectors (the usual per-user case), or no HNSW index yet: an
  exact scan of exactly those rows (a MATERIALIZED CTE, so the planner cannot swap in the
  approximate index);
* more, with the HNSW index built: the index with ``hnsw.iterative_scan = strict_order``, which
  keeps walking the graph until ``k`` rows pass the filter, so other users' closer vectors cannot
  crowd the result out.

Full text: a generated ``tsvector`` column (english stemming) with a GIN index, queried with
``websearch_to_tsquery`` built from the query's word tokens OR-ed together (quotes, operators and
punctuation in user text are never parsed as syntax), ranked with ``ts_rank``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import bindparam, func, literal_column, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import BigInteger

from headroom.memory.adapters.postgres.connect import retried, translate_errors
from headroom.memory.adapters.postgres.filters import pg_filter_clause
from headroom.memory.adapters.postgres.schema import TABLE, PgVector
from headroom.memory.adapters.postgres.store import PostgresMemoryStore
from headroom.memory.ports import FloatArray, MemoryFilter, VectorFilter

__all__ = ["PgTextIndex", "PgVectorIndex", "tsquery_text"]

logger = logging.getLogger(__name__)
T = TABLE.c

_EXACT_SQL = text(
    "WITH c AS MATERIALIZED (SELECT pk, embedding <=> :q AS d FROM memories "
    "WHERE pk = ANY(:pks) AND embedding IS NOT NULL) SELECT pk, d FROM c ORDER BY d, pk LIMIT :k"
).bindparams(bindparam("q", type_=PgVector()), bindparam("pks", type_=ARRAY(BigInteger)))
_INDEX_SQL = text(
    "SELECT pk, embedding <=> :q AS d FROM memories WHERE pk = ANY(:pks) "
    "ORDER BY embedding <=> :q LIMIT :k"
).bindparams(bindparam("q", type_=PgVector()), bindparam("pks", type_=ARRAY(BigInteger)))
_ALL_SQL = text(
    "SELECT pk, embedding <=> :q AS d FROM memories WHERE embedding IS NOT NULL "
    "ORDER BY embedding <=> :q LIMIT :k"
).bindparams(bindparam("q", type_=PgVector()))


class PgVectorIndex:
    """The VectorIndex port over the store's ``embedding`` column (nothing to load or save)."""

    def __init__(self, store: PostgresMemoryStore, *, exact_max: int = 20_000, ef_search: int = 64):
        self._store = store
        self.exact_max = exact_max
        self.ef_search = ef_search
        self.last_plan = ""

    @property
    def dimension(self) -> int:
        return self._store.dimension

    def upsert(self, ids: Sequence[int], vectors: FloatArray) -> None:
        """No-op: the store wrote the vectors in the same rows."""

    def remove(self, ids: Sequence[int]) -> None:
        """No-op: deleting the rows removed their vectors."""

    def clear(self) -> None:
        """No-op (the index is the table's own HNSW index)."""

    def save(self, seq: int) -> None:
        """No-op: PostgreSQL persists the index."""

    def load(self) -> int | None:
        return self._store.current_seq()

    def __len__(self) -> int:
        return self._store.vector_count() if self._store._engine is not None else 0

    @translate_errors
    @retried
    def search(
        self, query: FloatArray, k: int, filter: VectorFilter | None = None
    ) -> list[tuple[int, float]]:
        if k <= 0:
            return []
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
        allowed = None if filter is None else filter.allowed_ids
        with self._store.engine.connect() as conn, conn.begin():
            if allowed is not None and len(allowed) == 0:
                return []
            if not self._store.has_hnsw or (allowed is not None and len(allowed) <= self.exact_max):
                self.last_plan = "exact"
                if allowed is None:
                    rows = conn.execute(_ALL_SQL, {"q": q, "k": k}).all()
                else:
                    rows = conn.execute(_EXACT_SQL, {"q": q, "pks": allowed.tolist(), "k": k}).all()
            else:
                self.last_plan = "hnsw"
                conn.exec_driver_sql("SET LOCAL hnsw.iterative_scan = strict_order")
                conn.exec_driver_sql(
                    f"SET LOCAL hnsw.ef_search = {max(int(self.ef_search), min(k, 1000))}"
                )
                if allowed is None:
                    rows = conn.execute(_ALL_SQL, {"q": q, "k": k}).all()
                else:
                    rows = conn.execute(_INDEX_SQL, {"q": q, "pks": allowed.tolist(), "k": k}).all()
        return [(int(pk), 1.0 - float(d)) for pk, d in rows]


_TOKEN = re.compile(r"\w+", re.UNICODE)
_MAX_TERMS = 48
_STOPWORDS = frozenset(
    """a an and are as at be been but by can could did do does for from had has have he her his
    how i if in into is it its me my of on or our she so than that the their them then there
    these they this to was we were what when where which who whom why will with would you your
    about after again all am any because before being both doing each few further here
    just more most no nor not now only other own same should some such too under until up very
    s t don""".split()
)


def tsquery_text(user_text: str) -> str | None:
    """Input for ``websearch_to_tsquery``: the distinct word tokens OR-ed (or None if none)."""
    tokens = [t.lower() for t in _TOKEN.findall(user_text or "")]
    tokens = [t.replace("_", " ") for t in tokens]
    terms = [t for t in tokens if t not in _STOPWORDS and t.strip()] or [
        t for t in tokens if t.strip()
    ]
    seen: list[str] = []
    for term in terms:
        if term not in seen and term != "or":
            seen.append(term)
    if not seen:
        return None
    return " or ".join(seen[:_MAX_TERMS])


class PgTextIndex:
    """The TextIndex port over the store's generated ``search_tsv`` column."""

    def __init__(self, store: PostgresMemoryStore) -> None:
        self._store = store

    @translate_errors
    @retried
    def search(self, query: str, k: int, filter: MemoryFilter) -> list[tuple[int, float]]:
        terms = tsquery_text(query)
        if terms is None or k <= 0:
            return []
        tsq = func.websearch_to_tsquery(literal_column("'english'::regconfig"), terms)
        tsv: Any = literal_column("memories.search_tsv")
        score = func.ts_rank(tsv, tsq, 1).label("score")
        stmt = (
            select(T.pk, score)
            .where(tsv.op("@@")(tsq))
            .where(pg_filter_clause(filter))
            .order_by(score.desc(), T.pk)
            .limit(k)
        )
        with self._store.engine.connect() as conn, conn.begin():
            rows = conn.execute(stmt).all()
        return [(int(pk), float(s)) for pk, s in rows]

    def rebuild(self) -> None:
        """No-op: the tsvector is a generated column, always in step with the row."""
