"""Opening or reusing a HierarchicalMemory, the one construction convention of this package."""

from __future__ import annotations

import logging
from pathlib import Path

from headroom.memory import HierarchicalMemory, MemoryConfig
from headroom.memory.errors import ConfigurationError, MissingDependencyError
from headroom.memory.ports import Embedder

__all__ = ["missing", "resolve_db_path", "resolve_memory"]

logger = logging.getLogger(__name__)


def resolve_memory(
    memory: HierarchicalMemory | None = None,
    *,
    db_path: str | Path | None = None,
    config: MemoryConfig | None = None,
    embedder: Embedder | None = None,
) -> tuple[HierarchicalMemory, bool]:
    """Return ``(memory, owned)``: ``memory`` itself, or one opened from ``config`` / ``db_path``.

    ``owned`` is True when this call opened the memory (the caller must close it).
    """
    if memory is not None:
        if db_path is not None or config is not None:
            raise ConfigurationError("pass either memory= or db_path=/config=, not both")
        return memory, False
    cfg = config or MemoryConfig()
    if db_path is not None:
        cfg = cfg.with_overrides(db_path=Path(db_path))
    logger.debug("opening headroom memory at %s", cfg.db_path)
    return HierarchicalMemory.create_sync(cfg, embedder=embedder), True


def resolve_db_path(
    memory: HierarchicalMemory | None = None,
    *,
    db_path: str | Path | None = None,
    config: MemoryConfig | None = None,
) -> Path:
    """The SQLite file of ``memory``, ``db_path`` or ``config`` (without opening a memory)."""
    if memory is not None:
        return Path(memory.config.db_path)
    if db_path is not None:
        return Path(db_path)
    return Path((config or MemoryConfig()).db_path)


def missing(package: str, extra: str) -> MissingDependencyError:
    """The error for a missing optional dependency of headroom-langchain."""
    return MissingDependencyError(package, extra, distribution="headroom-langchain")
