"""Headroom's memory engine: hierarchical scopes, temporal versions, hybrid search."""

from __future__ import annotations

from .config import EmbedderBackend, MemoryConfig, StoreBackend, TextBackend, VectorBackend
from .core import HierarchicalMemory, SyncHierarchicalMemory
from .easy import Memory
from .errors import (
    AccessDeniedError,
    ClosedError,
    ConfigurationError,
    DimensionMismatchError,
    EmbeddingError,
    HeadroomError,
    MemoryNotFoundError,
    MissingDependencyError,
    ReadOnlyError,
    StorageError,
    SupersededError,
    ValidationError,
)
from .models import Memory as MemoryRecord
from .models import MemoryCategory, ScopeLevel, SearchResult
from .opening import config_for, resolve_memory
from .ports import MemoryFilter, VectorFilter

__all__ = [
    "AccessDeniedError",
    "ClosedError",
    "ConfigurationError",
    "DimensionMismatchError",
    "EmbedderBackend",
    "EmbeddingError",
    "HeadroomError",
    "HierarchicalMemory",
    "Memory",
    "MemoryCategory",
    "MemoryConfig",
    "MemoryFilter",
    "MemoryNotFoundError",
    "MemoryRecord",
    "MissingDependencyError",
    "ReadOnlyError",
    "ScopeLevel",
    "SearchResult",
    "StorageError",
    "StoreBackend",
    "SupersededError",
    "SyncHierarchicalMemory",
    "TextBackend",
    "ValidationError",
    "VectorBackend",
    "VectorFilter",
    "config_for",
    "resolve_memory",
]
