"""What HeadroomStore embeds and how it scores: LangGraph's ``IndexConfig`` semantics.

``index={"dims": ..., "embed": ..., "fields": [...]}``:

* ``fields``: JSON paths (LangGraph's syntax, e.g. ``"text"``, ``"items[*].value"``, ``"$"``) whose
  texts are embedded; each text is one vector and an item's score for a query is the best cosine
  similarity over its vectors (LangGraph's max pooling). Default: the value's ``"content"``,
  ``"text"`` or ``"memory"`` string, else the whole value as JSON (``"$"``). ``put(..., index=[...])``
  overrides the fields for one item; ``put(..., index=False)`` stores it without vectors: it is
  kept, listed and filtered, but ranked after every scored item, with ``score=None``.
* ``embed``: a LangChain ``Embeddings``, a sync function ``list[str] -> list[list[float]]``, or a
  ``"provider:model"`` string (LangGraph's ``init_embeddings``). Default: the memory's own embedder
  (Headroom's). Async-only functions are refused (the store embeds in a worker thread).
* ``dims``: checked against every vector (``embed``) or against Headroom's embedder dimension.

Vectors are kept with the item (float32, base64) so that scores are exact cosine similarities of
the configured embedding, whatever embedder the Headroom memory itself uses for recall.
"""

from __future__ import annotations

import base64
import inspect
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from langgraph.store.base.embed import ensure_embeddings, get_text_at_path, tokenize_path

from headroom.memory import HierarchicalMemory
from headroom.memory.errors import DimensionMismatchError, EmbeddingError, ValidationError

__all__ = ["StoreIndex", "decode_vectors"]

logger = logging.getLogger(__name__)

_TEXT_FIELDS = ("content", "text", "memory")
_KNOWN_KEYS = {"dims", "embed", "fields"}


def _encode(vector: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def decode_vectors(encoded: Any) -> list[np.ndarray]:
    """The vectors kept in an item's metadata (``[]`` when it has none)."""
    if not isinstance(encoded, list):
        return []
    return [np.frombuffer(base64.b64decode(e), dtype="<f4") for e in encoded if isinstance(e, str)]


class StoreIndex:
    """The store's index configuration: which texts of a value, which embedder, which dims."""

    def __init__(
        self, memory: HierarchicalMemory, index: Mapping[str, Any] | Sequence[str] | None
    ) -> None:
        self.memory = memory
        config: dict[str, Any]
        if index is None:
            config = {}
        elif isinstance(index, Mapping):
            config = dict(index)
            unknown = set(config) - _KNOWN_KEYS
            if unknown:
                raise ValidationError(
                    f"unknown index option(s) {sorted(unknown)}: IndexConfig has dims, embed, fields"
                )
        elif isinstance(index, Sequence) and not isinstance(index, str | bytes):
            config = {"fields": list(index)}  # shorthand: the fields only
        else:
            raise ValidationError(
                f"index must be an IndexConfig dict or a list of fields, not {type(index).__name__}"
            )
        fields = config.get("fields")
        if fields is not None and (
            isinstance(fields, str) or not all(isinstance(f, str) and f for f in fields)
        ):
            raise ValidationError("index['fields'] must be a list of JSON paths (strings)")
        self.fields: list[str] | None = list(fields) if fields is not None else None
        self._tokenized = [tokenize_path(f) for f in self.fields] if self.fields else None
        embed = config.get("embed")
        if embed is not None and inspect.iscoroutinefunction(embed):
            raise ValidationError(
                "index['embed'] is an async function: HeadroomStore embeds in a worker thread; "
                "pass a sync function or a LangChain Embeddings"
            )
        self.embeddings = ensure_embeddings(embed) if embed is not None else None
        dims = config.get("dims")
        if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int) or dims < 1):
            raise ValidationError(f"index['dims'] must be a positive int, not {dims!r}")
        if self.embeddings is None:
            own = int(memory._engine.embedder.dimension)
            if dims is not None and dims != own:
                raise DimensionMismatchError(
                    f"index['dims']={dims} but the memory's embedder has dimension {own}; "
                    "pass index['embed'] for another embedding"
                )
            dims = own
        self.dims: int | None = dims
        self.config: dict[str, Any] = {**config, "dims": dims} if dims else dict(config)

    # -- texts -----------------------------------------------------------------------------------

    def texts(self, value: Mapping[str, Any], index: Any = None) -> list[str]:
        """The texts of ``value`` to embed (``index``: a put's fields override, or None)."""
        if index is not None and index is not False:
            paths: list[Any] = [tokenize_path(p) for p in index]
        elif self._tokenized is not None:
            paths = self._tokenized
        else:
            paths = [next((f for f in _TEXT_FIELDS if isinstance(value.get(f), str)), "$")]
        texts: list[str] = []
        for path in paths:
            texts.extend(t for t in get_text_at_path(value, path) if t and t.strip())
        return texts

    @staticmethod
    def content(value: Mapping[str, Any], texts: Sequence[str]) -> str:
        """The Headroom memory content of an item (what recall injects)."""
        text = "\n".join(texts).strip()
        return text or json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)

    # -- vectors ---------------------------------------------------------------------------------

    def _embed(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        try:
            if self.embeddings is None:
                vectors = np.asarray(self.memory._engine.embedder.embed(list(texts)), dtype="f4")
            elif query:
                vectors = np.asarray([self.embeddings.embed_query(texts[0])], dtype="f4")
            else:
                vectors = np.asarray(self.embeddings.embed_documents(list(texts)), dtype="f4")
        except (EmbeddingError, ValidationError):
            raise
        except Exception as exc:
            raise EmbeddingError(f"the store's embed function failed: {exc}") from exc
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise EmbeddingError(f"embed returned shape {vectors.shape} for {len(texts)} texts")
        if self.dims is not None and vectors.shape[1] != self.dims:
            raise DimensionMismatchError(
                f"embed returned vectors of dimension {vectors.shape[1]}, index['dims'] is {self.dims}"
            )
        if not np.all(np.isfinite(vectors)):
            raise EmbeddingError("embed returned non-finite values")
        return vectors

    def encode(self, texts: Sequence[str]) -> list[str]:
        """The vectors of ``texts``, encoded for the item's metadata."""
        return [_encode(v) for v in self._embed(texts)] if texts else []

    def query_vector(self, query: str) -> np.ndarray:
        return self._embed([query], query=True)[0]

    @staticmethod
    def score(query: np.ndarray, vectors: Sequence[np.ndarray]) -> float:
        """The best cosine similarity of ``query`` with ``vectors``."""
        q_norm = float(np.linalg.norm(query))
        best = -1.0
        for v in vectors:
            if v.shape != query.shape:
                continue
            denom = q_norm * float(np.linalg.norm(v))
            best = max(best, float(np.dot(query, v)) / denom if denom else 0.0)
        return best
