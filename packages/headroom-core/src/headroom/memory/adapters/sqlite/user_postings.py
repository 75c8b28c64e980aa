"""UserPostings: each searched user's bm25 postings in memory, so text search costs what the
user's rows cost, not what the store holds.

FTS5 ranks with bm25, but to weigh a query term it walks the term's whole doclist (every user's
rows) and then loads the sizes of every matching row: at 100k rows a per-user query spent 3-6 ms
there, and more as the store grows. This index keeps, for each recently searched user, the
user's postings (term id, row slot, term frequency, sorted by term) and row lengths in numpy
arrays, and scores the bm25 FTS5 would give (k1 = 1.2, b = 0.75, each term's idf from its
document frequency over the whole table, lengths against the whole table's average, the owner
column weighted 0), over the user's rows only.

The store stays the single source of truth. Rows are read from ``memories``, words are split as
the query side splits them and stemmed by FTS5's own ``porter unicode61`` tokenizer (through the
callback the FTS5 index passes in), and the index follows the store's change sequence: rows
stamped with a newer ``change_seq`` are re-read and deletions come from ``memory_deletions``, so
writes by other processes are seen too. One difference from FTS5, by design: a query word that
tokenizes into several tokens (``foo_bar``) matches each token, not only the exact phrase.

Memory is bounded: the least recently searched users are dropped once the postings of all cached
users pass ``max_postings`` (12 bytes each: term, row slot, frequency).
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
from sqlalchemy.engine import Connection

__all__ = ["WORD_RE", "UserPostings", "bm25_idf", "fts5_totals", "word_text"]

_log = logging.getLogger(__name__)
K1 = 1.2
B = 0.75
WORD_RE = re.compile(r"\w+", re.UNICODE)
"""Words are runs of letters and digits: ``\\w+`` over :func:`word_text` (``_`` separates, as
in FTS5's unicode61), for stored texts here and for queries in
:func:`~headroom.memory.adapters.sqlite.fts5.query_words`. (``[^\\W_]+`` means the same but
runs 3x slower.)"""


def word_text(text: str) -> str:
    """``text`` lower-cased with ``_`` made a separator, ready for :data:`WORD_RE`."""
    return text.lower().replace("_", " ")


_MAX_PK = 1 << 28
"""Row ids are mapped through dense arrays; a store with larger ids is searched through FTS5."""
_MAX_CATCH_UP_ROWS = 50_000
"""More changed rows than this since the last search: drop the cached users instead."""
_SEP = "QSEP"
"""Separates texts split in one pass: upper case, so never a word of lower-cased text."""
_MAX_TERMS = 2_000_000
"""Distinct terms remembered before the term table (and every cached user) is reset."""

IntArray = npt.NDArray[np.int64]
StemFn = Callable[[Connection, list[str]], dict[str, tuple[str, ...]]]


class _UserRows:
    """One user's rows: slot -> pk (-1 once dead) and length, postings sorted by (term, slot)."""

    __slots__ = ("dead", "docs", "lengths", "slot_pk", "terms", "tfs")

    def __init__(self) -> None:
        self.slot_pk: IntArray = np.empty(0, np.int64)
        self.lengths = np.empty(0, np.float32)  # small integers: exact in float32
        self.terms = np.empty(0, np.int32)
        self.docs = np.empty(0, np.int32)
        self.tfs = np.empty(0, np.float32)
        self.dead = 0

    @property
    def postings(self) -> int:
        return int(self.terms.size)


class UserPostings:
    """Per-user bm25 over the store's ``memories`` rows (see the module docstring)."""

    def __init__(self, stem: StemFn, *, max_postings: int = 20_000_000) -> None:
        self._stem = stem
        self.max_postings = max_postings
        self._lock = threading.RLock()
        self._users: OrderedDict[str, _UserRows] = OrderedDict()
        self._codes: dict[str, int] = {}  # user id -> code stored in _pk_user
        self._code_users: dict[int, str] = {}
        self._next_code = 0
        self._pk_user = np.full(0, -1, np.int32)
        self._pk_slot = np.full(0, -1, np.int32)
        self._term_ids: dict[str, int] = {}
        self._word_ids: dict[str, int] = {}
        self._word_term = np.full(0, -1, np.int32)
        self._word_more: dict[int, tuple[int, ...]] = {}
        self._reset_words()
        self._seq: int | None = None
        self._total_postings = 0

    # -- public --------------------------------------------------------------------------------

    def term_id(self, term: str) -> int | None:
        return self._term_ids.get(term)

    def search(
        self,
        conn: Connection,
        user_id: str,
        terms: Sequence[tuple[str, float]],
        k: int,
        allowed: IntArray,
        avgdl: float,
    ) -> list[tuple[int, float]] | None:
        """The user's top ``k`` rows among ``allowed`` (sorted pks) by bm25 over ``terms``
        (stemmed term, idf) with FTS5's average row length ``avgdl`` (:func:`fts5_totals`).
        ``conn`` is inside a read transaction, so the rows, the sequence and the totals are one
        snapshot. None when this index cannot answer (ids too large): the caller uses FTS5."""
        with self._lock:
            seq = int(conn.exec_driver_sql("SELECT value FROM headroom_meta WHERE key = 'seq'")
                      .scalar_one())  # fmt: skip
            if not self._catch_up(conn, seq):
                return None
            rows = self._users.get(user_id)
            if rows is None:
                rows = self._load_user(conn, user_id)
                if rows is None:
                    return None
            self._users.move_to_end(user_id)
            return self._score(rows, terms, k, allowed, avgdl)

    def clear(self) -> None:
        with self._lock:
            self._users.clear()
            self._codes.clear()
            self._code_users.clear()
            self._next_code = 0
            self._pk_user = np.full(0, -1, np.int32)
            self._pk_slot = np.full(0, -1, np.int32)
            self._total_postings = 0
            self._seq = None

    # -- scoring -------------------------------------------------------------------------------

    def _score(
        self,
        rows: _UserRows,
        terms: Sequence[tuple[str, float]],
        k: int,
        allowed: IntArray,
        avgdl: float,
    ) -> list[tuple[int, float]]:
        ids = [(self._term_ids.get(t), idf) for t, idf in terms]
        known = [(tid, idf) for tid, idf in ids if tid is not None]
        if not known or rows.slot_pk.size == 0:
            return []
        tids = np.asarray([t for t, _ in known], dtype=np.int32)
        starts = np.searchsorted(rows.terms, tids, side="left").tolist()
        ends = np.searchsorted(rows.terms, tids, side="right").tolist()
        scale = B / max(avgdl, 1e-9)
        acc = np.zeros(rows.slot_pk.size, np.float64)
        for (_, idf), lo, hi in zip(known, starts, ends, strict=True):
            if hi > lo:
                docs = rows.docs[lo:hi]
                tf = rows.tfs[lo:hi].astype(np.float64)  # score in double, as FTS5 does
                norm = K1 * (1.0 - B + scale * rows.lengths[docs].astype(np.float64))
                acc[docs] += idf * (tf * (K1 + 1.0)) / (tf + norm)
        cand = np.flatnonzero(acc > 0.0)
        return _top_visible(rows.slot_pk[cand], acc[cand], k, allowed)

    # -- keeping in step with the store --------------------------------------------------------

    def _catch_up(self, conn: Connection, seq: int) -> bool:
        if self._seq == seq:
            return True
        old, self._seq = self._seq, seq
        if old is None or not self._users:
            return True
        changed = conn.exec_driver_sql(
            "SELECT count(*) FROM memories WHERE change_seq > ?", (old,)
        ).scalar_one()
        if changed > _MAX_CATCH_UP_ROWS or old > seq:
            self.clear()
            self._seq = seq
            return True
        for (pk,) in conn.exec_driver_sql(
            "SELECT pk FROM memory_deletions WHERE seq > ?", (old,)
        ).fetchall():
            self._kill(int(pk))
        added: dict[str, list[tuple[int, str]]] = {}
        for pk, user_id, text in conn.exec_driver_sql(
            "SELECT pk, user_id, search_text FROM memories WHERE change_seq > ? ORDER BY pk",
            (old,),
        ).fetchall():
            if user_id in self._users:
                self._kill(int(pk))
                added.setdefault(user_id, []).append((int(pk), str(text)))
        for user_id, items in added.items():
            if not self._append(conn, user_id, self._users[user_id], items):
                return False
        for user_id in list(added):
            self._compact_if_needed(user_id)
        self._evict()
        return True

    def _kill(self, pk: int) -> None:
        if pk >= self._pk_user.size or self._pk_user[pk] < 0:
            return
        code, slot = int(self._pk_user[pk]), int(self._pk_slot[pk])
        self._pk_user[pk] = -1
        rows = self._users.get(self._code_users.get(code, ""))
        if rows is not None and slot < rows.slot_pk.size and rows.slot_pk[slot] == pk:
            rows.slot_pk[slot] = -1
            rows.dead += 1

    def _load_user(self, conn: Connection, user_id: str) -> _UserRows | None:
        items = [(int(pk), str(text)) for pk, text in conn.exec_driver_sql(
            "SELECT pk, search_text FROM memories WHERE user_id = ? ORDER BY pk", (user_id,)
        ).fetchall()]  # fmt: skip
        rows = _UserRows()
        if user_id not in self._codes:
            code = self._next_code
            self._next_code += 1
            self._codes[user_id] = code
            self._code_users[code] = user_id
        self._users[user_id] = rows
        if not self._append(conn, user_id, rows, items):
            return None
        self._evict(keep=user_id)
        return rows

    def _append(
        self, conn: Connection, user_id: str, rows: _UserRows, items: list[tuple[int, str]]
    ) -> bool:
        """Add rows (pk, text) as new slots of ``rows``; False when a pk is too large.

        All texts are split in one pass: lower-cased one by one (as a query is), joined with an
        upper-case separator word that lower-cased text cannot contain, and every word mapped to
        its term through the word table, so the cost per row is a few numpy element operations.
        """
        if not items:
            return True
        top = max(pk for pk, _ in items)
        if top >= _MAX_PK:
            _log.info("row ids beyond %d: text search stays on FTS5", _MAX_PK)
            self.clear()
            return False
        self._grow(top + 1)
        tokens = WORD_RE.findall(f" {_SEP} ".join(word_text(text) for _, text in items))
        if not self._learn_words(conn, set(tokens)):
            return False  # the word table was full and started over (and so did every user)
        word_ids = self._word_ids
        ids = np.fromiter(map(word_ids.__getitem__, tokens), np.int64, len(tokens))
        sep = ids == 0
        keep = ~sep
        words = ids[keep]
        docs = np.cumsum(sep)[keep]
        terms = self._word_term[words].astype(np.int64)
        if self._word_more:  # words of several tokens (rare): their other terms
            extra = [(t, int(d)) for w, d in zip(words.tolist(), docs.tolist(), strict=True)
                     if w in self._word_more for t in self._word_more[w]]  # fmt: skip
            if extra:
                more = np.asarray(extra, np.int64)
                terms = np.concatenate([terms, more[:, 0]])
                docs = np.concatenate([docs, more[:, 1]])
        valid = terms >= 0
        terms, docs = terms[valid], docs[valid]
        counts = np.bincount(docs, minlength=len(items))
        first = rows.slot_pk.size
        pks = np.fromiter((pk for pk, _ in items), np.int64, len(items))
        rows.slot_pk = np.concatenate([rows.slot_pk, pks])
        rows.lengths = np.concatenate([rows.lengths, counts.astype(np.float32) + 1])  # + owner
        self._pk_user[pks] = self._codes[user_id]
        self._pk_slot[pks] = np.arange(first, first + len(items), dtype=np.int32)
        if terms.size:
            keys = (terms << 32) | (docs + first)
            uniq, tf = np.unique(keys, return_counts=True)  # sorted by (term, slot)
            new_terms = (uniq >> 32).astype(np.int32)
            new_docs = (uniq & 0xFFFFFFFF).astype(np.int32)
            at = np.searchsorted(rows.terms, new_terms, side="right")  # after older slots
            rows.terms = np.insert(rows.terms, at, new_terms)
            rows.docs = np.insert(rows.docs, at, new_docs)
            rows.tfs = np.insert(rows.tfs, at, tf.astype(np.float32))
            self._total_postings += int(uniq.size)
        return True

    def _learn_words(self, conn: Connection, words: set[str]) -> bool:
        """Give every new word an entry in the word table: its first term id (-1: no token) in
        ``_word_term`` and any further ones in ``_word_more``. False when the table was full: it
        and every cached user were dropped (the caller answers from FTS5 this time)."""
        unknown = [w for w in words if w not in self._word_ids]
        if not unknown:
            return True
        if len(self._word_ids) + len(unknown) > _MAX_TERMS:
            _log.info(
                "more than %d distinct words: the in-memory text index starts over", _MAX_TERMS
            )
            self._reset_words()
            self.clear()
            return False
        stems = self._stem(conn, unknown)
        term_ids = self._term_ids
        start = len(self._word_ids)
        if start + len(unknown) > self._word_term.size:
            grown = np.full(max(2 * self._word_term.size, start + len(unknown)), -1, np.int32)
            grown[: self._word_term.size] = self._word_term
            self._word_term = grown
        for offset, word in enumerate(unknown):
            wid = start + offset
            self._word_ids[word] = wid
            ids = []
            for term in stems.get(word, ()):
                tid = term_ids.get(term)
                if tid is None:
                    tid = term_ids[term] = len(term_ids)
                ids.append(tid)
            if ids:
                self._word_term[wid] = ids[0]
            if len(ids) > 1:
                self._word_more[wid] = tuple(ids[1:])
        return True

    def _reset_words(self) -> None:
        self._term_ids = {}
        self._word_ids = {_SEP: 0}  # id 0: the separator between texts
        self._word_term = np.full(1024, -1, np.int32)
        self._word_more = {}

    def _compact_if_needed(self, user_id: str) -> None:
        rows = self._users[user_id]
        if rows.dead <= max(64, rows.slot_pk.size // 4):
            return
        alive = rows.slot_pk >= 0
        new_slot = np.cumsum(alive) - 1
        keep = alive[rows.docs]
        self._total_postings -= int(rows.terms.size - keep.sum())
        rows.terms, rows.tfs = rows.terms[keep], rows.tfs[keep]
        rows.docs = new_slot[rows.docs[keep]].astype(np.int32)
        rows.slot_pk, rows.lengths = rows.slot_pk[alive], rows.lengths[alive]
        rows.dead = 0
        self._pk_slot[rows.slot_pk] = np.arange(rows.slot_pk.size, dtype=np.int32)

    def _grow(self, size: int) -> None:
        if size <= self._pk_user.size:
            return
        new = max(size, 2 * self._pk_user.size, 1024)
        self._pk_user = np.concatenate(
            [self._pk_user, np.full(new - self._pk_user.size, -1, np.int32)]
        )
        self._pk_slot = np.concatenate(
            [self._pk_slot, np.full(new - self._pk_slot.size, -1, np.int32)]
        )

    def _evict(self, keep: str | None = None) -> None:
        while self._total_postings > self.max_postings and len(self._users) > 1:
            user_id = next(iter(self._users))
            if user_id == keep:
                self._users.move_to_end(user_id)
                continue
            rows = self._users.pop(user_id)
            code = self._codes.pop(user_id)
            self._code_users.pop(code, None)
            live = rows.slot_pk[rows.slot_pk >= 0]
            self._pk_user[live] = -1
            self._total_postings -= rows.postings


def _top_visible(
    pks: IntArray, scores: npt.NDArray[np.float64], k: int, allowed: IntArray
) -> list[tuple[int, float]]:
    """The ``k`` best (score desc, pk asc) of ``pks`` that are in ``allowed`` (sorted) and alive
    (pk >= 0). Membership is checked best-first in growing slices, so a user with 100k matching
    rows pays for the few hundred at the top, not for all of them."""
    if allowed.size == 0 or pks.size == 0:
        return []
    take = 4 * k + 16
    while True:
        if pks.size > take:
            part = np.argpartition(-scores, take - 1)[:take]
            part = np.flatnonzero(scores >= scores[part].min())  # ties at the cut come along
        else:
            part = np.arange(pks.size)
        sub_pks, sub_scores = pks[part], scores[part]
        pos = np.searchsorted(allowed, sub_pks)
        pos[pos >= allowed.size] = 0
        keep = (sub_pks >= 0) & (allowed[pos] == sub_pks)
        if int(keep.sum()) >= k or part.size == pks.size:
            sub_pks, sub_scores = sub_pks[keep], sub_scores[keep]
            order = np.lexsort((sub_pks, -sub_scores))[:k]
            return [
                (int(p), float(s)) for p, s in zip(sub_pks[order], sub_scores[order], strict=True)
            ]
        take *= 8


def fts5_totals(conn: Connection) -> tuple[int, float]:
    """FTS5's row count and average row length in tokens over all columns, from its
    ``averages`` record (the row count, then each column's token total, as varints)."""
    row = conn.exec_driver_sql("SELECT block FROM memory_fts_data WHERE id = 1").fetchone()
    values = _varints(bytes(row[0])) if row is not None and row[0] else []
    if not values or values[0] <= 0:
        return 0, 1.0
    return values[0], sum(values[1:]) / values[0]


def _varints(data: bytes) -> list[int]:
    out: list[int] = []
    i = 0
    while i < len(data):
        value = 0
        for j in range(9):
            byte = data[i]
            i += 1
            if j == 8:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if byte < 0x80:
                break
            if i >= len(data):
                return out
        out.append(value)
    return out


def bm25_idf(rows: int, df: int) -> float:
    """FTS5's idf: log((N - n + 0.5) / (n + 0.5)), clamped to 1e-6 when not positive."""
    idf = math.log((rows - df + 0.5) / (df + 0.5)) if rows > 0 else 0.0
    return idf if idf > 0.0 else 1e-6
