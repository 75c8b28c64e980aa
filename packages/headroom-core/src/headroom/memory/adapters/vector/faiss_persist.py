"""Saving and loading the FAISS index: a delta per save, the whole index only now and then.

``save(seq)`` appends what changed since the last save or load (the net upserts with their
vectors and the removals, see :mod:`faiss_files`) to ``<path>.delta``; it writes the whole index
(the base) only when there is no base this process extends (first save, after ``clear()``, after
another process wrote a new base, a base of the pre-delta format), when the kind changed (flat ->
HNSW), or when the delta has grown past :attr:`FaissPersistence.delta_fold_fraction` of the base
(for HNSW also past :attr:`FaissPersistence.hnsw_delta_fold_fraction` of its vectors, since
replaying an HNSW delta costs a graph insertion per vector on the next load). ``load()`` reads
the base straight into FAISS (one copy of the vectors), then replays the delta's valid records.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from headroom.memory.adapters.vector.common import (
    IndexFileMeta,
    IntArray,
    as_vectors,
    read_index_file,
    read_sidecar,
    sidecar_path,
)
from headroom.memory.adapters.vector.faiss_files import (
    BASE_FORMAT,
    DELTA_HEADER_SIZE,
    BaseFile,
    DeltaRecord,
    append_delta,
    delta_path,
    read_base,
    read_delta,
    record_size,
    write_base,
    writer_lock,
)
from headroom.memory.errors import HeadroomError
from headroom.memory.ports import FloatArray

__all__ = ["FaissPersistence"]

logger = logging.getLogger(__name__)

_NO_IDS: IntArray = np.empty(0, dtype=np.int64)


class FaissPersistence:
    """The save/load half of :class:`~.faiss_index.FaissVectorIndex` (a mixin)."""

    delta_fold_fraction = 0.25
    """Write a new base instead of appending once the delta log would exceed this fraction of
    the base file's bytes."""
    hnsw_delta_fold_fraction = 0.002
    """On HNSW, also once the delta's vectors exceed this fraction of the base's vectors (a load
    inserts each into the graph, ~1000x the cost of reading it)."""

    # provided by FaissVectorIndex / PersistedIndexBase
    _path: Path | None
    _lock: Any
    _faiss: Any
    _index: Any
    _ids: IntArray
    _kind: str
    _count: int
    _dead: int
    _dimension: int
    _requested: str
    _ef_search: int
    engine_name: str
    database_id: str

    def _init_persistence(self) -> None:
        self._disk: BaseFile | None = None  # the base (+ delta) on disk our state extends
        self._changed: list[IntArray] = []  # ids upserted or removed since then

    def _forget_disk(self) -> None:
        """The next save writes a whole base (the in-memory index no longer extends it)."""
        self._disk = None
        self._changed = []

    def _note_changed(self, ids: IntArray) -> None:
        if self._path is not None and self._disk is not None:
            self._changed.append(np.array(ids, dtype=np.int64))

    # -- save ------------------------------------------------------------------------------------

    def save(self, seq: int) -> None:
        if self._path is None:
            return
        with self._lock, writer_lock(self._path):
            disk = self._disk
            if disk is not None and disk.kind == self._kind and self._base_unchanged(disk):
                touched = np.unique(np.concatenate(self._changed)) if self._changed else _NO_IDS
                positions = self._map_lookup(touched)
                live = positions >= 0
                n_live = int(np.count_nonzero(live))
                size = record_size(touched.size - n_live, n_live, self._dimension)
                vectors = disk.delta_vectors + n_live
                fold = max(disk.delta_end, DELTA_HEADER_SIZE) + size > (
                    self.delta_fold_fraction * disk.nbytes
                ) or (
                    self._kind == "hnsw"
                    and vectors > self.hnsw_delta_fold_fraction * disk.positions
                )
                if not fold:
                    upserted = self._xb()[positions[live]]  # a copy (fancy indexing)
                    record = DeltaRecord(int(seq), touched[~live], touched[live], upserted)
                    append_delta(self._path, disk, record)
                    disk.delta_vectors = vectors
                    self._changed = []
                    return
            self._write_base(seq)

    def _base_unchanged(self, disk: BaseFile) -> bool:
        """Whether the base on disk is still the one we extend (no other process replaced it)."""
        assert self._path is not None
        try:
            info = json.loads(sidecar_path(self._path).read_text())
            if info.get("token") != disk.token or self._path.stat().st_size != disk.nbytes:
                return False
            log = delta_path(self._path)
            size = log.stat().st_size if log.exists() else 0
        except (OSError, ValueError):
            return False
        if size != disk.delta_end:  # another process appended (or cut): append after its records
            records, disk.delta_end = read_delta(self._path, disk.token, self._dimension)
            disk.delta_vectors = max(disk.delta_vectors, sum(int(r.ids.size) for r in records))
        return True

    def _write_base(self, seq: int) -> None:
        assert self._path is not None
        sidecar = {"engine": self.engine_name, "seq": int(seq), "dimension": self._dimension,
                   "count": self._count, "kind": self._kind, "database_id": self.database_id}  # fmt: skip
        self._disk = write_base(self._path, self._faiss, self._index, self._ids, sidecar)
        self._changed = []

    # -- load ------------------------------------------------------------------------------------

    def load(self) -> int | None:
        if self._path is None:
            return None
        with self._lock:
            self._reset(self._target_kind(0))
            self._forget_disk()
            found = read_sidecar(
                self._path,
                engine=self.engine_name,
                dimension=self._dimension,
                database_id=self.database_id,
                versions=(1, BASE_FORMAT),
            )
            if found is None:
                return None
            meta, info = found
            legacy = int(info["format_version"]) == 1
            loaded = self._read_legacy() if legacy else read_base(self._path, self._faiss, info)
            if loaded is None or not self._install(loaded[0], loaded[1], meta):
                self._reset(self._target_kind(0))
                return None
            seq = meta.seq
            if not legacy:  # a legacy base is rewritten in the new format by the next save
                disk = BaseFile(str(info["token"]), self._kind, self._path.stat().st_size,
                                int(self._ids.size))  # fmt: skip
                try:
                    seq = self._replay_delta(disk, seq)
                except (HeadroomError, RuntimeError) as exc:  # e.g. max_entries reached
                    logger.warning("vector index delta of %s not applied (%s); rebuilding",
                                   self._path, exc)  # fmt: skip
                    self._reset(self._target_kind(0))
                    return None
                self._disk = disk
            target = self._target_kind(self._count)
            if self._requested != "auto" and target != self._kind:
                self._rebuild(target)
            else:
                self._after_mutation()
            logger.info(
                "loaded the vector index %s (%d vectors, seq %d)", self._path, self._count, seq
            )
            return seq

    def _read_legacy(self) -> tuple[Any, IntArray] | None:
        """A FAISS index saved as one ``.npz`` (format 1)."""
        assert self._path is not None
        found = read_index_file(self._path, engine=self.engine_name, dimension=self._dimension,
                                names=("index", "ids"), database_id=self.database_id)  # fmt: skip
        if found is None:
            return None
        arrays = found[1]
        try:
            index = self._faiss.deserialize_index(arrays.pop("index"))
        except RuntimeError as exc:
            logger.warning(
                "faiss cannot read the vector index %s (%s); rebuilding", self._path, exc
            )
            return None
        return index, arrays["ids"].astype(np.int64, copy=False)

    def _install(self, index: Any, ids: IntArray, meta: IndexFileMeta) -> bool:
        faiss = self._faiss
        live = ids[ids >= 0]
        kind = "hnsw" if isinstance(index, faiss.IndexHNSWFlat) else "flat"
        if (
            kind != meta.kind
            or not isinstance(index, (faiss.IndexHNSWFlat, faiss.IndexFlat))
            or index.metric_type != faiss.METRIC_INNER_PRODUCT
            or index.d != self._dimension
            or index.ntotal != ids.size
            or live.size != meta.count
            or np.unique(live).size != live.size
        ):
            logger.warning(
                "vector index %s is inconsistent with its sidecar; rebuilding", self._path
            )
            return False
        if kind == "hnsw":
            index.hnsw.efSearch = self._ef_search
        self._kind, self._index = kind, index
        self._set_ids(ids)
        self._count, self._dead = int(live.size), int(ids.size - live.size)
        return True

    def _replay_delta(self, disk: BaseFile, seq: int) -> int:
        """Apply the valid records of the delta log; returns the seq of the last one."""
        assert self._path is not None
        records, disk.delta_end = read_delta(self._path, disk.token, self._dimension)
        for record in records:
            self._remove_checked(record.removed)
            if record.ids.size:
                ids, vectors = as_vectors(record.ids, record.vectors, self._dimension)
                self._upsert_checked(ids, vectors)
            seq = record.seq
            disk.delta_vectors += int(record.ids.size)
        return seq

    if TYPE_CHECKING:  # implemented by FaissVectorIndex

        def _reset(self, kind: str) -> None: ...
        def _target_kind(self, count: int) -> str: ...
        def _set_ids(self, ids: IntArray) -> None: ...
        def _rebuild(self, kind: str) -> None: ...
        def _after_mutation(self) -> None: ...
        def _xb(self) -> FloatArray: ...
        def _map_lookup(self, ids: IntArray) -> IntArray: ...
        def _remove_checked(self, id_arr: IntArray) -> IntArray: ...
        def _upsert_checked(self, id_arr: IntArray, mat: FloatArray) -> None: ...
