"""The construction convention of this package (opening or reusing a HierarchicalMemory)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from headroom.memory import HierarchicalMemory, MemoryConfig, config_for, resolve_memory
from headroom.memory.errors import ConfigurationError

__all__ = ["OwnedMemory", "close_quietly", "resolve_db_path", "resolve_memory"]


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
    return Path(config_for(db_path, config).db_path)


def close_quietly(memory: Any) -> None:
    """Close an owned memory (sync, safe in a running loop)."""
    if memory is not None and not memory.closed:
        memory.sync.close()


class OwnedMemory:
    """``memory`` and ``close()`` of an adapter holding a HierarchicalMemory in ``_hm``: shared
    (``memory=``) or opened by the adapter (``db_path=`` / ``config=``, then ``_owned``)."""

    if TYPE_CHECKING:
        _hm: HierarchicalMemory
        _owned: bool

    @property
    def memory(self) -> HierarchicalMemory:
        """The HierarchicalMemory facts are stored in."""
        return self._hm

    def close(self) -> None:
        """Close the memory if this object opened it (``db_path=`` / ``config=``)."""
        if self._owned:
            close_quietly(self._hm)
