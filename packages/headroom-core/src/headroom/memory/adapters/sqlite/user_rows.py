"""UserRows: one user's rows in :class:`~headroom.memory.adapters.sqlite.user_postings.UserPostings`
(slot -> pk and length, postings sorted by term), and the bm25 scoring over them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from headroom.memory.adapters.sqlite.bm25 import K1, B, top_visible

__all__ = ["UserRows"]

IntArray = npt.NDArray[np.int64]


class UserRows:
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

    def top(
        self, terms: Sequence[tuple[int, float]], k: int, allowed: IntArray, avgdl: float
    ) -> list[tuple[int, float]]:
        """The ``k`` best rows among ``allowed`` by FTS5's bm25 over ``terms`` (term id, idf)."""
        if not terms or self.slot_pk.size == 0:
            return []
        tids = np.asarray([t for t, _ in terms], dtype=np.int32)
        starts = np.searchsorted(self.terms, tids, side="left").tolist()
        ends = np.searchsorted(self.terms, tids, side="right").tolist()
        scale = B / max(avgdl, 1e-9)
        acc = np.zeros(self.slot_pk.size, np.float64)
        for (_, idf), lo, hi in zip(terms, starts, ends, strict=True):
            if hi > lo:
                docs = self.docs[lo:hi]
                tf = self.tfs[lo:hi].astype(np.float64)  # score in double, as FTS5 does
                norm = K1 * (1.0 - B + scale * self.lengths[docs].astype(np.float64))
                acc[docs] += idf * (tf * (K1 + 1.0)) / (tf + norm)
        cand = np.flatnonzero(acc > 0.0)
        return top_visible(self.slot_pk[cand], acc[cand], k, allowed)

    def compact(self) -> int:
        """Drop dead slots and their postings (renumbering the slots); returns how many
        postings went. The caller re-points its pk -> slot map at the new slots."""
        alive = self.slot_pk >= 0
        new_slot = np.cumsum(alive) - 1
        keep = alive[self.docs]
        removed = int(self.terms.size - keep.sum())
        self.terms, self.tfs = self.terms[keep], self.tfs[keep]
        self.docs = new_slot[self.docs[keep]].astype(np.int32)
        self.slot_pk, self.lengths = self.slot_pk[alive], self.lengths[alive]
        self.dead = 0
        return removed
