"""The construction convention of this package (opening or reusing a HierarchicalMemory)."""

from __future__ import annotations

from pathlib import Path

from headroom.memory import HierarchicalMemory, MemoryConfig, config_for, resolve_memory
from headroom.memory.errors import MissingDependencyError

__all__ = ["missing", "resolve_db_path", "resolve_memory"]


def resolve_db_path(
    memory: HierarchicalMemory | None = None,
    *,
    db_path: str | Path | None = None,
    config: MemoryConfig | None = None,
) -> Path:
    """The SQLite file of ``memory``, ``db_path`` or ``config`` (without opening a memory)."""
    if memory is not None:
        return Path(memory.config.db_path)
    return Path(config_for(db_path, config).db_path)


def missing(package: str, extra: str) -> MissingDependencyError:
    """The error for a missing optional dependency of headroom-langchain."""
    return MissingDependencyError(package, extra, distribution="headroom-langchain")
