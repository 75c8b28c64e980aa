"""FTS5TextIndex: SQLite FTS5 (Porter stemming, bm25) over the store's ``memories`` table.

The FTS table is an *external-content* table over the view ``memory_fts_src``: it holds the index
only, never a copy of the text, and AFTER INSERT/UPDATE/DELETE triggers keep it in step inside the
same transaction as every store write (also writes from other processes). ``rebuild()``
regenerates it from the store.

Cost follows the user's data, not the store's:

* every row also indexes an *owner token* (``u<hex of user_id>0``, column ``owner``, bm25 weight
  0), and a search ANDs it with the text terms, so FTS5 walks only the user's postings (it seeks
  through the other doclists) instead of ranking every matching row of every user;
* query terms whose document frequency makes their bm25 idf <= 0 (in half the rows or more: FTS5
  clamps their weight to 1e-6) are dropped before the query runs, so a word found in every row
  ("user") costs nothing; the document frequencies come from ``fts5vocab``;
* the query is capped to the :data:`MAX_QUERY_TERMS` most informative (rarest) terms, chosen from
  the first :data:`MAX_CANDIDATE_TERMS` distinct words, and built in linear time, so a 100 KB
  message costs about what a short one does.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterator

from sqlalchemy import column, literal_column, select, table, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DatabaseError, OperationalError

from headroom.memory.adapters.sql.filters import filter_clause
from headroom.memory.adapters.sql.tables import MemoryRow
from headroom.memory.adapters.sqlite.bm25 import WORD_RE, bm25_idf, fts5_totals, word_text
from headroom.memory.adapters.sqlite.store import SQLModelMemoryStore
from headroom.memory.adapters.sqlite.user_postings import IntArray, UserPostings
from headroom.memory.errors import IndexError_
from headroom.memory.ports import MemoryFilter

__all__ = ["FTS5TextIndex", "fts5_query", "owner_token", "query_words"]

_log = logging.getLogger(__name__)
FTS_TABLE = "memory_fts"
_SRC_VIEW = "memory_fts_src"
_OWNER_SQL = "'u' || hex({0}.user_id) || '0'"
_DDL = [
    f"""CREATE VIEW IF NOT EXISTS {_SRC_VIEW} AS
        SELECT pk, search_text, {_OWNER_SQL.format("memories")} AS owner FROM memories""",
    f"""CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(
        search_text, owner, content='{_SRC_VIEW}', content_rowid='pk',
        tokenize='porter unicode61')""",
    f"""CREATE TRIGGER IF NOT EXISTS memories_fts_ai AFTER INSERT ON memories BEGIN
        INSERT INTO {FTS_TABLE}(rowid, search_text, owner)
        VALUES (new.pk, new.search_text, {_OWNER_SQL.format("new")}); END""",
    f"""CREATE TRIGGER IF NOT EXISTS memories_fts_ad AFTER DELETE ON memories BEGIN
        INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, search_text, owner)
        VALUES ('delete', old.pk, old.search_text, {_OWNER_SQL.format("old")}); END""",
    f"""CREATE TRIGGER IF NOT EXISTS memories_fts_au
        AFTER UPDATE OF search_text, user_id ON memories BEGIN
        INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, search_text, owner)
        VALUES ('delete', old.pk, old.search_text, {_OWNER_SQL.format("old")});
        INSERT INTO {FTS_TABLE}(rowid, search_text, owner)
        VALUES (new.pk, new.search_text, {_OWNER_SQL.format("new")}); END""",
]
_OLD_OBJECTS = ["TRIGGER IF EXISTS memories_fts_ai", "TRIGGER IF EXISTS memories_fts_ad",
                "TRIGGER IF EXISTS memories_fts_au", f"TABLE IF EXISTS {FTS_TABLE}"]  # fmt: skip
# Per-connection helpers (TEMP schema: nothing is written to the database file).
_TEMP_DDL = [
    f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{FTS_TABLE}_vocab USING fts5vocab(main, {FTS_TABLE}, row)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS temp.headroom_qterms USING fts5(t, tokenize='porter unicode61')",
    "CREATE VIRTUAL TABLE IF NOT EXISTS temp.headroom_qterms_v USING fts5vocab(temp, headroom_qterms, instance)",
]  # fmt: skip

# Query-side stopwords: frequent words that match most rows, cost time and add no signal.
_STOPWORDS = frozenset(
    """a an and are as at be been but by can could did do does for from had has have he her his
    how i if in into is it its me my of on or our she so than that the their them then there
    these they this to was we were what when where which who whom why will with would you your
    about after again all am any because before being both did doing each few further here
    just more most no nor not now only other own same should some such too under until up very
    s t don""".split()
)
_SEPARATOR = re.compile(r"[\W_]", re.UNICODE)
_SCAN_CHARS = 8192
MAX_QUERY_TERMS = 32
"""At most this many terms (the rarest in the index) go into one FTS5 query."""
MAX_CANDIDATE_TERMS = 512
"""Distinct words considered per query (the first ones when a message has more)."""

_fts = table(FTS_TABLE, column("rowid"))
T = MemoryRow.__table__  # type: ignore[attr-defined]


def owner_token(user_id: str) -> str:
    """The token indexed in the ``owner`` column for ``user_id`` (matches ``_OWNER_SQL``)."""
    return "u" + user_id.encode("utf-8").hex().upper() + "0"


def query_words(user_text: str, limit: int = MAX_CANDIDATE_TERMS) -> list[str]:
    """Distinct lower-cased words of ``user_text`` (stopwords dropped unless nothing else is
    left), in first-occurrence order, at most ``limit``. Linear in the length of the text."""
    text = user_text or ""
    tokens: dict[str, None] = {}
    informative = 0
    start = 0
    while start < len(text) and informative < limit:  # a 100 KB message stops early
        end = start + _SCAN_CHARS
        if end < len(text):  # cut at a separator, never inside a word
            cut = _SEPARATOR.search(text, end)
            end = cut.start() if cut else len(text)
        for token in WORD_RE.findall(word_text(text[start:end])):
            if token not in tokens:
                tokens[token] = None
                informative += token not in _STOPWORDS
        start = end
    words = [t for t in tokens if t not in _STOPWORDS] or list(tokens)
    return words[:limit]


def fts5_query(user_text: str) -> str | None:
    """A safe FTS5 MATCH expression for any user string, or None when nothing is searchable.

    Every term is quoted (so AND/OR/NEAR, quotes, ``*``, ``:`` and ``^`` are plain text) and the
    terms are OR-ed, letting bm25 rank rows by how many and how rare the matched terms are.
    """
    words = query_words(user_text)[:MAX_QUERY_TERMS]
    return _or(words) if words else None


def _or(words: list[str]) -> str:
    return " OR ".join(f'"{w}"' for w in words)


def create_fts_schema(conn: Connection) -> None:
    """DDL hook for :class:`SQLModelMemoryStore` (runs inside its schema transaction on every open).

    A database indexed by an older layout (no ``owner`` column) is migrated: the FTS table and
    its triggers are recreated. A missing FTS table (dropped, or a database from elsewhere) is
    created and rebuilt from the store; so is one whose document count disagrees with the store
    (rows written while its triggers were missing). Both checks are cheap counts, not a full
    integrity check.
    """
    row = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (FTS_TABLE,)
    ).fetchone()
    current = row is not None and "owner" in str(row[0])
    if row is not None and not current:
        for obj in _OLD_OBJECTS:
            conn.exec_driver_sql(f"DROP {obj}")
    for statement in _DDL:
        conn.exec_driver_sql(statement)
    if not current:
        conn.exec_driver_sql(
            f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rank) VALUES ('rank', 'bm25(1.0, 0.0)')"
        )
    rows = conn.exec_driver_sql("SELECT count(*) FROM memories").scalar_one()
    indexed = conn.exec_driver_sql(f"SELECT count(*) FROM {FTS_TABLE}_docsize").scalar_one()
    if rows and (not current or indexed != rows):
        _log.warning(
            "full-text index %s (%d of %d rows); rebuilding it from the store",
            "was missing or in an old layout" if not current else "is out of step", indexed, rows,
        )  # fmt: skip
        conn.exec_driver_sql(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")


class FTS5TextIndex:
    """Full-text search over the memories of a :class:`SQLModelMemoryStore`."""

    stem_cache_size = 200_000
    """Words whose stems are remembered (stemming never changes)."""

    def __init__(self, store: SQLModelMemoryStore, *, max_postings: int = 20_000_000) -> None:
        self._store = store
        self._stems: dict[str, tuple[str, ...]] = {}
        self._df: dict[str, int] = {}
        self._df_rows = -1  # the row count the cached document frequencies were read at
        self._lock = threading.RLock()  # the caches above are shared by the reader threads
        self._postings = UserPostings(
            self._stem_words, max_postings=max_postings, connect=self._postings_connection
        )

    def search_visible(
        self, query: str, k: int, filter: MemoryFilter, allowed: IntArray
    ) -> list[tuple[int, float]]:
        """:meth:`search` for a filter of one user whose visible rows are ``allowed`` (the
        sorted pks ``filter`` selects, read by the caller), ranked from the user's in-memory
        postings (:mod:`~headroom.memory.adapters.sqlite.user_postings`): the same bm25 as FTS5,
        at a cost that follows the user's rows instead of the whole table's."""
        words = query_words(query)
        if not words or k <= 0 or allowed.size == 0:
            return []
        if filter.user_id is None:
            return self.search(query, k, filter)
        try:
            with self._store.engine.connect() as conn:
                self._ensure_temp(conn)
                with conn.begin():
                    total, avgdl = fts5_totals(conn)
                    chosen, stems, df = self._choose(conn, words, total)
                    # one bm25 phrase per chosen word, as in the FTS5 query (two words with one
                    # stem count twice there too)
                    weighted = [(t, bm25_idf(total, df[t]))
                                for w in chosen for t in stems[w] if df.get(t, 0) > 0]  # fmt: skip
                    hits = self._postings.search(conn, filter.user_id, weighted, k, allowed, avgdl)
        except (OperationalError, DatabaseError) as exc:
            raise IndexError_(f"full-text search failed: {exc}") from exc
        if hits is None:  # ids out of the in-memory index's range: rank with FTS5
            return self.search(query, k, filter)
        return hits

    def search(self, query: str, k: int, filter: MemoryFilter) -> list[tuple[int, float]]:
        words = query_words(query)
        if not words or k <= 0:
            return []
        try:
            with self._store.engine.connect() as conn:
                terms = self._informative(conn, words)
                if not terms:
                    return []
                match = f"search_text : ({_or(terms)})"
                if filter.user_id is not None:
                    match = f'owner : "{owner_token(filter.user_id)}" AND {match}'
                stmt = (
                    select(T.c.pk, literal_column("rank").label("score"))
                    .select_from(_fts.join(T, T.c.pk == _fts.c.rowid))
                    .where(literal_column(FTS_TABLE).op("MATCH")(match))
                    .where(filter_clause(filter))
                    .order_by(literal_column("rank"))
                    .limit(k)
                )
                rows = conn.execute(stmt).all()
        except (OperationalError, DatabaseError) as exc:
            raise IndexError_(f"full-text search failed: {exc}") from exc
        return [(int(pk), -float(score)) for pk, score in rows]

    def _informative(
        self, conn: Connection, words: list[str], total: int | None = None
    ) -> list[str]:
        """The words worth querying (see :meth:`_choose`)."""
        return self._choose(conn, words, total)[0]

    def _choose(
        self, conn: Connection, words: list[str], total: int | None = None
    ) -> tuple[list[str], dict[str, tuple[str, ...]], dict[str, int]]:
        """The words worth querying: bm25 weight > 0 (fewer than half the rows contain them),
        rarest first, at most MAX_QUERY_TERMS; the single rarest word when none qualifies. Also
        returns the stems of ``words`` and the document frequencies of those stems.

        Stems are cached for good; non-zero document frequencies until the row count moves by
        1% (a frequency that drifts that little does not change which terms are dropped); terms
        in no row are looked up again on every query, so a new word is found at once. ``total``
        is the FTS5 row count when the caller has read it. SQL runs outside the lock (only the
        cache updates take it), so concurrent searches never wait on another one's look-ups."""
        if total is None:
            total = fts5_totals(conn)[0]
        with self._lock:
            if abs(total - self._df_rows) > max(10, total // 100):  # >1% rows moved: reread
                self._df = {}
                self._df_rows = total
            cached_df = self._df
        stems = self._stems_of(conn, words)
        missing = sorted({t for w in words for t in stems[w] if t not in cached_df})
        df = {t: cached_df[t] for w in words for t in stems[w] if t in cached_df}
        if missing:
            marks = ",".join("?" * len(missing))
            found = {str(t): int(d) for t, d in conn.exec_driver_sql(
                f"SELECT term, doc FROM temp.{FTS_TABLE}_vocab WHERE term IN ({marks})",
                tuple(missing),
            )}  # fmt: skip
            df.update(found)
            with self._lock:  # absent terms are not cached: they are looked up again
                self._df.update(found)
        scored: list[tuple[int, int, str]] = []
        for i, word in enumerate(words):
            terms = stems[word]
            if not terms:
                continue
            freq = max(df.get(t, 0) for t in terms)
            if freq == 0:
                continue  # in no row right now: cannot match
            scored.append((freq, i, word))
        if not scored:
            return [], stems, df
        scored.sort()
        keep = [s for s in scored if 2 * s[0] < total][:MAX_QUERY_TERMS] or scored[:1]
        return [word for _, _, word in sorted(keep, key=lambda s: s[1])], stems, df

    @contextlib.contextmanager
    def _postings_connection(self) -> Iterator[Connection]:
        """A pooled connection with the TEMP stemming helpers, for background postings loads."""
        with self._store.engine.connect() as conn:
            self._ensure_temp(conn)
            yield conn

    @staticmethod
    def _ensure_temp(conn: Connection) -> None:
        """Create the per-connection TEMP helpers (outside any transaction of the caller)."""
        if not conn.info.get("headroom_fts_temp"):
            for statement in _TEMP_DDL:
                conn.exec_driver_sql(statement)
            conn.commit()  # TEMP objects live as long as the pooled connection
            conn.info["headroom_fts_temp"] = True

    def _stem_words(self, conn: Connection, words: list[str]) -> dict[str, tuple[str, ...]]:
        """Stems of ``words`` (cached), for the in-memory postings."""
        return self._stems_of(conn, words)

    def _stems_of(self, conn: Connection, words: list[str]) -> dict[str, tuple[str, ...]]:
        """Stems of ``words``: cached ones, the others stemmed on ``conn`` (outside the lock)."""
        cached = self._stems
        unknown = [w for w in words if w not in cached]
        if not unknown:
            return {w: cached[w] for w in words}
        found = self._stem(conn, unknown)
        with self._lock:
            if len(self._stems) + len(found) > self.stem_cache_size:
                self._stems = {}
            self._stems.update(found)
        return {w: found[w] if w in found else cached[w] for w in words}

    def _stem(self, conn: Connection, words: list[str]) -> dict[str, tuple[str, ...]]:
        """Stem ``words`` with the index's own tokenizer (a TEMP FTS5 table and its vocabulary
        on ``conn``, which is this thread's)."""
        self._ensure_temp(conn)
        conn.exec_driver_sql("DELETE FROM temp.headroom_qterms")
        conn.exec_driver_sql(
            "INSERT INTO temp.headroom_qterms(rowid, t) VALUES (?, ?)",
            [(i, w) for i, w in enumerate(words)],
        )
        found: dict[int, list[str]] = {}
        for doc, term in conn.exec_driver_sql("SELECT doc, term FROM temp.headroom_qterms_v"):
            found.setdefault(int(doc), []).append(str(term))
        return {word: tuple(found.get(i, ())) for i, word in enumerate(words)}

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
