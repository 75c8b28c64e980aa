"""What the in-process embedders (ONNX, sentence-transformers) share: settings, the lazily
known dimension and the ``embed`` contract around a backend's batch encoder."""

from __future__ import annotations

from collections.abc import Sequence

from headroom.memory.adapters.vector.arrays import as_unit_rows, empty_vectors
from headroom.memory.ports import FloatArray

__all__ = ["LocalEmbedderBase"]


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
