"""The FAISS index files: a base written whole now and then, and an append-only delta.

* ``<path>`` (base): the FAISS index as ``faiss.write_index`` streams it, followed by the
  position -> id array (int64). Written to a temporary file through a callback writer (no
  in-memory blob), fsynced and moved into place; read back the same way straight into FAISS's
  own storage, so a load holds one copy of the vectors. The CRC32 of the whole file is computed
  while it is written and while it is read.
* ``<path>.json`` (sidecar, written last): ``format_version`` 2, engine, seq, dimension, live
  count, kind, database id, checksum, the index section's length, the number of positions and a
  random ``token`` naming this base.
* ``<path>.delta``: a header naming the base's token, then records appended by ``save()``:
  ``(seq, removed ids, upserted ids, their vectors)`` with a CRC32 each. A torn or corrupt record
  ends the log (what follows is ignored, and the store's change sequence catches the index up);
  a delta whose token is not the base's is ignored. Writers hold ``<path>.lock`` (flock).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from headroom.memory.adapters.vector.common import IntArray, atomic_write, sidecar_path
from headroom.memory.errors import IndexError_
from headroom.memory.ports import FloatArray

try:  # POSIX only; elsewhere concurrent savers are not serialised (each write is still atomic)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "BASE_FORMAT",
    "DELTA_HEADER_SIZE",
    "BaseFile",
    "DeltaRecord",
    "append_delta",
    "delta_path",
    "read_base",
    "read_delta",
    "record_size",
    "write_base",
    "writer_lock",
]

logger = logging.getLogger(__name__)

BASE_FORMAT = 2
_DELTA_MAGIC = b"HRVDELTA"
_RECORD_MAGIC = b"HRVREC01"
_RECORD_HEAD = struct.Struct("<8sqqq")  # magic, seq, removed count, upserted count
_CRC = struct.Struct("<I")
_TOKEN_LEN = 16
DELTA_HEADER_SIZE = len(_DELTA_MAGIC) + _TOKEN_LEN
_CHUNK = 1 << 20


def delta_path(path: Path) -> Path:
    return path.with_name(path.name + ".delta")


@dataclass
class BaseFile:
    """What this process knows about the base on disk that its in-memory index extends."""

    token: str
    kind: str
    nbytes: int
    positions: int
    delta_end: int = 0
    """Byte length of the valid delta log for this base (0: no delta file yet)."""
    delta_vectors: int = 0
    """Vectors upserted by the records of that log (what a load replays)."""


@dataclass
class DeltaRecord:
    seq: int
    removed: IntArray
    ids: IntArray
    vectors: FloatArray


@contextlib.contextmanager
def writer_lock(path: Path) -> Iterator[None]:
    """Serialise index writers of several processes (``<path>.lock``)."""
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def write_base(
    path: Path, faiss: Any, index: Any, ids: IntArray, sidecar: dict[str, Any]
) -> BaseFile:
    """Atomically write the base and its sidecar, remove the old delta; returns its description."""
    state = {"crc": 0, "nbytes": 0}

    def write(fh: BinaryIO) -> None:
        def sink(chunk: bytes) -> int:
            fh.write(chunk)
            state["crc"] = zlib.crc32(chunk, state["crc"])
            state["nbytes"] += len(chunk)
            return len(chunk)

        faiss.write_index(index, faiss.PyCallbackIOWriter(sink, _CHUNK))
        state["index_bytes"] = state["nbytes"]
        tail = np.ascontiguousarray(ids, dtype=np.int64).tobytes()
        fh.write(tail)
        state["crc"] = zlib.crc32(tail, state["crc"])
        state["nbytes"] += len(tail)

    token = os.urandom(_TOKEN_LEN // 2).hex()
    try:
        atomic_write(path, write)
        info = {**sidecar, "format_version": BASE_FORMAT, "checksum": f"crc32:{state['crc']:08x}",
                "index_bytes": state["index_bytes"], "positions": int(ids.size), "token": token}  # fmt: skip
        data = json.dumps(info, indent=2).encode()
        atomic_write(sidecar_path(path), lambda fh: fh.write(data))
        delta_path(path).unlink(missing_ok=True)
    except (OSError, RuntimeError) as exc:
        raise IndexError_(f"could not save the vector index to {path}: {exc}") from exc
    return BaseFile(token, str(sidecar["kind"]), state["nbytes"], int(ids.size))


def read_base(path: Path, faiss: Any, info: dict[str, Any]) -> tuple[Any, IntArray] | None:
    """The FAISS index and position -> id array of a v2 base, or None (logged) when unusable."""
    try:
        index_bytes, positions = int(info["index_bytes"]), int(info["positions"])
        expected = str(info["checksum"])
        size = path.stat().st_size
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("vector index %s is unreadable (%s); rebuilding", path, exc)
        return None
    if index_bytes < 0 or positions < 0 or size != index_bytes + 8 * positions:
        logger.warning("vector index %s has the wrong size (torn write?); rebuilding", path)
        return None
    crc = 0
    try:
        with path.open("rb") as fh:
            left = [index_bytes]

            def source(n: int) -> bytes:
                nonlocal crc
                chunk = fh.read(min(n, left[0]))
                left[0] -= len(chunk)
                crc = zlib.crc32(chunk, crc)
                return chunk

            # read_index returns the concrete type; never downcast_index the temporary (the
            # owning wrapper would be collected and free the index)
            index = faiss.read_index(faiss.PyCallbackIOReader(source, _CHUNK))
            if left[0] != 0:
                raise ValueError("the index section was not read to its end")
            tail = fh.read(8 * positions)
            crc = zlib.crc32(tail, crc)
    except (OSError, RuntimeError, ValueError, MemoryError) as exc:
        logger.warning("faiss cannot read the vector index %s (%s); rebuilding", path, exc)
        return None
    if f"crc32:{crc:08x}" != expected or len(tail) != 8 * positions:
        logger.warning("vector index %s is corrupt (checksum mismatch); rebuilding", path)
        return None
    return index, np.frombuffer(tail, dtype=np.int64).copy()


def record_size(n_removed: int, n_ids: int, dimension: int) -> int:
    """Bytes a record of that many removals and upserts takes in the delta log."""
    return _RECORD_HEAD.size + 8 * n_removed + (8 + 4 * dimension) * n_ids + _CRC.size


def _record_parts(record: DeltaRecord) -> list[bytes]:
    head = _RECORD_HEAD.pack(_RECORD_MAGIC, record.seq, record.removed.size, record.ids.size)
    parts = [
        head,
        np.ascontiguousarray(record.removed, dtype="<i8").tobytes(),
        np.ascontiguousarray(record.ids, dtype="<i8").tobytes(),
        np.ascontiguousarray(record.vectors, dtype="<f4").tobytes(),
    ]
    crc = 0
    for part in parts:
        crc = zlib.crc32(part, crc)
    return [*parts, _CRC.pack(crc)]


def append_delta(path: Path, base: BaseFile, record: DeltaRecord) -> None:
    """Write ``record`` at ``base.delta_end`` of the delta log (a fresh log when it is 0) and
    fsync. The caller has set ``delta_end`` to the end of the log's valid records (a torn tail
    is cut; records of other processes are kept: replaying one after another is idempotent and
    the last record's seq tells the store where to catch up from)."""
    target = delta_path(path)
    parts = _record_parts(record)
    size = sum(len(p) for p in parts)
    try:
        if base.delta_end == 0:
            header = _DELTA_MAGIC + base.token.encode()
            atomic_write(target, lambda fh: fh.writelines([header, *parts]))
            base.delta_end = len(header) + size
            return
        with target.open("r+b") as fh:
            fh.seek(base.delta_end)
            fh.truncate()
            fh.writelines(parts)
            fh.flush()
            os.fsync(fh.fileno())
        base.delta_end += size
    except OSError as exc:
        raise IndexError_(f"could not append to the vector index delta {target}: {exc}") from exc


