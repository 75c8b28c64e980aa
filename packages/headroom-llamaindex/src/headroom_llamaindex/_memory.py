"""The construction convention of this package (opening or reusing a HierarchicalMemory)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from headroom.memory import HierarchicalMemory, MemoryConfig, config_for, resolve_memory
from headroom.memory.config import StoreBackend
from headroom.memory.errors import ConfigurationError

__all__ = ["OwnedMemory", "close_quietly", "resolve_db_path", "resolve_memory", "shown_location"]


def resolve_db_path(
    memory: HierarchicalMemory | None = None,
    db_path: str | Path | None = None,
    config: MemoryConfig | None = None,
) -> Path | str:
    """The SQLite file (a Path) or PostgreSQL URL (a str) of ``memory`` (or of
    ``db_path``/``config``) without opening a memory."""
    if memory is not None:
        if db_path is not None or config is not None:
            raise ConfigurationError("pass either memory= or db_path=/config=, not both")
        resolved = memory.config
    else:
        resolved = config_for(db_path, config)
    if resolved.store_backend is StoreBackend.POSTGRES and resolved.database_url:
        return resolved.database_url
    return Path(resolved.db_path)


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


def shown_location(location: Path | str) -> str:
    """The database as it may be shown or serialised: a file path, or the URL without password."""
    if isinstance(location, str):
        from headroom.memory.adapters.postgres.connect import redact

        return redact(location)
    return str(location)
