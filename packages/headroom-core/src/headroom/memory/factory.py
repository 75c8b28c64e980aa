"""create_memory_system: the one place that chooses concrete adapters (imported lazily)."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from .config import EmbedderBackend, MemoryConfig, StoreBackend, TextBackend, VectorBackend
from .errors import ConfigurationError, DimensionMismatchError, MissingDependencyError
from .ports import Embedder, MemoryCache, TextIndex, VectorIndex

__all__ = [
    "EMBEDDER_ENTRY_POINT_GROUP",
    "MemoryComponents",
    "create_embedder",
    "create_memory_system",
]

logger = logging.getLogger(__name__)

EMBEDDER_ENTRY_POINT_GROUP = "headroom.memory_vector"


@dataclass
class MemoryComponents:
    config: MemoryConfig
    store: Any
    embedder: Embedder
    vector_index: VectorIndex | None
    text_index: TextIndex | None
    cache: MemoryCache | None


def create_embedder(config: MemoryConfig) -> Embedder:
    """The configured embedder (no model is loaded until first use where possible).

    The local model backends (ONNX, sentence-transformers) are shared: one instance per
    (backend, model, threads, batch size) per process, closed when the last memory using it closes.
    """
    backend = config.embedder_backend
    if backend in (EmbedderBackend.ONNX, EmbedderBackend.LOCAL):
        from .adapters.embedders.shared import shared_embedder

        key = (backend.value, config.embedder_model, config.embedder_threads,
               config.embedder_batch_size)  # fmt: skip
        return shared_embedder(key, lambda: _new_embedder(config))
    return _new_embedder(config)


def _new_embedder(config: MemoryConfig) -> Embedder:
    backend = config.embedder_backend
    if backend is EmbedderBackend.LOCAL:
        from .adapters.embedders.sentence_transformer import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(
            config.embedder_model,
            threads=config.embedder_threads,
            batch_size=config.embedder_batch_size,
        )
    if backend is EmbedderBackend.ONNX:
        from .adapters.embedders.onnx import OnnxEmbedder

        return OnnxEmbedder(
            config.embedder_model,
            threads=config.embedder_threads,
            batch_size=config.embedder_batch_size,
        )
    if backend is EmbedderBackend.OPENAI:
        from .adapters.embedders.http import OpenAIEmbedder

        model = config.embedder_model
        if model == MemoryConfig.embedder_model:
            model = "text-embedding-3-small"
        return OpenAIEmbedder(
            model, api_key=config.openai_api_key, base_url=config.openai_base_url,
            dimension=config.vector_dimension, timeout=config.http_timeout,
        )  # fmt: skip
    if backend is EmbedderBackend.OLLAMA:
        from .adapters.embedders.http import OllamaEmbedder

        model = config.embedder_model
        if model == MemoryConfig.embedder_model:
            model = "nomic-embed-text"
        return OllamaEmbedder(
            model, base_url=config.ollama_base_url, dimension=config.vector_dimension,
            timeout=config.http_timeout,
        )  # fmt: skip
    if backend is EmbedderBackend.EXTERNAL:
        return _external_embedder(config)
    raise ConfigurationError(f"unsupported embedder backend {backend!r}")


def _external_embedder(config: MemoryConfig) -> Embedder:
    name = config.embedder_entry_point
    eps = importlib_metadata.entry_points(group=EMBEDDER_ENTRY_POINT_GROUP)
    candidates = [ep for ep in eps if name is None or ep.name == name]
    if not candidates:
        raise ConfigurationError(
            f"no embedder registered under entry point group {EMBEDDER_ENTRY_POINT_GROUP!r}"
            + (f" with name {name!r}" if name else "")
        )
    if len(candidates) > 1:
        raise ConfigurationError(
            f"several embedders registered ({[ep.name for ep in candidates]}); set embedder_entry_point"
        )
    factory = candidates[0].load()
    embedder = factory(config)
    if not isinstance(embedder, Embedder):
        raise ConfigurationError(f"entry point {candidates[0].name!r} did not return an Embedder")
    return embedder


def _vector_index(config: MemoryConfig, dimension: int) -> VectorIndex | None:
    backend = config.vector_backend
    if backend is VectorBackend.NONE:
        return None
    if backend is VectorBackend.SQLITE_VEC:
        raise ConfigurationError(
            "VectorBackend.SQLITE_VEC is not shipped; use VectorBackend.AUTO (FAISS, exact while "
            "small, HNSW when large)"
        )
    path = Path(f"{config.db_path}.faiss")
    try:
        from .adapters.vector.faiss_index import FaissVectorIndex

        return FaissVectorIndex(
            dimension,
            path=path,
            kind={
                VectorBackend.AUTO: "auto",
                VectorBackend.FLAT: "flat",
                VectorBackend.HNSW: "hnsw",
            }[backend],
            hnsw_min_entries=config.hnsw_min_entries,
            hnsw_m=config.hnsw_m,
            hnsw_ef_construction=config.hnsw_ef_construction,
            hnsw_ef_search=config.hnsw_ef_search,
            max_entries=config.hnsw_max_entries,
        )
    except MissingDependencyError:
        if backend is not VectorBackend.AUTO:
            raise
        from .adapters.vector.numpy_index import NumpyVectorIndex

        logger.warning("faiss-cpu is not installed; using the exact numpy vector index")
        return NumpyVectorIndex(dimension, path=Path(f"{config.db_path}.npy-index"))


def create_memory_system(
    config: MemoryConfig | None = None, *, embedder: Embedder | None = None
) -> MemoryComponents:
    """Wire store, indexes, embedder and cache for ``config`` (the store is not opened yet)."""
    from .adapters.lru_cache import LRUMemoryCache
    from .adapters.sqlite.store import SQLModelMemoryStore

    config = config or MemoryConfig()
    embedder = embedder or create_embedder(config)
    dimension = embedder.dimension
    if dimension != config.vector_dimension:
        raise DimensionMismatchError(
            f"the embedder {embedder.model_name!r} produces {dimension}-dimensional vectors but "
            f"MemoryConfig.vector_dimension is {config.vector_dimension}; set vector_dimension={dimension}"
        )
    if config.store_backend is StoreBackend.POSTGRES:
        return _postgres_system(config, embedder)
    hooks = []
    text_index_factory = None
    if config.text_backend is TextBackend.FTS5:
        from .adapters.sqlite.fts5 import FTS5TextIndex, create_fts_schema

        hooks.append(create_fts_schema)
        text_index_factory = functools.partial(FTS5TextIndex, max_postings=config.text_postings_max)
    store = SQLModelMemoryStore(
        config.db_path,
        busy_timeout_ms=config.busy_timeout_ms,
        cache_size_kb=config.vector_cache_size_kb,
        on_create=hooks,
        read_only=config.read_only,
    )
    return MemoryComponents(
        config=config,
        store=store,
        embedder=embedder,
        vector_index=_vector_index(config, dimension),
        text_index=text_index_factory(store) if text_index_factory else None,
        cache=LRUMemoryCache(config.cache_max_size) if config.cache_enabled else None,
    )


def _postgres_system(config: MemoryConfig, embedder: Embedder) -> MemoryComponents:
    """Store, vectors and full text all in PostgreSQL (no local files)."""
    from .adapters.lru_cache import LRUMemoryCache
    from .adapters.postgres.search import PgTextIndex, PgVectorIndex
    from .adapters.postgres.store import PostgresMemoryStore

    if config.vector_backend is VectorBackend.SQLITE_VEC:
        raise ConfigurationError("VectorBackend.SQLITE_VEC does not apply to StoreBackend.POSTGRES")
    assert config.database_url is not None
    hnsw = {VectorBackend.HNSW: "always", VectorBackend.FLAT: "never"}.get(
        config.vector_backend, "auto"
    )
    store = PostgresMemoryStore(
        config.database_url,
        pool_size=config.postgres_pool_size,
        hnsw=hnsw,
        hnsw_min_entries=config.hnsw_min_entries,
        read_only=config.read_only,
    )
    vector_index: VectorIndex | None = None
    if config.vector_backend is not VectorBackend.NONE:
        vector_index = PgVectorIndex(
            store, exact_max=config.postgres_exact_max, ef_search=config.hnsw_ef_search
        )
    return MemoryComponents(
        config=config,
        store=store,
        embedder=embedder,
        vector_index=vector_index,
        text_index=PgTextIndex(store) if config.text_backend is not TextBackend.NONE else None,
        cache=LRUMemoryCache(config.cache_max_size) if config.cache_enabled else None,
    )