def read_delta(path: Path, token: str, dimension: int) -> tuple[list[DeltaRecord], int]:
    """The valid records of the delta log of base ``token`` and the byte length they span
    (0 when there is no usable log)."""
    target = delta_path(path)
    try:
        fh = target.open("rb")
    except FileNotFoundError:
        return [], 0
    except OSError as exc:
        logger.warning("vector index delta %s is unreadable (%s); ignoring it", target, exc)
        return [], 0
    records: list[DeltaRecord] = []
    with fh:
        size = os.fstat(fh.fileno()).st_size
        header = fh.read(len(_DELTA_MAGIC) + _TOKEN_LEN)
        if header != _DELTA_MAGIC + token.encode():
            logger.info("vector index delta %s belongs to another base; ignoring it", target)
            return [], 0
        end = len(header)
        while end < size:
            record = _read_record(fh, size - end, dimension)
            if record is None:
                logger.warning(
                    "vector index delta %s is torn or corrupt after %d records (byte %d); the "
                    "rest is caught up from the store", target, len(records), end,
                )  # fmt: skip
                break
            records.append(record)
            end = fh.tell()
    return records, end


def _read_record(fh: BinaryIO, left: int, dimension: int) -> DeltaRecord | None:
    head = fh.read(_RECORD_HEAD.size)
    if len(head) != _RECORD_HEAD.size:
        return None
    magic, seq, n_removed, n_ids = _RECORD_HEAD.unpack(head)
    if magic != _RECORD_MAGIC or n_removed < 0 or n_ids < 0:
        return None
    if record_size(n_removed, n_ids, dimension) > left:
        return None
    body_len = record_size(n_removed, n_ids, dimension) - _RECORD_HEAD.size - _CRC.size
    body = fh.read(body_len)
    crc = fh.read(_CRC.size)
    if len(body) != body_len or len(crc) != _CRC.size:
        return None
    if _CRC.unpack(crc)[0] != zlib.crc32(body, zlib.crc32(head)):
        return None
    removed = np.frombuffer(body, dtype="<i8", count=n_removed)
    ids = np.frombuffer(body, dtype="<i8", count=n_ids, offset=8 * n_removed)
    vectors = np.frombuffer(
        body, dtype="<f4", count=n_ids * dimension, offset=8 * (n_removed + n_ids)
    )
    return DeltaRecord(
        int(seq),
        removed.astype(np.int64),
        ids.astype(np.int64),
        vectors.reshape(n_ids, dimension).astype(np.float32),
    )
