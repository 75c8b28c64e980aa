"""Small vector helpers shared by the embedders (one place for L2 normalisation)."""

from __future__ import annotations

from typing import Any

import numpy as np

from headroom.memory.errors import DimensionMismatchError, EmbeddingError
from headroom.memory.ports import FloatArray

__all__ = ["as_unit_rows", "empty_vectors", "l2_normalize"]

_EPS = 1e-12


def l2_normalize(vectors: Any) -> FloatArray:
    """Rows scaled to unit L2 norm, as C-contiguous float32 (all-zero rows stay zero)."""
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    out = arr / np.maximum(norms, _EPS)
    return np.ascontiguousarray(out, dtype=np.float32)


def empty_vectors(dimension: int) -> FloatArray:
    """The ``(0, dimension)`` float32 array returned for an empty input."""
    return np.zeros((0, dimension), dtype=np.float32)


def as_unit_rows(
    vectors: Any, *, expected_rows: int, dimension: int | None, source: str
) -> FloatArray:
    """Validate raw model/API output and return it L2-normalised.

    Raises :class:`EmbeddingError` when the shape is wrong, a value is not finite or a row is
    all zeros (which cannot be normalised).
    """
    try:
        arr = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise EmbeddingError(f"{source} returned vectors that are not numeric: {exc}") from exc
    if arr.ndim != 2 or arr.shape[0] != expected_rows:
        raise EmbeddingError(
            f"{source} returned shape {arr.shape}, expected ({expected_rows}, {dimension or 'd'})"
        )
    if dimension is not None and arr.shape[1] != dimension:
        raise DimensionMismatchError(
            f"{source} returned {arr.shape[1]}-dimensional vectors, expected {dimension}"
        )
    if not np.all(np.isfinite(arr)):
        raise EmbeddingError(f"{source} returned non-finite values")
    if arr.size and np.any(np.linalg.norm(arr, axis=1) <= _EPS):
        raise EmbeddingError(f"{source} returned an all-zero vector")
    return l2_normalize(arr)
