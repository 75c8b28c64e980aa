"""FTS5TextIndex: SQLite FTS5 (Porter stemming, bm25) over the store's ``memories`` table.

The FTS table is an *external-content* table (``content='memories'``): it holds the index only,
never a copy of the text, and AFTER INSERT/UPDATE/DELETE triggers keep it in step inside the same
transaction as every store write (also writes from other processes). ``rebuild()`` regenerates
it from the store.
"""

from __future__ import annotations

import logging
import re

from sqlalchemy import column, literal_column, select, table, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DatabaseError, OperationalError

from headroom.memory.adapters.sql.filters import filter_clause
from headroom.memory.adapters.sql.tables import MemoryRow
from headroom.memory.adapters.sqlite.store import SQLModelMemoryStore
from headroom.memory.errors import IndexError_
from headroom.memory.ports import MemoryFilter

__all__ = ["FTS5TextIndex", "fts5_query"]

_log = logging.getLogger(__name__)
FTS_TABLE = "memory_fts"
_DDL = [
    f"""CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(
        search_text, content='memories', content_rowid='pk', tokenize='porter unicode61')""",
    f"""CREATE TRIGGER IF NOT EXISTS memories_fts_ai AFTER INSERT ON memories BEGIN
        INSERT INTO {FTS_TABLE}(rowid, search_text) VALUES (new.pk, new.search_text); END""",
    f"""CREATE TRIGGER IF NOT EXISTS memories_fts_ad AFTER DELETE ON memories BEGIN
        INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, search_text)
        VALUES ('delete', old.pk, old.search_text); END""",
    f"""CREATE TRIGGER IF NOT EXISTS memories_fts_au AFTER UPDATE OF search_text ON memories BEGIN
        INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, search_text)
        VALUES ('delete', old.pk, old.search_text);
        INSERT INTO {FTS_TABLE}(rowid, search_text) VALUES (new.pk, new.search_text); END""",
]

# Query-side stopwords: frequent words that match most rows, cost time and add no signal.
_STOPWORDS = frozenset(
    """a an and are as at be been but by can could did do does for from had has have he her his
    how i if in into is it its me my of on or our she so than that the their them then there
    these they this to was we were what when where which who whom why will with would you your
    about after again all am any because before being both did doing each few further here
    just more most no nor not now only other own same should some such too under until up very
    s t don""".split()
)
_TOKEN = re.compile(r"\w+", re.UNICODE)
_MAX_TERMS = 48

_fts = table(FTS_TABLE, column("rowid"))
T = MemoryRow.__table__  # type: ignore[attr-defined]


def fts5_query(user_text: str) -> str | None:
    """A safe FTS5 MATCH expression for any user string, or None when nothing is searchable.

    Every term is quoted (so AND/OR/NEAR, quotes, ``*``, ``:`` and ``^`` are plain text) and the
    terms are OR-ed, letting bm25 rank rows by how many and how rare the matched terms are.
    """
    tokens = [t.lower() for t in _TOKEN.findall(user_text or "")]
    terms = [t for t in tokens if t not in _STOPWORDS] or tokens
    seen: list[str] = []
    for term in terms:
        if term not in seen:
            seen.append(term)
    if not seen:
        return None
    return " OR ".join(f'"{t}"' for t in seen[:_MAX_TERMS])


def create_fts_schema(conn: Connection) -> None:
    """DDL hook for :class:`SQLModelMemoryStore` (runs inside its schema transaction on every open).

    A missing FTS table (dropped, or a database from elsewhere) is created and rebuilt from the
    store; so is one whose document count disagrees with the store (rows written while its
    triggers were missing). Both checks are cheap counts, not a full integrity check.
    """
    existed = conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (FTS_TABLE,)
    ).first()
    for statement in _DDL:
        conn.exec_driver_sql(statement)
    rows = conn.exec_driver_sql("SELECT count(*) FROM memories").scalar_one()
    indexed = conn.exec_driver_sql(f"SELECT count(*) FROM {FTS_TABLE}_docsize").scalar_one()
    if rows and (existed is None or indexed != rows):
        _log.warning(
            "full-text index %s (%d of %d rows); rebuilding it from the store",
            "was missing" if existed is None else "is out of step", indexed, rows,
        )  # fmt: skip
        conn.exec_driver_sql(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")


class FTS5TextIndex:
    """Full-text search over the memories of a :class:`SQLModelMemoryStore`."""

    def __init__(self, store: SQLModelMemoryStore) -> None:
        self._store = store

    def search(self, query: str, k: int, filter: MemoryFilter) -> list[tuple[int, float]]:
        match = fts5_query(query)
        if match is None or k <= 0:
            return []
        stmt = (
            select(T.c.pk, literal_column(f"bm25({FTS_TABLE})").label("score"))
            .select_from(_fts.join(T, T.c.pk == _fts.c.rowid))
            .where(literal_column(FTS_TABLE).op("MATCH")(match))
            .where(filter_clause(filter))
            .order_by(literal_column("rank"))
            .limit(k)
        )
        try:
            with self._store.engine.connect() as conn:
                rows = conn.execute(stmt).all()
        except (OperationalError, DatabaseError) as exc:
            raise IndexError_(f"full-text search failed: {exc}") from exc
        return [(int(pk), -float(score)) for pk, score in rows]

    def rebuild(self) -> None:
        try:
            with self._store.engine.connect() as conn, conn.begin():
                conn.execute(text(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')"))
        except (OperationalError, DatabaseError) as exc:
            raise IndexError_(f"full-text index rebuild failed: {exc}") from exc

    def check(self) -> bool:
        """True when the FTS index agrees with the store (FTS5 integrity-check)."""
        try:
            with self._store.engine.connect() as conn, conn.begin():
                conn.execute(
                    text(
                        f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rank) VALUES ('integrity-check', 1)"
                    )
                )
            return True
        except (OperationalError, DatabaseError):
            return False
