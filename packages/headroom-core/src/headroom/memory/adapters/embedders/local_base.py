"""What the in-process embedders (ONNX, sentence-transformers) share: settings, the lazily
known dimension and the ``embed`` contract around a backend's batch encoder."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from headroom.memory.adapters.vector.arrays import as_unit_rows, empty_vectors
from headroom.memory.ports import FloatArray

__all__ = ["LocalEmbedderBase", "embed_by_length"]


def embed_by_length(
    texts: Sequence[str], size: int, embed: Callable[[list[str]], FloatArray]
) -> FloatArray:
    """``embed`` called on chunks of at most ``size`` texts of similar length (a padded batch
    costs what its longest text costs), the vectors returned in input order."""
    if len(texts) <= size:
        return embed(list(texts))
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: FloatArray | None = None
    for start in range(0, len(order), size):
        idx = order[start : start + size]
        vectors = embed([texts[i] for i in idx])
        if out is None:
            out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
        out[idx] = vectors
    assert out is not None
    return out


class LocalEmbedderBase:
    """Subclasses implement ``load`` (idempotent; sets ``_dimension``), ``loaded`` and
    ``_encode`` (raw, not yet normalised rows for a non-empty list of texts)."""

    def __init__(
        self, model: str, *, threads: int | None, batch_size: int, dimension: int | None
    ) -> None:
        if threads is not None and threads < 1:
            raise ValueError("threads must be >= 1 or None")
        self._model_name = model
        self._threads = threads
        self._batch_size = batch_size
        self._dimension = dimension

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def threads(self) -> int | None:
        return self._threads

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self.load()
        assert self._dimension is not None
        return self._dimension

    def load(self) -> None:
        raise NotImplementedError

    def _encode(self, texts: list[str]) -> FloatArray:
        raise NotImplementedError

    def embed(self, texts: Sequence[str]) -> FloatArray:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of strings, not a single string")
        if not texts:
            return empty_vectors(self.dimension)
        self.load()
        raw = self._encode(list(texts))
        return as_unit_rows(
            raw, expected_rows=len(texts), dimension=self._dimension, source=self._model_name
        )
