"""Id -> position lookup for the FAISS index without a Python dict of every id.

The FAISS adapter keeps ``ids_by_pos`` (position -> store primary key, -1 for a tombstone). This
map answers the reverse question with two sorted int64 arrays (16 bytes per vector, against
~100 bytes per entry for a dict of Python ints) plus a small dict of the positions added since
the arrays were last sorted. Entries are never deleted: a hit is valid only when
``ids_by_pos[position] == id``, so tombstoned or replaced positions fall out by themselves
(positions are never reused; a compaction rebuilds the map).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["PositionMap"]

IntArray = npt.NDArray[np.int64]


class PositionMap:
    def __init__(self) -> None:
        self._ids: IntArray = np.empty(0, dtype=np.int64)
        self._pos: IntArray = np.empty(0, dtype=np.int64)
        self._recent: dict[int, int] = {}

    def rebuild(self, ids_by_pos: IntArray) -> None:
        """Index every live position of ``ids_by_pos`` (store pks mostly arrive in order, so the
        stable sort is close to linear)."""
        live = np.flatnonzero(ids_by_pos >= 0)
        order = np.argsort(ids_by_pos[live], kind="stable")
        self._ids = np.ascontiguousarray(ids_by_pos[live][order])
        self._pos = np.ascontiguousarray(live[order])
        self._recent = {}

    def added(self, ids: IntArray, start: int, ids_by_pos: IntArray, recent_max: int) -> None:
        """``ids`` now sit at positions ``start, start + 1, ...`` of ``ids_by_pos``; the recent
        dict is folded into the sorted arrays once it holds more than ``recent_max`` ids (or
        1/16 of the sorted ones, whichever is larger)."""
        limit = max(recent_max, self._ids.size // 16)
        if ids.size > limit:
            self.rebuild(ids_by_pos)
            return
        self._recent.update(zip(ids.tolist(), range(start, start + ids.size), strict=True))
        if len(self._recent) > limit:
            self.rebuild(ids_by_pos)

    def lookup(self, query: IntArray, ids_by_pos: IntArray) -> IntArray:
        """The live position of each id in ``query``, or -1."""
        out = np.full(query.size, -1, dtype=np.int64)
        if query.size == 0:
            return out
        if self._ids.size:
            at = np.minimum(np.searchsorted(self._ids, query), self._ids.size - 1)
            cand = self._pos[at]
            ok = (self._ids[at] == query) & (ids_by_pos[cand] == query)
            out[ok] = cand[ok]
        if self._recent:
            get = self._recent.get
            for j in np.flatnonzero(out < 0).tolist():
                i = int(query[j])
                p = get(i)
                if p is not None and ids_by_pos[p] == i:
                    out[j] = p
        return out

    def get(self, id_: int, ids_by_pos: IntArray) -> int | None:
        p = int(self.lookup(np.array([id_], dtype=np.int64), ids_by_pos)[0])
        return p if p >= 0 else None
