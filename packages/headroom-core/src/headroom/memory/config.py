"""Configuration of the memory engine: one dataclass and the backend enums."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from enum import Enum
from pathlib import Path
from typing import Any

from .errors import ConfigurationError

__all__ = [
    "DEFAULT_DB_PATH",
    "POSTGRES_URL_PREFIXES",
    "EmbedderBackend",
    "MemoryConfig",
    "StoreBackend",
    "TextBackend",
    "VectorBackend",
    "postgres_url",
]

DEFAULT_DB_PATH = Path("headroom_memory.db")


class StoreBackend(str, Enum):
    """Where memories are stored (the single source of truth)."""

    SQLITE = "sqlite"
    POSTGRES = "postgres"  # PostgreSQL + pgvector (database_url); extra headroom-core[postgres]


POSTGRES_URL_PREFIXES = ("postgresql://", "postgresql+psycopg://")


def postgres_url(value: object) -> str | None:
    """``value`` as a PostgreSQL URL when it is one (also after ``Path()`` collapsed its ``//``)."""
    text = str(value) if isinstance(value, str | Path) else ""
    for prefix in POSTGRES_URL_PREFIXES:
        if text.startswith(prefix):
            return text
        collapsed = prefix.replace("//", "/")
        if isinstance(value, Path) and text.startswith(collapsed):
            return prefix + text[len(collapsed) :]
    return None


class VectorBackend(str, Enum):
    """The derived vector index.

    AUTO: FAISS, exact (flat inner product) while the index is small, HNSW once it holds more than
    ``hnsw_min_entries`` vectors. FLAT / HNSW force one FAISS index type. NONE disables semantic
    search (text search only). SQLITE_VEC is accepted for compatibility but not shipped: selecting it
    raises a ConfigurationError when the memory is opened.
    """

    AUTO = "auto"
    FLAT = "flat"
    HNSW = "hnsw"
    SQLITE_VEC = "sqlite_vec"
    NONE = "none"


class TextBackend(str, Enum):
    """The derived full-text index."""

    FTS5 = "fts5"
    NONE = "none"


class EmbedderBackend(str, Enum):
    """How text becomes vectors."""

    LOCAL = "local"  # sentence-transformers, packaged all-MiniLM-L6-v2 weights, offline
    ONNX = "onnx"  # onnxruntime + tokenizers, no torch at query time
    OPENAI = "openai"  # OpenAI-compatible /v1/embeddings over HTTP
    OLLAMA = "ollama"  # Ollama /api/embed over HTTP
    EXTERNAL = "external"  # a provider registered under the "headroom.memory_vector" entry point


@dataclass
class MemoryConfig:
    """Everything that configures a :class:`~headroom.memory.HierarchicalMemory`.

    Strings are accepted for the enum fields (``embedder_backend="onnx"``) and for ``db_path``.
    """

    store_backend: StoreBackend = StoreBackend.SQLITE
    db_path: Path | str = DEFAULT_DB_PATH
    """A SQLite file, or a ``postgresql://`` / ``postgresql+psycopg://`` URL (selects POSTGRES)."""
    database_url: str | None = None
    """The PostgreSQL URL of StoreBackend.POSTGRES (set from ``db_path`` when that is a URL)."""
    postgres_exact_max: int = 20_000
    """POSTGRES: vector search ranks the visible rows exactly while there are at most this many;
    above it, if the HNSW index exists, the index runs with ``hnsw.iterative_scan``. The index
    exists with VectorBackend.HNSW, or with AUTO once the table holds > ``hnsw_min_entries``."""
    postgres_pool_size: int = 5

    vector_backend: VectorBackend = VectorBackend.AUTO
    vector_dimension: int = 384
    vector_cache_size_kb: int = 65536
    """SQLite page cache for the store, in KiB (``PRAGMA cache_size``)."""
    hnsw_m: int = 32
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 64
    hnsw_min_entries: int = 200_000
    """AUTO switches from the exact flat index to HNSW above this many vectors (see benchmarks/)."""
    hnsw_max_entries: int | None = None
    """Optional cap on stored vectors; adding beyond it raises a ConfigurationError."""

    text_backend: TextBackend = TextBackend.FTS5

    embedder_backend: EmbedderBackend = EmbedderBackend.ONNX
    """ONNX (int8 all-MiniLM-L6-v2 on onnxruntime, no torch) is the default; LOCAL is the
    sentence-transformers route (``headroom-core[local]``). Both write comparable vectors."""
    embedder_model: str = "sentence-transformers/all-MiniLM-L6-v2"
    embedder_threads: int | None = 1
    """torch / onnxruntime intra-op threads. 1 is the measured sane default on small machines."""
    embedder_batch_size: int = 32
    embedder_entry_point: str | None = None
    """Name of the ``headroom.memory_vector`` entry point for EmbedderBackend.EXTERNAL."""
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    ollama_base_url: str = "http://localhost:11434"
    http_timeout: float = 30.0

    cache_enabled: bool = True
    cache_max_size: int = 1000
    read_threads: int = 2
    """Threads serving reads (search, get, query, count, history, stats) next to the one writer
    thread, so a small search never queues behind another caller's big request or a write."""
    text_postings_max: int = 20_000_000
    """SQLite: postings (~12 bytes each) of the per-user in-memory bm25 index, over all the
    users it holds; the least recently searched users are dropped beyond it."""

    auto_bubble: bool = False
    bubble_threshold: float = 0.75

    # Ranking (see HierarchicalMemory.search for how they combine).
    search_mode: str = "hybrid"
    """Default search mode: "hybrid" (dense + bm25 fused), "semantic" or "text"."""
    hybrid_text_weight: float = 1.0
    hybrid_vector_weight: float = 0.5
    hybrid_candidates: int = 100
    rrf_k: int = 5
    """Reciprocal-rank fusion constant. Small k lets the top of each list dominate; on the LoCoMo
    dev split (MiniLM) R@10 is 0.62 at k=60 and 0.67 at k=10 (benchmarks/locomo_retrieval.py);
    k=5 was picked by leave-one-conversation-out together with entity_boost (README)."""
    entity_boost: float = 1.0
    """Hybrid search: score x (1 + entity_boost) for memories whose entity refs the query names."""
    date_boost: float = 0.5
    """Hybrid search: score x (1 + date_boost) when the query names the month/year of valid_from."""
    importance_weight: float = 0.0
    recency_half_life_days: float | None = None

    busy_timeout_ms: int = 10_000
    read_only: bool = False
    """Open without writing anything (also on a read-only filesystem); writes raise ReadOnlyError."""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from .errors import ValidationError
        from .validation import check_config_fields

        try:  # types and ranges, each message naming the field
            check_config_fields(self)
        except ValidationError as exc:
            raise ConfigurationError(str(exc)) from None
        url = postgres_url(self.db_path)
        try:
            self.store_backend = StoreBackend(self.store_backend)
            self.vector_backend = VectorBackend(self.vector_backend)
            self.text_backend = TextBackend(self.text_backend)
            self.embedder_backend = EmbedderBackend(self.embedder_backend)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
        if url is not None:
            self.db_path, self.database_url = url, url
            self.store_backend = StoreBackend.POSTGRES
        else:
            self.db_path = Path(self.db_path)
            if self.database_url is not None:
                if postgres_url(self.database_url) is None:
                    raise ConfigurationError(
                        "database_url must start with postgresql:// or postgresql+psycopg://"
                    )
                self.store_backend = StoreBackend.POSTGRES
        if self.store_backend is StoreBackend.POSTGRES and self.database_url is None:
            raise ConfigurationError(
                "StoreBackend.POSTGRES needs database_url='postgresql://user:password@host/db'"
            )
        if self.vector_dimension <= 0:
            raise ConfigurationError("vector_dimension must be positive")
        if not 0.0 <= self.bubble_threshold <= 1.0:
            raise ConfigurationError("bubble_threshold must be within 0..1")
        if self.cache_max_size < 0:
            raise ConfigurationError("cache_max_size must be >= 0")
        if self.search_mode not in ("hybrid", "semantic", "text"):
            raise ConfigurationError("search_mode must be 'hybrid', 'semantic' or 'text'")
        if self.embedder_threads is not None and self.embedder_threads < 1:
            raise ConfigurationError("embedder_threads must be >= 1 or None")

    def with_overrides(self, **overrides: Any) -> MemoryConfig:
        """A copy with the given fields replaced (None values are ignored)."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigurationError(f"unknown MemoryConfig fields: {sorted(unknown)}")
        clean = {k: v for k, v in overrides.items() if v is not None}
        if "db_path" in clean and postgres_url(clean["db_path"]) is None:
            # a file path selects SQLite even when this config was PostgreSQL
            clean.setdefault("store_backend", StoreBackend.SQLITE)
            if "database_url" not in clean:
                clean["database_url"] = None
        return replace(self, **clean)
