"""Helpers shared by the vector index adapters: input checks, top-k and atomic persistence.

Persistence layout of the numpy index (and of FAISS indexes saved before format 2, still read;
the FAISS base + delta layout is in ``faiss_files``): ``path`` is an uncompressed ``.npz`` archive written to a
temporary file in the same directory and moved into place with :func:`os.replace`; next to it,
``<path>.json`` records ``format_version``, ``engine``, ``seq``, ``dimension``, ``count``, ``kind``
and the blake2b checksum of the archive bytes. The sidecar is written last, so a crash between
the two writes leaves a checksum mismatch and the index is rebuilt from the store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from headroom.memory.errors import (
    ConfigurationError,
    DimensionMismatchError,
    IndexError_,
    ValidationError,
)
from headroom.memory.ports import FloatArray

__all__ = [
    "FORMAT_VERSION",
    "IndexFileMeta",
    "PersistedIndexBase",
    "as_id_array",
    "as_query",
    "as_vectors",
    "atomic_write",
    "read_index_file",
    "read_sidecar",
    "sidecar_path",
    "top_k",
    "write_index_file",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
IntArray = npt.NDArray[np.int64]


def as_id_array(ids: Sequence[int] | npt.NDArray[Any]) -> IntArray:
    """Ids as a 1-d int64 array."""
    arr = np.asarray(ids)
    if arr.size == 0:
        return np.empty(0, dtype=np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValidationError("ids must be a 1-d sequence of integers")
    return arr.astype(np.int64, copy=False)


def _normalise(matrix: FloatArray) -> FloatArray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0.0] = 1.0
    return np.ascontiguousarray(matrix / norms, dtype=np.float32)


def as_vectors(ids: IntArray, vectors: FloatArray, dimension: int) -> tuple[IntArray, FloatArray]:
    """Checked, L2-normalised ``(n, dimension)`` float32 rows; duplicate ids keep the last row."""
    mat = np.asarray(vectors, dtype=np.float32)
    if mat.ndim == 1 and ids.size == 1:
        mat = mat.reshape(1, -1)
    if mat.ndim != 2:
        raise ValidationError(f"vectors must be 2-d (n, {dimension}), got shape {mat.shape}")
    if mat.shape[1] != dimension:
        raise DimensionMismatchError(
            f"vectors have dimension {mat.shape[1]}, the index has dimension {dimension}"
        )
    if mat.shape[0] != ids.size:
        raise ValidationError(f"{ids.size} ids for {mat.shape[0]} vectors")
    if not np.isfinite(mat).all():
        raise ValidationError("vectors contain NaN or infinite values")
    if np.unique(ids).size != ids.size:  # keep the last occurrence of each id
        _, first_in_reversed = np.unique(ids[::-1], return_index=True)
        keep = np.sort(ids.size - 1 - first_in_reversed)
        ids, mat = ids[keep], mat[keep]
    return ids, _normalise(mat)


def as_query(query: FloatArray, dimension: int) -> FloatArray:
    """A checked, L2-normalised query of shape ``(1, dimension)``."""
    q = np.asarray(query, dtype=np.float32)
    if q.ndim == 2 and q.shape[0] == 1:
        q = q[0]
    if q.ndim != 1:
        raise ValidationError(f"query must have shape ({dimension},) or (1, {dimension})")
    if q.shape[0] != dimension:
        raise DimensionMismatchError(
            f"query has dimension {q.shape[0]}, the index has dimension {dimension}"
        )
    if not np.isfinite(q).all():
        raise ValidationError("query contains NaN or infinite values")
    return _normalise(q.reshape(1, -1))


def top_k(ids: IntArray, scores: npt.NDArray[np.float32], k: int) -> list[tuple[int, float]]:
    """The ``k`` best ``(id, score)`` pairs, best first (ties broken by smaller id)."""
    if k <= 0 or ids.size == 0:
        return []
    if ids.size > k:
        part = np.argpartition(-scores, k - 1)[:k]
        ids, scores = ids[part], scores[part]
    order = np.lexsort((ids, -scores))
    return [(int(ids[i]), float(scores[i])) for i in order]


@dataclass(frozen=True)
class IndexFileMeta:
    """What the JSON sidecar records about a persisted index."""

    engine: str
    seq: int
    dimension: int
    count: int
    kind: str
    database_id: str = ""
    """The id of the database the index was built from (see ``SQLModelMemoryStore``)."""


def sidecar_path(path: Path) -> Path:
    """``<path>.json``."""
    return path.with_name(path.name + ".json")


def _blake2b_file(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=32)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return "blake2b:" + digest.hexdigest()


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(fileobj)`` on a temp file in ``path``'s directory, fsync, then replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise


def write_index_file(
    path: Path, arrays: Mapping[str, npt.NDArray[Any]], meta: IndexFileMeta
) -> None:
    """Atomically write ``arrays`` as an ``.npz`` to ``path``, then its checksummed sidecar."""
    try:
        savez: Any = np.savez  # numpy's stub types **kwds as its bool options
        atomic_write(path, lambda fh: savez(fh, **arrays))
        payload = {
            "format_version": FORMAT_VERSION,
            "engine": meta.engine,
            "seq": meta.seq,
            "dimension": meta.dimension,
            "count": meta.count,
            "kind": meta.kind,
            "database_id": meta.database_id,
            "checksum": _blake2b_file(path),
        }
        data = json.dumps(payload, indent=2).encode()
        atomic_write(sidecar_path(path), lambda fh: fh.write(data))
    except OSError as exc:
        raise IndexError_(f"could not save the vector index to {path}: {exc}") from exc


def read_sidecar(
    path: Path,
    *,
    engine: str,
    dimension: int,
    database_id: str = "",
    versions: Sequence[int] = (1,),
) -> tuple[IndexFileMeta, dict[str, Any]] | None:
    """The checked sidecar of ``path`` (and its raw fields), or None (logged) when unusable."""
    side = sidecar_path(path)
    if not path.exists() or not side.exists():
        logger.info("no persisted vector index at %s; it will be rebuilt", path)
        return None
    try:
        info = json.loads(side.read_text())
        meta = IndexFileMeta(
            engine=str(info["engine"]),
            seq=int(info["seq"]),
            dimension=int(info["dimension"]),
            count=int(info["count"]),
            kind=str(info["kind"]),
            database_id=str(info.get("database_id") or ""),
        )
        version = int(info["format_version"])
        str(info["checksum"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("vector index sidecar %s is unreadable (%s); rebuilding", side, exc)
        return None
    if version not in versions or meta.engine != engine:
        logger.info(
            "vector index %s has format %s/%s, expected %s/%s; rebuilding",
            path, meta.engine, version, engine, "|".join(map(str, versions)),
        )  # fmt: skip
        return None
    if database_id and meta.database_id != database_id:
        logger.warning(
            "vector index %s was built from another database (id %r, expected %r); rebuilding",
            path, meta.database_id or None, database_id,
        )  # fmt: skip
        return None
    if meta.dimension != dimension:
        logger.info(
            "vector index %s has dimension %d, expected %d; rebuilding",
            path, meta.dimension, dimension,
        )  # fmt: skip
        return None
    return meta, info


def read_index_file(
    path: Path, *, engine: str, dimension: int, names: Sequence[str], database_id: str = ""
) -> tuple[IndexFileMeta, dict[str, npt.NDArray[Any]]] | None:
    """The sidecar and arrays of a valid persisted ``.npz`` index, or None (logged)."""
    found = read_sidecar(path, engine=engine, dimension=dimension, database_id=database_id)
    if found is None:
        return None
    meta, info = found
    try:
        if _blake2b_file(path) != str(info["checksum"]):
            logger.warning("vector index %s is corrupt (checksum mismatch); rebuilding", path)
            return None
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in names}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        logger.warning("vector index %s is unreadable (%s); rebuilding", path, exc)
        return None
    return meta, arrays


class PersistedIndexBase:
    """The settings, ``bind`` and index-file access both vector indexes share."""

    engine_name = ""
    """Recorded in the sidecar; a file written by another engine is not loaded."""

    def __init__(self, dimension: int, path: Path | None, max_entries: int | None) -> None:
        self.database_id = ""
        if dimension <= 0:
            raise ConfigurationError("dimension must be positive")
        self._dimension = dimension
        self._path = Path(path) if path is not None else None
        self._max_entries = max_entries
        self._lock = threading.RLock()

    @property
    def dimension(self) -> int:
        return self._dimension

    def bind(self, database_id: str) -> None:
        """Record the database this index belongs to: saved with it, checked on load."""
        self.database_id = database_id

    def _write_file(
        self, path: Path, seq: int, count: int, kind: str, arrays: Mapping[str, npt.NDArray[Any]]
    ) -> None:
        meta = IndexFileMeta(
            self.engine_name, int(seq), self._dimension, count, kind, self.database_id
        )
        write_index_file(path, arrays, meta)

    def _read_file(
        self, path: Path, names: Sequence[str]
    ) -> tuple[IndexFileMeta, dict[str, npt.NDArray[Any]]] | None:
        return read_index_file(
            path,
            engine=self.engine_name,
            dimension=self._dimension,
            names=names,
            database_id=self.database_id,
        )
