"""Opening or reusing a HierarchicalMemory: the construction rule every adapter shares.

Adapters accept either ``memory=`` (an open :class:`HierarchicalMemory`, which the caller keeps
owning) or ``db_path=`` / ``config=`` to open one (which the adapter then owns and closes).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from .config import MemoryConfig, StoreBackend, postgres_url
from .core import HierarchicalMemory
from .errors import ConfigurationError
from .ports import Embedder

__all__ = ["config_for", "resolve_memory"]

logger = logging.getLogger(__name__)


def config_for(
    db_path: str | Path | None = None, config: MemoryConfig | None = None
) -> MemoryConfig:
    """``config`` (or the default config) with ``db_path`` applied when it is given."""
    base = config or MemoryConfig()
    if db_path is None:
        return base
    url = postgres_url(db_path)
    if url is not None:
        return base.with_overrides(db_path=url, database_url=url)
    return replace(
        base, db_path=Path(db_path), database_url=None, store_backend=StoreBackend.SQLITE
    )


def resolve_memory(
    memory: HierarchicalMemory | None = None,
    db_path: str | Path | None = None,
    config: MemoryConfig | None = None,
    embedder: Embedder | None = None,
) -> tuple[HierarchicalMemory, bool]:
    """Return ``(memory, owned)``: ``memory`` itself, or one opened from ``db_path``/``config``.

    ``owned`` is True when this call opened the memory (the caller must close it). Passing both
    ``memory=`` and ``db_path=``/``config=`` is a ConfigurationError.
    """
    if memory is not None:
        if db_path is not None or config is not None:
            raise ConfigurationError("pass either memory= or db_path=/config=, not both")
        return memory, False
    cfg = config_for(db_path, config)
    logger.debug("opening headroom memory at %s", cfg.db_path)
    return HierarchicalMemory.create_sync(cfg, embedder=embedder), True
