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

Full text: a generated ``tsvector`` column (english stemming), queried with
``websearch_to_tsquery`` built from the query's word tokens OR-ed together (quotes, operators and
punctuation in user text are never parsed as syntax), ranked by bm25 (see PgTextIndex). The
visible rows are read once through the filter's (per-user) index and matched there: the GIN
index would first collect every user's rows containing a common word (150 ms at 1M rows).
"""

from __future__ import annotations

import logging
import math
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

__all__ = ["PgTextIndex", "PgVectorIndex", "query_terms", "tsquery_text"]

logger = logging.getLogger(__name__)
T = TABLE.c


def _pk_sql(template: str, user_id: bool) -> Any:
    owned = "user_id = :u AND pk = ANY(:pks)" if user_id else "pk = ANY(:pks)"
    return text(template.format(owned=owned)).bindparams(
        bindparam("q", type_=PgVector()), bindparam("pks", type_=ARRAY(BigInteger))
    )


_EXACT = (
    "WITH c AS MATERIALIZED (SELECT pk, embedding <=> :q AS d FROM memories "
    "WHERE {owned} AND embedding IS NOT NULL) SELECT pk, d FROM c ORDER BY d, pk LIMIT :k"
)
_INDEX = "SELECT pk, embedding <=> :q AS d FROM memories WHERE {owned} ORDER BY embedding <=> :q LIMIT :k"
# keyed by whether the owner is known (the query then also filters by user_id: one shard)
_EXACT_SQL = {False: _pk_sql(_EXACT, False), True: _pk_sql(_EXACT, True)}
_INDEX_SQL = {False: _pk_sql(_INDEX, False), True: _pk_sql(_INDEX, True)}
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
        user_id = None if filter is None else filter.user_id
        params: dict[str, Any] = {"q": q, "k": k}
        if allowed is not None:
            params["pks"] = allowed.tolist()
            if user_id is not None:
                params["u"] = user_id
        with self._store.engine.connect() as conn, conn.begin():
            if allowed is not None and len(allowed) == 0:
                return []
            if not self._store.has_hnsw or (allowed is not None and len(allowed) <= self.exact_max):
                self.last_plan = "exact"
                if allowed is None:
                    rows = conn.execute(_ALL_SQL, {"q": q, "k": k}).all()
                else:
                    rows = conn.execute(_EXACT_SQL[user_id is not None], params).all()
            else:
                self.last_plan = "hnsw"
                conn.exec_driver_sql("SET LOCAL hnsw.iterative_scan = strict_order")
                # the default stop (20k tuples) could end a very selective scan before k rows
                conn.exec_driver_sql("SET LOCAL hnsw.max_scan_tuples = 2000000")
                conn.exec_driver_sql(
                    f"SET LOCAL hnsw.ef_search = {max(int(self.ef_search), min(k, 1000))}"
                )
                if allowed is None:
                    rows = conn.execute(_ALL_SQL, {"q": q, "k": k}).all()
                else:
                    rows = conn.execute(_INDEX_SQL[user_id is not None], params).all()
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


def query_terms(user_text: str) -> list[str]:
    """The distinct word tokens of a query, stopwords dropped (kept if nothing else is left)."""
    text = tsquery_text(user_text)
    return text.split(" or ") if text else []


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
    """The TextIndex port over the store's generated ``search_tsv`` column, scored like bm25.

    PostgreSQL's ``ts_rank`` has no inverse document frequency, so a rare word counts no more
    than a common one. The rows matching any query term (inside the filter, at most
    ``max_candidates``, best ``ts_rank`` first) are fetched with one match flag per term, and
    ranked by Okapi bm25 (k1=1.2, b=0.75, term frequency 1, length = distinct lexemes) with the
    document frequencies of the visible set.
    """

    def __init__(self, store: PostgresMemoryStore, *, max_candidates: int = 5000) -> None:
        self._store = store
        self.max_candidates = max_candidates

    @translate_errors
    @retried
    def search(self, query: str, k: int, filter: MemoryFilter) -> list[tuple[int, float]]:
        terms = query_terms(query)
        if not terms or k <= 0:
            return []
        english: Any = literal_column("'english'::regconfig")
        any_term = func.websearch_to_tsquery(english, " or ".join(terms))
        # the visible rows, read once (by the filter's per-user index, never by the GIN index:
        # a common word matches a large share of all users' rows), then matched and counted
        visible = (
            select(T.pk.label("pk"), literal_column("memories.search_tsv").label("tsv"))
            .where(pg_filter_clause(filter))
            .cte("visible")
            .prefix_with("MATERIALIZED")
        )
        tsv: Any = visible.c.tsv
        flags = [tsv.op("@@")(func.plainto_tsquery(english, t)) for t in terms]
        stmt = (
            select(
                visible.c.pk,
                func.length(tsv),
                *flags,
                select(func.count()).select_from(visible).scalar_subquery(),
                select(func.avg(func.length(tsv))).select_from(visible).scalar_subquery(),
            )
            .where(tsv.op("@@")(any_term))
            .order_by(func.ts_rank(tsv, any_term).desc(), visible.c.pk)
            .limit(self.max_candidates)
        )
        with self._store.engine.connect() as conn, conn.begin():
            rows = conn.execute(stmt).all()
        if not rows:
            return []
        n_visible, avg_len = rows[0][-2], rows[0][-1]
        return _bm25(rows, len(terms), int(n_visible), float(avg_len or 1.0), k)

    def rebuild(self) -> None:
        """No-op: the tsvector is a generated column, always in step with the row."""


def _bm25(
    rows: Sequence[Any], n_terms: int, visible: int, avg_len: float, k: int
) -> list[tuple[int, float]]:
    k1, b = 1.2, 0.75
    df = [sum(1 for r in rows if r[2 + t]) for t in range(n_terms)]
    idf = [math.log(1.0 + (visible - d + 0.5) / (d + 0.5)) for d in df]
    scored = []
    for row in rows:
        norm = (k1 + 1.0) / (1.0 + k1 * (1.0 - b + b * float(row[1] or 0) / max(avg_len, 1e-9)))
        score = sum(idf[t] for t in range(n_terms) if row[2 + t]) * norm
        if score > 0:
            scored.append((int(row[0]), score))
    scored.sort(key=lambda hit: (-hit[1], hit[0]))
    return scored[:k]
