"""Local embedder on sentence-transformers (torch), offline with the packaged MiniLM weights."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headroom.memory.adapters.embedders.local_base import LocalEmbedderBase
from headroom.memory.adapters.embedders.model_files import (
    MINILM_DIMENSION,
    is_minilm,
    resolve_local_model,
)
from headroom.memory.errors import EmbeddingError, MissingDependencyError
from headroom.memory.ports import FloatArray

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["SentenceTransformerEmbedder"]

logger = logging.getLogger(__name__)


class SentenceTransformerEmbedder(LocalEmbedderBase):
    """Embeds text with a sentence-transformers model on the CPU (or ``device``).

    The model loads lazily on first use (or with :meth:`load`); importing this module does not
    import torch. ``threads`` sets torch's intra-op thread count (``torch.set_num_threads``),
    which is process-wide: 1 keeps single queries fast under CPU contention, 2 suits bulk
    indexing on an idle machine. None leaves torch's default.
    """

    def __init__(
        self,
        model: str = "sentence-transformers/all-MiniLM-L6-v2",
        *,
        threads: int | None = 1,
        batch_size: int = 32,
        device: str = "cpu",
    ) -> None:
        super().__init__(
            model,
            threads=threads,
            batch_size=batch_size,
            dimension=MINILM_DIMENSION if is_minilm(model) else None,
        )
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self._device = device
        self._model: SentenceTransformer | None = None

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Load the model now (idempotent); raises EmbeddingError if it cannot be loaded."""
        if self._model is not None:
            return
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingDependencyError("sentence-transformers", "local") from exc
        self._apply_threads()
        source = resolve_local_model(self._model_name)
        local = Path(source).exists()
        logger.info("loading embedder %s from %s", self._model_name, source)
        try:
            # A local folder needs no hub access: local_files_only keeps this call offline
            # without touching HF_HUB_OFFLINE in os.environ.
            model = SentenceTransformer(source, device=self._device, local_files_only=local)
        except Exception as exc:
            raise EmbeddingError(
                f"could not load sentence-transformers model {self._model_name!r} from {source}: {exc}"
            ) from exc
        dim = _model_dimension(model)
        if dim is None:
            raise EmbeddingError(f"model {self._model_name!r} does not report its dimension")
        if self._dimension is not None and dim != self._dimension:
            raise EmbeddingError(
                f"model {self._model_name!r} has dimension {dim}, expected {self._dimension}"
            )
        self._dimension = dim
        self._model = model

    def _encode(self, texts: list[str]) -> FloatArray:
        assert self._model is not None
        self._apply_threads()
        try:
            raw = self._model.encode(
                texts,
                batch_size=self._batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        except Exception as exc:
            raise EmbeddingError(f"sentence-transformers failed to embed: {exc}") from exc
        return raw  # type: ignore[no-any-return]

    def close(self) -> None:
        """Drop the model (it is reloaded if the embedder is used again)."""
        self._model = None

    def _apply_threads(self) -> None:
        if self._threads is None:
            return
        import torch

        if torch.get_num_threads() != self._threads:
            torch.set_num_threads(self._threads)

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder(model={self._model_name!r}, threads={self._threads})"


def _model_dimension(model: Any) -> int | None:
    for attr in ("get_embedding_dimension", "get_sentence_embedding_dimension"):
        getter = getattr(model, attr, None)
        if callable(getter):
            value = getter()
            if value:
                return int(value)
    return None
