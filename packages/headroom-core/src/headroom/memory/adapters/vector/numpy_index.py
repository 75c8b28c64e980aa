"""An exact, pure-numpy vector index (used without faiss and in unit tests)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from headroom.memory.adapters.vector.common import (
    IntArray,
    PersistedIndexBase,
    as_id_array,
    as_query,
    as_vectors,
    top_k,
)
from headroom.memory.errors import ConfigurationError
from headroom.memory.ports import FloatArray, VectorFilter

__all__ = ["NumpyVectorIndex"]

logger = logging.getLogger(__name__)


class NumpyVectorIndex(PersistedIndexBase):
    """Exact cosine search over a dense float32 matrix of store primary keys.

    Rows are kept compact (a removed row is replaced by the last one), so every search is a
    single matrix-vector product over the live vectors, or over the allowed rows only.
    """

    engine_name = "numpy"

    def __init__(
        self, dimension: int, *, path: Path | None = None, max_entries: int | None = None
    ) -> None:
        super().__init__(dimension, path, max_entries)
        self._vectors = np.empty((0, dimension), dtype=np.float32)
        self._ids: IntArray = np.empty(0, dtype=np.int64)
        self._row_of: dict[int, int] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def _reserve(self, extra: int) -> None:
        needed = self._count + extra
        if needed <= self._vectors.shape[0]:
            return
        capacity = max(needed, 2 * self._vectors.shape[0], 64)
        vectors = np.empty((capacity, self._dimension), dtype=np.float32)
        ids = np.full(capacity, -1, dtype=np.int64)
        vectors[: self._count] = self._vectors[: self._count]
        ids[: self._count] = self._ids[: self._count]
        self._vectors, self._ids = vectors, ids

    def upsert(self, ids: Sequence[int], vectors: FloatArray) -> None:
        id_arr, mat = as_vectors(as_id_array(ids), vectors, self._dimension)
        with self._lock:
            new = [i for i in id_arr.tolist() if i not in self._row_of]
            if self._max_entries is not None and self._count + len(new) > self._max_entries:
                raise ConfigurationError(
                    f"the vector index is limited to {self._max_entries} entries"
                )
            self._reserve(len(new))
            for i, row_vec in zip(id_arr.tolist(), mat, strict=True):
                row = self._row_of.get(i)
                if row is None:
                    row = self._count
                    self._count += 1
                    self._row_of[i] = row
                    self._ids[row] = i
                self._vectors[row] = row_vec

    def remove(self, ids: Sequence[int]) -> None:
        with self._lock:
            for i in as_id_array(ids).tolist():
                row = self._row_of.pop(i, None)
                if row is None:
                    continue
                last = self._count - 1
                if row != last:
                    moved = int(self._ids[last])
                    self._vectors[row] = self._vectors[last]
                    self._ids[row] = moved
                    self._row_of[moved] = row
                self._ids[last] = -1
                self._count = last

    def search(
        self, query: FloatArray, k: int, filter: VectorFilter | None = None
    ) -> list[tuple[int, float]]:
        q = as_query(query, self._dimension)[0]
        if k <= 0:
            return []
        with self._lock:
            if filter is not None and filter.allowed_ids is not None:
                allowed = as_id_array(filter.allowed_ids)
                get = self._row_of.get
                rows = np.fromiter(
                    (r for r in map(get, allowed.tolist()) if r is not None), dtype=np.int64
                )
                rows = np.unique(rows)
                if rows.size == 0:
                    return []
                return top_k(self._ids[rows], self._vectors[rows] @ q, k)
            n = self._count
            return top_k(self._ids[:n], self._vectors[:n] @ q, k)

    def clear(self) -> None:
        with self._lock:
            self._vectors = np.empty((0, self._dimension), dtype=np.float32)
            self._ids = np.empty(0, dtype=np.int64)
            self._row_of = {}
            self._count = 0

    def save(self, seq: int) -> None:
        if self._path is None:
            return
        with self._lock:
            n = self._count
            self._write_file(
                self._path, seq, n, "exact", {"ids": self._ids[:n], "vectors": self._vectors[:n]}
            )

    def load(self) -> int | None:
        if self._path is None:
            return None
        with self._lock:
            self.clear()
            found = self._read_file(self._path, ("ids", "vectors"))
            if found is None:
                return None
            meta, arrays = found
            ids = arrays["ids"].astype(np.int64, copy=False)
            vectors = arrays["vectors"].astype(np.float32, copy=False)
            if (
                ids.shape != (meta.count,)
                or vectors.shape != (meta.count, self._dimension)
                or np.unique(ids).size != ids.size
                or not np.isfinite(vectors).all()
            ):
                logger.warning("vector index %s is inconsistent with its sidecar", self._path)
                return None
            if self._max_entries is not None and meta.count > self._max_entries:
                logger.warning("vector index %s holds more than max_entries vectors", self._path)
                return None
            # np.load returned fresh arrays of their own: no copy (a load holds one copy)
            self._ids, self._vectors, self._count = ids, vectors, meta.count
            self._row_of = {i: row for row, i in enumerate(ids.tolist())}
            return meta.seq
