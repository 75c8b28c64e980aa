"""Opening, sharing and closing the memories behind the LiteLLM integration.

* :func:`resolve_memory` opens a :class:`HierarchicalMemory` (or reuses the one given).
* :class:`InlinePool` keeps one :class:`InlineMemory` per identity, bounded (least recently used
  entries are dropped), so that an identity without a session id keeps its private session for
  as long as its entry lives.
* :class:`MemoryRegistry` caches the memories opened from a ``db_path`` / ``config`` (one per
  database file, bounded) and the pools of caller-owned memories, for the module-level
  :func:`headroom_litellm.completion` functions; :meth:`MemoryRegistry.close_all` closes them.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headroom.inline.memory import InlineMemory
from headroom.memory import HierarchicalMemory, MemoryConfig, config_for
from headroom.memory import resolve_memory as core_resolve_memory

__all__ = ["Identity", "IdentityDefaults", "InlinePool", "MemoryRegistry", "resolve_memory"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_IDENTITIES = 1024
DEFAULT_MAX_DATABASES = 16


@dataclass(frozen=True)
class Identity:
    """Who a request belongs to: memories are searched and stored under this scope."""

    user_id: str
    session_id: str | None = None
    agent_id: str | None = None


@dataclass(frozen=True)
class IdentityDefaults:
    """Fallback ids, used field by field when a request does not name them."""

    user_id: str | None = None
    session_id: str | None = None
    agent_id: str | None = None


def resolve_memory(
    memory: HierarchicalMemory | None = None,
    db_path: str | Path | None = None,
    config: MemoryConfig | None = None,
    embedder: Any = None,
) -> tuple[HierarchicalMemory, bool]:
    """Return ``(memory, owned)``: the given memory (not owned) or a newly opened one (owned).

    Unlike the core rule, ``db_path=``/``config=`` next to ``memory=`` only log a warning: a
    failure in the memory layer must never fail the user's LLM call.
    """
    if memory is not None and (db_path is not None or config is not None):
        logger.warning("headroom: memory= given; ignoring db_path= and config=")
        db_path = config = None
    return core_resolve_memory(memory, db_path, config, embedder)


class InlinePool:
    """One :class:`InlineMemory` per :class:`Identity` over one memory, least recently used first out."""

    def __init__(
        self,
        memory: HierarchicalMemory,
        *,
        top_k: int = 5,
        max_identities: int = DEFAULT_MAX_IDENTITIES,
        **inline_options: Any,
    ) -> None:
        self.memory = memory
        self.top_k = top_k
        self.max_identities = max(1, max_identities)
        self._options = inline_options
        self._entries: OrderedDict[tuple[Identity, int], InlineMemory] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, identity: Identity, *, top_k: int | None = None) -> InlineMemory:
        """The InlineMemory of ``identity`` (created on first use; raises ValidationError on bad ids)."""
        k = self.top_k if top_k is None else top_k
        key = (identity, k)
        with self._lock:
            inline = self._entries.get(key)
            if inline is not None:
                self._entries.move_to_end(key)
                return inline
        inline = InlineMemory(
            self.memory,
            user_id=identity.user_id,
            session_id=identity.session_id,
            agent_id=identity.agent_id,
            top_k=k,
            **self._options,
        )
        with self._lock:
            inline = self._entries.setdefault(key, inline)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_identities:
                self._entries.popitem(last=False)
        return inline

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class MemoryRegistry:
    """Memories opened from a database path (one per file, bounded) and per-memory identity pools.

    Used by the module-level wrappers so that a database is opened once, not on every call.
    When more than ``max_databases`` are open, the least recently used one is closed.
    """

    def __init__(self, *, max_databases: int = DEFAULT_MAX_DATABASES) -> None:
        self.max_databases = max(1, max_databases)
        self._opened: OrderedDict[str, HierarchicalMemory] = OrderedDict()
        self._pools: weakref.WeakKeyDictionary[HierarchicalMemory, InlinePool] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def memory(
        self,
        memory: HierarchicalMemory | None = None,
        db_path: str | Path | None = None,
        config: MemoryConfig | None = None,
    ) -> HierarchicalMemory:
        """The given memory, or the cached one for that database (opened on first use)."""
        if memory is not None:
            return memory
        cfg = config_for(db_path, config)
        key = str(Path(cfg.db_path).expanduser().resolve())
        with self._lock:
            cached = self._opened.get(key)
            if cached is not None and not cached.closed:
                self._opened.move_to_end(key)
                return cached
            opened = HierarchicalMemory.create_sync(cfg)
            self._opened[key] = opened
            evicted = []
            while len(self._opened) > self.max_databases:
                evicted.append(self._opened.popitem(last=False)[1])
        for old in evicted:
            self._close(old)
        return opened

    def pool(self, memory: HierarchicalMemory) -> InlinePool:
        with self._lock:
            pool = self._pools.get(memory)
            if pool is None:
                pool = self._pools[memory] = InlinePool(memory)
            return pool

    def open_databases(self) -> list[str]:
        """The database files currently open in this registry."""
        with self._lock:
            return list(self._opened)

    def close_all(self) -> None:
        """Close every memory this registry opened and forget all identity pools."""
        with self._lock:
            opened = list(self._opened.values())
            self._opened.clear()
            pools = list(self._pools.values())
            self._pools = weakref.WeakKeyDictionary()
        for pool in pools:
            pool.clear()
        for memory in opened:
            self._close(memory)

    @staticmethod
    def _close(memory: HierarchicalMemory) -> None:
        try:
            memory.sync.close()
        except Exception:
            logger.exception("headroom: closing %r failed", memory)
