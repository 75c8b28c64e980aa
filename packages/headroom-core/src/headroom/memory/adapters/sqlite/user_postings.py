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
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.engine import Connection

from headroom.memory.adapters.sqlite.bm25 import WORD_RE, word_text
from headroom.memory.adapters.sqlite.user_rows import UserRows

__all__ = ["UserPostings"]

_log = logging.getLogger(__name__)
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
ConnectFn = Callable[[], AbstractContextManager[Connection]]
_Split = tuple[int, IntArray, IntArray, IntArray]


def _read_seq(conn: Connection) -> int:
    return int(
        conn.exec_driver_sql("SELECT value FROM headroom_meta WHERE key = 'seq'").scalar_one()
    )


def _user_rows(conn: Connection, user_id: str) -> list[tuple[int, str]]:
    return [(int(pk), str(text)) for pk, text in conn.exec_driver_sql(
        "SELECT pk, search_text FROM memories WHERE user_id = ? ORDER BY pk", (user_id,)
    ).fetchall()]  # fmt: skip


class UserPostings:
    """Per-user bm25 over the store's ``memories`` rows (see the module docstring)."""

    def __init__(
        self,
        stem: StemFn,
        *,
        max_postings: int = 20_000_000,
        connect: ConnectFn | None = None,
        background_min_rows: int = 2_000,
    ) -> None:
        self._stem = stem
        self.max_postings = max_postings
        self._connect = connect
        self.background_min_rows = background_min_rows
        """A user with more visible rows than this is loaded by a background thread (``connect``
        given); until it is ready that user's searches are answered by FTS5 (None here)."""
        self._building: set[str] = set()
        self._lock = threading.RLock()
        self._users: OrderedDict[str, UserRows] = OrderedDict()
        self._codes: dict[str, int] = {}  # user id -> code stored in _pk_user
        self._code_users: dict[int, str] = {}
        self._next_code = 0
        self._pk_user = np.full(0, -1, np.int32)
        self._pk_slot = np.full(0, -1, np.int32)
        self._term_ids: dict[str, int] = {}
        self._word_ids: dict[str, int] = {}
        self._word_term = np.full(0, -1, np.int32)
        self._word_more: dict[int, tuple[int, ...]] = {}
        self._generation = 0
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
        (stemmed term, idf) with FTS5's average row length ``avgdl`` (``bm25.fts5_totals``).
        ``conn`` is inside a read transaction, so the rows, the sequence and the totals are one
        snapshot. None when this index cannot answer now (a big user still loading in the
        background, ids too large): the caller ranks with FTS5."""
        with self._lock:
            if not self._catch_up(conn, _read_seq(conn)):
                return None
            rows = self._users.get(user_id)
            if rows is None:
                if self._connect is not None and allowed.size > self.background_min_rows:
                    self._start_build(user_id)
                    return None  # FTS5 answers until the user's postings are ready
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
        rows: UserRows,
        terms: Sequence[tuple[str, float]],
        k: int,
        allowed: IntArray,
        avgdl: float,
    ) -> list[tuple[int, float]]:
        known = [(tid, idf) for tid, idf in ((self._term_ids.get(t), idf) for t, idf in terms)
                 if tid is not None]  # fmt: skip
        return rows.top(known, k, allowed, avgdl)

    # -- keeping in step with the store --------------------------------------------------------

    def wait_for_builds(self, timeout: float = 60.0) -> bool:
        """Wait until no background load runs (for tests and benchmarks); True when none does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._building:
                    return True
            time.sleep(0.01)
        return False

    def _start_build(self, user_id: str) -> None:
        if user_id in self._building:
            return
        self._building.add(user_id)
        threading.Thread(
            target=self._build, args=(user_id,), name="headroom-postings", daemon=True
        ).start()

    def _build(self, user_id: str) -> None:
        """Load a big user off the caller's thread: read and split the rows in one snapshot
        (the lock is held only to learn new words), then install them and replay what changed
        for the user since, in a second snapshot under the lock."""
        assert self._connect is not None
        try:
            with self._connect() as conn:
                with conn.begin():
                    since = _read_seq(conn)
                    items = _user_rows(conn, user_id)
                with conn.begin():  # stemming new words writes the connection's TEMP table
                    split = self._split(conn, [text for _, text in items])
                if split is None:
                    return
                with conn.begin(), self._lock:
                    if user_id in self._users or split[0] != self._generation:
                        return
                    rows = self._new_user(user_id)
                    if not self._install(user_id, rows, [pk for pk, _ in items], split):
                        return
                    self._replay_user(conn, user_id, since)
                    self._evict(keep=user_id)
        except Exception:  # a failed load only means FTS5 keeps answering for this user
            _log.warning("could not load the text postings of a user", exc_info=True)
        finally:
            with self._lock:
                self._building.discard(user_id)

    def _replay_user(self, conn: Connection, user_id: str, since: int) -> None:
        """Apply one user's changes after ``since`` (deleted and re-written rows)."""
        self._apply_changes(conn, since, user_id)

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
        if not self._apply_changes(conn, old, None):
            return False
        self._evict()
        return True

    def _apply_changes(self, conn: Connection, since: int, only: str | None) -> bool:
        """Drop the rows deleted after ``since`` and re-read the rows written after it, for
        every cached user (or ``only`` that one); False when the index had to give up."""
        for (pk,) in conn.exec_driver_sql(
            "SELECT pk FROM memory_deletions WHERE seq > ?", (since,)
        ).fetchall():
            self._kill(int(pk))  # a pk of no cached user is ignored
        sql = "SELECT pk, user_id, search_text FROM memories WHERE change_seq > ?"
        params: tuple[Any, ...] = (since,)
        if only is not None:
            sql, params = sql + " AND user_id = ?", (since, only)
        added: dict[str, list[tuple[int, str]]] = {}
        for pk, user_id, text in conn.exec_driver_sql(sql + " ORDER BY pk", params).fetchall():
            if user_id in self._users:
                self._kill(int(pk))
                added.setdefault(user_id, []).append((int(pk), str(text)))
        for user_id, items in added.items():
            if not self._append(conn, user_id, self._users[user_id], items):
                return False
            self._compact_if_needed(user_id)
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

    def _new_user(self, user_id: str) -> UserRows:
        rows = UserRows()
        if user_id not in self._codes:
            code = self._next_code
            self._next_code += 1
            self._codes[user_id] = code
            self._code_users[code] = user_id
        self._users[user_id] = rows
        return rows

    def _load_user(self, conn: Connection, user_id: str) -> UserRows | None:
        items = _user_rows(conn, user_id)
        rows = self._new_user(user_id)
        if not self._append(conn, user_id, rows, items):
            return None
        self._evict(keep=user_id)
        return rows

    def _append(
        self, conn: Connection, user_id: str, rows: UserRows, items: list[tuple[int, str]]
    ) -> bool:
        """Add rows (pk, text) as new slots of ``rows``; False when the index must give up
        (ids too large, or the word table started over)."""
        if not items:
            return True
        split = self._split(conn, [text for _, text in items])
        return split is not None and self._install(user_id, rows, [pk for pk, _ in items], split)

    def _split(self, conn: Connection, texts: list[str]) -> _Split | None:
        """Words of ``texts`` as (generation, term ids, text index of each, tokens per text).

        All texts are split in one pass: lower-cased one by one (as a query is), joined with an
        upper-case separator word that lower-cased text cannot contain, and every word mapped to
        its term through the word table. The lock is held only while new words are learnt."""
        tokens = WORD_RE.findall(f" {_SEP} ".join(word_text(text) for text in texts))
        with self._lock:
            generation = self._generation
            if not self._learn_words(conn, set(tokens)):
                return None  # the word table was full and started over (so did every user)
            word_ids, word_term, word_more = self._word_ids, self._word_term, self._word_more
        ids = np.fromiter(map(word_ids.__getitem__, tokens), np.int64, len(tokens))
        sep = ids == 0
        keep = ~sep
        words = ids[keep]
        docs = np.cumsum(sep)[keep]
        terms = word_term[words].astype(np.int64)
        if word_more:  # words of several tokens (rare): their other terms
            extra = [(t, int(d)) for w, d in zip(words.tolist(), docs.tolist(), strict=True)
                     if w in word_more for t in word_more[w]]  # fmt: skip
            if extra:
                more = np.asarray(extra, np.int64)
                terms = np.concatenate([terms, more[:, 0]])
                docs = np.concatenate([docs, more[:, 1]])
        valid = terms >= 0
        terms, docs = terms[valid], docs[valid]
        return generation, terms, docs, np.bincount(docs, minlength=len(texts))

    def _install(self, user_id: str, rows: UserRows, pk_list: list[int], split: _Split) -> bool:
        """Add split texts as new slots of ``rows`` (under the lock)."""
        generation, terms, docs, counts = split
        if generation != self._generation:
            return False
        top = max(pk_list)
        if top >= _MAX_PK:
            _log.info("row ids beyond %d: text search stays on FTS5", _MAX_PK)
            self.clear()
            return False
        self._grow(top + 1)
        first = rows.slot_pk.size
        pks = np.asarray(pk_list, np.int64)
        rows.slot_pk = np.concatenate([rows.slot_pk, pks])
        rows.lengths = np.concatenate([rows.lengths, counts.astype(np.float32) + 1])  # + owner
        self._pk_user[pks] = self._codes[user_id]
        self._pk_slot[pks] = np.arange(first, first + pks.size, dtype=np.int32)
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
        self._generation += 1  # splits made with the old table are refused by _install
        self._term_ids = {}
        self._word_ids = {_SEP: 0}  # id 0: the separator between texts
        self._word_term = np.full(1024, -1, np.int32)
        self._word_more = {}

    def _compact_if_needed(self, user_id: str) -> None:
        rows = self._users[user_id]
        if rows.dead > max(64, rows.slot_pk.size // 4):
            self._total_postings -= rows.compact()
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
