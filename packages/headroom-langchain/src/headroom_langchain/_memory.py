"""The construction convention of this package (opening or reusing a HierarchicalMemory)."""

from __future__ import annotations

from pathlib import Path

from headroom.memory import HierarchicalMemory, MemoryConfig, config_for, resolve_memory
from headroom.memory.config import StoreBackend
from headroom.memory.errors import MissingDependencyError

__all__ = ["missing", "resolve_db_path", "resolve_memory", "store_location"]


def resolve_db_path(
    memory: HierarchicalMemory | None = None,
    *,
    db_path: str | Path | None = None,
    config: MemoryConfig | None = None,
) -> Path | str:
    """The SQLite file (a Path) or PostgreSQL URL (a str) of ``memory``, ``db_path`` or ``config``
    (without opening a memory)."""
    return store_location(memory.config if memory is not None else config_for(db_path, config))


def store_location(config: MemoryConfig) -> Path | str:
    """``config.database_url`` on PostgreSQL, else the SQLite file."""
    if config.store_backend is StoreBackend.POSTGRES and config.database_url:
        return config.database_url
    return Path(config.db_path)


def missing(package: str, extra: str) -> MissingDependencyError:
    """The error for a missing optional dependency of headroom-langchain."""
    return MissingDependencyError(package, extra, distribution="headroom-langchain")
