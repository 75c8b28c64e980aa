"""Fakes for tests: deterministic embedders that need no model, network or extra.

Use :class:`HashEmbedder` in unit tests instead of a real model (microseconds per text,
same vectors in every process), and :class:`FailingEmbedder` to exercise error paths.
Not collected by pytest and free of pytest imports.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from headroom.memory.adapters.vector.arrays import empty_vectors, l2_normalize
from headroom.memory.errors import EmbeddingError
from headroom.memory.ports import FloatArray

__all__ = ["FailingEmbedder", "FixedEmbedder", "HashEmbedder"]

_WORD = re.compile(r"\w+", re.UNICODE)
_EMPTY_TOKEN = "\x00<empty>"


class HashEmbedder:
    """Hashed bag of words (and, at lower weight, character trigrams), L2-normalised.

    Each lowercase word adds ``±1`` at a blake2b-chosen coordinate and each trigram of
    ``" word "`` adds ``±trigram_weight``, so texts sharing words (or word stems) have a
    higher cosine. Deterministic across processes (no salted ``hash()``). Empty or
    whitespace-only text maps to one fixed unit vector.
    """

    def __init__(
        self,
        dimension: int = 64,
        *,
        model_name: str = "hash-embedder",
        trigram_weight: float = 0.25,
    ) -> None:
        if dimension < 2:
            raise ValueError("dimension must be >= 2")
        self._dimension = dimension
        self._model_name = f"{model_name}-{dimension}"
        self._trigram_weight = trigram_weight
        self.calls = 0
        """How many times embed() ran (tests can assert caching / batching)."""
        self.texts_embedded = 0
        self.closed = False

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def model_name(self) -> str:
        return self._model_name

    def embed(self, texts: Sequence[str]) -> FloatArray:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of strings, not a single string")
        self.calls += 1
        self.texts_embedded += len(texts)
        if not texts:
            return empty_vectors(self._dimension)
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            self._fill(out[row], text)
        return l2_normalize(out)

    def close(self) -> None:
        self.closed = True

    def _fill(self, row: FloatArray, text: str) -> None:
        words = _WORD.findall(text.lower())
        if not words:
            self._add(row, _EMPTY_TOKEN, 1.0)
            return
        for word in words:
            self._add(row, "w:" + word, 1.0)
            if self._trigram_weight:
                padded = f" {word} "
                for i in range(len(padded) - 2):
                    self._add(row, "t:" + padded[i : i + 3], self._trigram_weight)
        if not np.any(row):  # all contributions cancelled out: fall back to the first word
            self._add(row, "w:" + words[0], 1.0)

    def _add(self, row: FloatArray, token: str, weight: float) -> None:
        digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        sign = 1.0 if value & 1 else -1.0
        row[(value >> 1) % self._dimension] += sign * weight


class FailingEmbedder:
    """An embedder whose ``embed`` raises :class:`EmbeddingError`.

    ``fail_after`` successful calls (delegated to a :class:`HashEmbedder`) happen first, so a
    test can let writes succeed and then break the embedder.
    """

    def __init__(
        self,
        dimension: int = 64,
        *,
        fail_after: int = 0,
        message: str = "embedder failed (FailingEmbedder)",
    ) -> None:
        self._inner = HashEmbedder(dimension, model_name="failing-embedder")
        self._fail_after = fail_after
        self._message = message
        self.calls = 0

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    @property
    def model_name(self) -> str:
        return self._inner.model_name

    def embed(self, texts: Sequence[str]) -> FloatArray:
        self.calls += 1
        if self.calls > self._fail_after:
            raise EmbeddingError(self._message)
        return self._inner.embed(texts)

    def close(self) -> None:
        self._inner.close()


class FixedEmbedder:
    """Maps known texts to given vectors, to build exact (e.g. adversarial) neighbourhoods.

    Embedding a text that is not in ``table`` raises :class:`EmbeddingError`.
    """

    def __init__(self, table: dict[str, FloatArray], dim: int, model_name: str = "fixed") -> None:
        self.table = table
        self._dim = dim
        self._model_name = model_name

    @property
    def dimension(self) -> int:
        return self._dim

    @property
    def model_name(self) -> str:
        return self._model_name

    def embed(self, texts: Sequence[str]) -> FloatArray:
        missing = [t for t in texts if t not in self.table]
        if missing:
            raise EmbeddingError(f"FixedEmbedder has no vector for {missing[0]!r}")
        if not texts:
            return empty_vectors(self._dim)
        return np.stack([self.table[t] for t in texts]).astype(np.float32)

    def close(self) -> None:
        pass
