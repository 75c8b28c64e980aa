"""The FAISS vector index: exact flat while small, HNSW when large, exact filtered search.

Layout: the FAISS index holds vectors at *positions* (FAISS labels 0..ntotal-1); ``_ids`` maps a
position to its store primary key (-1 once removed or replaced) and ``_map`` (a
:class:`PositionMap`: sorted arrays, no dict of every id) maps back. So
replacing or removing a vector only tombstones its position, which works the same way on flat
and HNSW (HNSW cannot ``remove_ids``); tombstoned positions are excluded through an
``IDSelectorBitmap`` and the index is compacted (rebuilt from its own vectors) once more than
:attr:`FaissVectorIndex.tombstone_rebuild_fraction` of the positions are dead.

Filtered search ranks only the allowed ids, exactly: a small allowed set (the usual case, one
user's memories) is scored by a matrix product over just those vectors, read in place from the
FAISS storage; a large one uses FAISS with a selector (exact on flat; on HNSW with a raised
``efSearch``, falling back to the exact product when HNSW returns too few results).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from headroom.memory.adapters.vector.common import (
    IntArray,
    PersistedIndexBase,
    as_id_array,
    as_query,
    as_vectors,
    top_k,
)
from headroom.memory.adapters.vector.faiss_persist import FaissPersistence
from headroom.memory.adapters.vector.positions import PositionMap
from headroom.memory.errors import ConfigurationError, IndexError_, MissingDependencyError
from headroom.memory.ports import FloatArray, VectorFilter

__all__ = ["FaissVectorIndex"]

logger = logging.getLogger(__name__)

_KINDS = ("auto", "flat", "hnsw")


class FaissVectorIndex(FaissPersistence, PersistedIndexBase):
    """A :class:`~headroom.memory.ports.VectorIndex` on FAISS (cosine = inner product).

    ``kind="auto"`` starts exact (``IndexFlatIP``) and rebuilds into ``IndexHNSWFlat`` once it holds
    more than ``hnsw_min_entries`` vectors; ``"flat"`` and ``"hnsw"`` force one type.
    """

    engine_name = "faiss"
    exact_filter_max = 1024
    """Filtered searches over at most this many allowed vectors gather them for one product."""
    exact_filter_fraction = 0.2
    """Larger allowed sets below this fraction of the index are scanned exactly (flat storage with
    a selector); on HNSW, sets above it use HNSW with a selector and a raised efSearch."""
    recent_positions_max = 4096
    """Ids added since the position map was last sorted are looked up in a dict of at most this
    many (or 1/16 of the index) entries before it is re-sorted."""
    tombstone_rebuild_fraction = 0.2
    """Compact the index when more than this fraction of its positions are tombstones."""
    background_build = True
    """AUTO builds HNSW in a background thread when it crosses ``hnsw_min_entries`` (searching
    exactly meanwhile); False builds it inside the crossing call."""
    build_catchup_max = 2048
    """The background build adds the writes made while it ran in rounds outside the lock, and
    swaps in once at most this many are left (added under the lock, briefly blocking writers)."""
    build_catchup_rounds = 8
    """After this many rounds it swaps in whatever is left (writers outpacing the build)."""

    def __init__(
        self,
        dimension: int,
        *,
        path: Path | None = None,
        kind: str = "auto",
        hnsw_min_entries: int = 200_000,
        hnsw_m: int = 32,
        hnsw_ef_construction: int = 200,
        hnsw_ef_search: int = 64,
        max_entries: int | None = None,
    ) -> None:
        try:
            import faiss
        except ImportError as exc:
            raise MissingDependencyError("faiss-cpu", "faiss") from exc
        super().__init__(dimension, path, max_entries)
        if kind not in _KINDS:
            raise ConfigurationError(
                f"unknown vector index kind {kind!r}; expected one of {_KINDS}"
            )
        self._faiss: Any = faiss
        self._requested = kind
        self._hnsw_min_entries = hnsw_min_entries
        self._hnsw_m = hnsw_m
        self._ef_construction = hnsw_ef_construction
        self._ef_search = hnsw_ef_search
        self._build_thread: threading.Thread | None = None
        self._init_persistence()
        self._reset(self._target_kind(0))

    # -- state -------------------------------------------------------------------------------

    def _reset(self, kind: str) -> None:
        self._generation = getattr(self, "_generation", 0) + 1  # invalidates a running build
        self._kind = kind
        self._index: Any = self._new_index(kind)
        self._id_buf: IntArray = np.empty(0, dtype=np.int64)  # grows by doubling
        self._ids: IntArray = self._id_buf[:0]  # position -> id (-1: tombstone), a view
        self._map = PositionMap()
        self._count = 0  # live vectors
        self._dead = 0
        self._live_bitmap: npt.NDArray[np.uint8] | None = None

    def _set_ids(self, ids: IntArray) -> None:
        self._id_buf = np.ascontiguousarray(ids, dtype=np.int64)
        self._ids = self._id_buf[:]
        self._map.rebuild(self._ids)

    def _target_kind(self, count: int) -> str:
        if self._requested != "auto":
            return self._requested
        return "hnsw" if count > self._hnsw_min_entries else "flat"

    def _new_index(self, kind: str) -> Any:
        faiss = self._faiss
        if kind == "flat":
            return faiss.IndexFlatIP(self._dimension)
        index = faiss.IndexHNSWFlat(self._dimension, self._hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self._ef_construction
        index.hnsw.efSearch = self._ef_search
        return index

    def _xb(self) -> FloatArray:
        """The stored vectors by position, as a view of the FAISS storage (valid until a write)."""
        n = int(self._index.ntotal)
        if n == 0:
            return np.empty((0, self._dimension), dtype=np.float32)
        storage = self._index
        if self._kind == "hnsw":
            storage = self._faiss.downcast_index(self._index.storage)
        flat: FloatArray = self._faiss.rev_swig_ptr(storage.get_xb(), n * self._dimension)
        return flat.reshape(n, self._dimension)

    def _add(self, ids: IntArray, vectors: FloatArray) -> None:
        start = int(self._index.ntotal)
        try:
            self._index.add(vectors)
        except RuntimeError as exc:
            raise IndexError_(f"faiss could not add {len(ids)} vectors: {exc}") from exc
        end = start + ids.size
        if end > self._id_buf.size:
            buf = np.empty(max(end, 2 * self._id_buf.size, 1024), dtype=np.int64)
            buf[:start] = self._ids[:start]
            self._id_buf = buf
        self._id_buf[start:end] = ids
        self._ids = self._id_buf[:end]
        self._map.added(ids, start, self._ids, self.recent_positions_max)

    def _tombstone(self, positions: IntArray) -> None:
        self._ids[positions] = -1
        self._dead += int(positions.size)

    def _after_mutation(self) -> None:
        self._live_bitmap = None
        live = self._count
        if live == 0:
            self._reset(self._target_kind(0))
        elif self._kind == "flat" and self._target_kind(live) == "hnsw":
            if self.background_build:
                self._start_hnsw_build()
            else:
                self._rebuild("hnsw")
        elif self._dead > self.tombstone_rebuild_fraction * int(self._index.ntotal):
            target = self._target_kind(live)
            if target == "hnsw" and self.background_build:  # compacting a graph takes long
                self._start_hnsw_build()
            else:
                self._rebuild(target)

    def _rebuild(self, kind: str) -> None:
        """Rebuild into ``kind`` from the live vectors (drops tombstones)."""
        started = time.perf_counter()
        positions = np.flatnonzero(self._ids >= 0)
        ids, vectors = self._ids[positions].copy(), self._xb()[positions]
        previous = self._kind
        self._reset(kind)
        self._add(ids, vectors)
        self._count = int(ids.size)
        logger.info(
            "rebuilt the vector index (%s -> %s, %d vectors) in %.2f s",
            previous, kind, len(ids), time.perf_counter() - started,
        )  # fmt: skip

    # -- the flat -> HNSW switch, off the caller's thread ---------------------------------------

    def _start_hnsw_build(self) -> None:
        """Build an HNSW index from a snapshot of the live vectors in a background thread (the
        flat -> HNSW switch, or compacting a tombstoned HNSW index); searches go on with the
        current index meanwhile, and writes made during the build are replayed at the swap."""
        if self._build_thread is not None:
            return
        positions = np.flatnonzero(self._ids >= 0)
        ids, vectors = self._ids[positions].copy(), self._xb()[positions].copy()
        generation = self._generation
        index = self._new_index("hnsw")

        def run() -> None:
            started = time.perf_counter()
            covered_ids, covered_pos, batch = ids, positions, vectors
            try:
                for round_ in range(1, self.build_catchup_rounds + 1):
                    index.add(batch)  # outside the lock: writers and searches go on (flat)
                    with self._lock:
                        if generation != self._generation:
                            self._build_thread = None
                            return
                        tail = int(covered_pos[-1]) + 1 if covered_pos.size else 0
                        extra = tail + np.flatnonzero(self._ids[tail:] >= 0)
                        if (
                            extra.size <= self.build_catchup_max
                            or round_ == self.build_catchup_rounds
                        ):
                            break  # the swap adds what is left
                        # copy the writes made meanwhile; add them outside the lock next round
                        covered_ids = np.concatenate([covered_ids, self._ids[extra]])
                        covered_pos = np.concatenate([covered_pos, extra])
                        batch = self._xb()[extra]
            except Exception:  # pragma: no cover - faiss failure: stay flat, retry later
                logger.exception("background HNSW build failed; the index stays exact (flat)")
                with self._lock:
                    self._build_thread = None
                return
            with self._lock:
                self._build_thread = None
                if generation == self._generation:
                    previous = self._kind
                    self._install_hnsw(index, covered_ids, covered_pos)
                    logger.info(
                        "swapped in a new HNSW index (%s -> hnsw, %d vectors) after a %.1f s "
                        "background build", previous, len(self), time.perf_counter() - started,
                    )  # fmt: skip

        self._build_thread = threading.Thread(target=run, name="headroom-hnsw-build", daemon=True)
        self._build_thread.start()

    def _install_hnsw(self, index: Any, ids: IntArray, old_positions: IntArray) -> None:
        """Swap in ``index`` (holding ``ids``, which sat at ``old_positions`` of the flat index),
        replaying the replacements and removals made since the snapshot, and the additions."""
        still = self._ids[old_positions] == ids
        new_ids = np.where(still, ids, -1)
        tail = int(old_positions[-1]) + 1 if old_positions.size else 0
        extra = tail + np.flatnonzero(self._ids[tail:] >= 0)
        if extra.size:
            index.add(np.ascontiguousarray(self._xb()[extra]))
            new_ids = np.concatenate([new_ids, self._ids[extra]])
        index.hnsw.efSearch = self._ef_search
        self._kind, self._index = "hnsw", index
        self._set_ids(new_ids)
        live = int(np.count_nonzero(new_ids >= 0))
        self._count, self._dead = live, int(new_ids.size - live)
        self._live_bitmap = None

    def wait_for_build(self, timeout: float | None = None) -> bool:
        """Wait for a background HNSW build; True when none is running any more."""
        thread = self._build_thread
        if thread is not None:
            thread.join(timeout)
        return self._build_thread is None

    def _map_lookup(self, ids: IntArray) -> IntArray:
        return self._map.lookup(ids, self._ids)

    def _positions_of(self, allowed: IntArray) -> IntArray:
        """Sorted unique live positions of the allowed ids (unknown ids are ignored)."""
        positions = np.sort(self._map.lookup(allowed, self._ids))
        positions = positions[np.searchsorted(positions, 0) :]  # drop the unknown (-1)
        if positions.size > 1:  # sort + adjacent compare: several times faster than np.unique
            repeated = positions[1:] == positions[:-1]
            if repeated.any():
                positions = positions[np.concatenate(([True], ~repeated))]
        return positions

    def _selector(self, positions: IntArray) -> tuple[Any, npt.NDArray[np.uint8]]:
        """An IDSelectorBitmap over positions, and the bitmap it points into (keep it alive)."""
        mask = np.zeros(len(self._ids), dtype=bool)
        mask[positions] = True
        bitmap = np.packbits(mask, bitorder="little")
        return self._faiss.IDSelectorBitmap(len(self._ids), self._faiss.swig_ptr(bitmap)), bitmap

    def _live_selector(self) -> Any:
        if self._live_bitmap is None:
            self._live_bitmap = np.packbits(self._ids >= 0, bitorder="little")
        return self._faiss.IDSelectorBitmap(len(self._ids), self._faiss.swig_ptr(self._live_bitmap))

    # -- protocol ----------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        """The current FAISS index type: "flat" or "hnsw"."""
        return self._kind

    def __len__(self) -> int:
        return self._count

    def upsert(self, ids: Sequence[int], vectors: FloatArray) -> None:
        id_arr, mat = as_vectors(as_id_array(ids), vectors, self._dimension)
        if id_arr.size == 0:
            return
        with self._lock:
            self._upsert_checked(id_arr, mat)
            self._note_changed(id_arr)
            self._after_mutation()

    def _upsert_checked(self, id_arr: IntArray, mat: FloatArray) -> None:
        old = self._map.lookup(id_arr, self._ids)
        old = old[old >= 0]
        new_count = int(id_arr.size - old.size)
        if self._max_entries is not None and self._count + new_count > self._max_entries:
            raise ConfigurationError(f"the vector index is limited to {self._max_entries} entries")
        self._add(id_arr, mat)  # first: a failed add leaves the index unchanged
        self._tombstone(old)
        self._count += new_count

    def remove(self, ids: Sequence[int]) -> None:
        with self._lock:
            removed = self._remove_checked(as_id_array(ids))
            if removed.size:
                self._note_changed(removed)
                self._after_mutation()

    def _remove_checked(self, id_arr: IntArray) -> IntArray:
        """Tombstone the live ones of ``id_arr``; returns the ids removed."""
        positions = np.unique(self._map.lookup(id_arr, self._ids))
        positions = positions[positions >= 0]
        removed = self._ids[positions].copy()
        self._tombstone(positions)
        self._count -= int(positions.size)
        return removed

    def search(
        self, query: FloatArray, k: int, filter: VectorFilter | None = None
    ) -> list[tuple[int, float]]:
        q = as_query(query, self._dimension)
        if k <= 0:
            return []
        with self._lock:
            if filter is not None and filter.allowed_ids is not None:
                positions = self._positions_of(as_id_array(filter.allowed_ids))
                if positions.size and positions.size == self._count:
                    return self._search_all(q, k)  # every live vector allowed: no selector
                return self._search_subset(q, k, positions)
            if not self._count:
                return []
            return self._search_all(q, k)

    def similarities(self, query: FloatArray, ids: Sequence[int]) -> dict[int, float]:
        """Cosine similarity of ``query`` to each stored id (ids not stored are left out): the
        engine scores fused candidates the vector side did not return without reading the
        store's copies of their vectors."""
        q = as_query(query, self._dimension)
        id_arr = as_id_array(ids)
        with self._lock:
            positions = self._map.lookup(id_arr, self._ids)
            found = positions >= 0
            if not found.any():
                return {}
            scores = self._xb()[positions[found]] @ q[0]
        return dict(zip(id_arr[found].tolist(), scores.tolist(), strict=True))

    def _exact(self, q: FloatArray, k: int, positions: IntArray) -> list[tuple[int, float]]:
        scores = self._xb()[positions] @ q[0]
        return top_k(self._ids[positions], scores, k)

    def _faiss_search(
        self, q: FloatArray, k: int, sel: Any, *, ef: int | None
    ) -> list[tuple[int, float]]:
        """Search HNSW with ``efSearch=ef``, or (``ef=None`` or flat) scan the flat storage exactly.

        A scan with a selector touches only the selected vectors, in place.
        """
        faiss = self._faiss
        if ef is not None and self._kind == "hnsw":
            index, params = self._index, faiss.SearchParametersHNSW(sel=sel, efSearch=max(ef, k))
        else:
            index = self._index
            if self._kind == "hnsw":
                index = faiss.downcast_index(self._index.storage)  # an IndexFlat (inner product)
            params = faiss.SearchParameters(sel=sel) if sel is not None else None
        try:
            scores, labels = index.search(q, min(k, int(index.ntotal)), params=params)
        except RuntimeError as exc:
            raise IndexError_(f"faiss search failed: {exc}") from exc
        out = []
        for pos, score in zip(labels[0].tolist(), scores[0].tolist(), strict=True):
            if pos >= 0 and self._ids[pos] >= 0:
                out.append((int(self._ids[pos]), float(score)))
        return out

    def _search_all(self, q: FloatArray, k: int) -> list[tuple[int, float]]:
        sel = self._live_selector() if self._dead else None
        hits = self._faiss_search(q, k, sel, ef=self._ef_search)
        if len(hits) < min(k, self._count):  # HNSW came up short: be exact
            hits = self._faiss_search(q, k, self._live_selector(), ef=None)
        return hits

    def _search_subset(self, q: FloatArray, k: int, positions: IntArray) -> list[tuple[int, float]]:
        n = positions.size
        if n == 0:
            return []
        if n <= self.exact_filter_max:  # a few rows: gather them and take one product
            scores = self._xb()[positions] @ q[0]
            return top_k(self._ids[positions], scores, k)
        sel, _bitmap = self._selector(positions)
        fraction = n / max(self._count, 1)
        if self._kind == "hnsw" and fraction >= self.exact_filter_fraction:
            ef = min(max(self._ef_search, int(2 * k / fraction)), 4096)
            hits = self._faiss_search(q, k, sel, ef=ef)
            if len(hits) >= min(k, n):
                return hits
        return self._faiss_search(q, k, sel, ef=None)  # exact scan of the allowed vectors

    def clear(self) -> None:
        with self._lock:
            self._reset(self._target_kind(0))
            self._forget_disk()
