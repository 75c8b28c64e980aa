"""Opening or reusing the HierarchicalMemory behind an adapter (the shared construction rule)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from headroom.memory.config import MemoryConfig
from headroom.memory.core import HierarchicalMemory
from headroom.memory.errors import ConfigurationError
from headroom.memory.ports import Embedder

__all__ = ["resolve_db_path", "resolve_memory"]


def _config(db_path: str | Path | None, config: MemoryConfig | None) -> MemoryConfig:
    if config is None:
        return MemoryConfig() if db_path is None else MemoryConfig(db_path=db_path)
    return config.with_overrides(db_path=db_path) if db_path is not None else config


def resolve_memory(
    memory: HierarchicalMemory | None = None,
    db_path: str | Path | None = None,
    config: MemoryConfig | None = None,
    embedder: Embedder | None = None,
) -> tuple[HierarchicalMemory, bool]:
    """Return ``(memory, owned)``: ``memory`` itself, or a new one opened from ``db_path``/``config``.

    ``owned`` is True when the caller opened it and must close it.
    """
    if memory is not None:
        if db_path is not None or config is not None:
            raise ConfigurationError("pass either memory= or db_path=/config=, not both")
        return memory, False
    return HierarchicalMemory.create_sync(_config(db_path, config), embedder=embedder), True


def resolve_db_path(
    memory: HierarchicalMemory | None = None,
    db_path: str | Path | None = None,
    config: MemoryConfig | None = None,
) -> Path:
    """The SQLite file of ``memory`` (or of ``db_path``/``config``) without opening a memory."""
    if memory is not None:
        if db_path is not None or config is not None:
            raise ConfigurationError("pass either memory= or db_path=/config=, not both")
        return Path(memory.config.db_path)
    return Path(_config(db_path, config).db_path)


def close_quietly(memory: Any) -> None:
    """Close an owned memory (sync, safe in a running loop)."""
    if memory is not None and not memory.closed:
        memory.sync.close()
