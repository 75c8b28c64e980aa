"""Shared fixtures: temp databases, the fast fake embedder and one shared real embedder."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from headroom.memory import HierarchicalMemory, MemoryConfig
from headroom.testing import HashEmbedder


class SharedEmbedder:
    """Wraps a real embedder so memories closing it do not unload the shared model."""

    def __init__(self, inner: object) -> None:
        self._inner = inner

    @property
    def dimension(self) -> int:
        return self._inner.dimension  # type: ignore[attr-defined,no-any-return]

    @property
    def model_name(self) -> str:
        return self._inner.model_name  # type: ignore[attr-defined,no-any-return]

    def embed(self, texts: Sequence[str]):  # type: ignore[no-untyped-def]
        return self._inner.embed(texts)  # type: ignore[attr-defined]

    def close(self) -> None:
        pass


@pytest.fixture(scope="session")
def real_embedder() -> SharedEmbedder:
    """The real sentence-transformers embedder with the packaged all-MiniLM-L6-v2 weights."""
    from headroom.memory.adapters.embedders.sentence_transformer import SentenceTransformerEmbedder

    return SharedEmbedder(SentenceTransformerEmbedder(threads=1))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "memory.db"


@pytest.fixture
def hash_config(db_path: Path) -> MemoryConfig:
    return MemoryConfig(db_path=db_path, vector_dimension=64)


@pytest.fixture
def hm(hash_config: MemoryConfig) -> Iterator[HierarchicalMemory]:
    """A HierarchicalMemory on a real SQLite file and real FAISS, with the fast fake embedder."""
    memory = HierarchicalMemory.create_sync(hash_config, embedder=HashEmbedder(64))
    yield memory
    memory.sync.close()


@pytest.fixture
def real_hm(db_path: Path, real_embedder: SharedEmbedder) -> Iterator[HierarchicalMemory]:
    memory = HierarchicalMemory.create_sync(MemoryConfig(db_path=db_path), embedder=real_embedder)
    yield memory
    memory.sync.close()
