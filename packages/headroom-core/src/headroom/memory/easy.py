"""Memory: the small async API (save / search / delete / clear / get_all).

``Memory()`` needs no setup: it opens the embedded default (SQLite file + FAISS + local embedder)
lazily on first use. Saved facts live at USER scope, with the session and agent they came from
kept as provenance, so a fact saved by one agent is found by another agent of the same user.
Saving a near-duplicate of a current memory (cosine >= ``dedup_threshold``) does not store it
twice: the existing memory is returned, and the new agent is added to its ``metadata["agents"]``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from .config import MemoryConfig
from .core import HierarchicalMemory
from .errors import ValidationError
from .models import Memory as MemoryRecord
from .models import MemoryCategory, ScopeLevel, SearchResult
from .ports import Embedder, MemoryFilter
from .validation import check_content, check_id, check_metadata, check_number

__all__ = ["Memory"]


class Memory:
    """Standalone async memory: ``await Memory().save("...", user_id="alice")``."""

    def __init__(
        self,
        config: MemoryConfig | None = None,
        *,
        db_path: str | Path | None = None,
        memory: HierarchicalMemory | None = None,
        embedder: Embedder | None = None,
        dedup_threshold: float = 0.95,
    ) -> None:
        if config is not None and not isinstance(config, MemoryConfig):
            raise ValidationError(f"config must be a MemoryConfig, got {type(config).__name__}")
        if memory is not None and not isinstance(memory, HierarchicalMemory):
            raise ValidationError(
                f"memory must be a HierarchicalMemory, got {type(memory).__name__}"
            )
        base = config or MemoryConfig()
        self._config = base.with_overrides(db_path=db_path) if db_path is not None else base
        self._embedder = embedder
        self._memory = memory
        self._owns_memory = memory is None
        self._lock: asyncio.Lock | None = None
        self.dedup_threshold = check_number(dedup_threshold, "dedup_threshold")

    async def _hm(self) -> HierarchicalMemory:
        if self._memory is None:
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                if self._memory is None:
                    self._memory = await HierarchicalMemory.create(
                        self._config, embedder=self._embedder
                    )
        return self._memory

    @property
    def hierarchical(self) -> HierarchicalMemory | None:
        """The underlying engine once opened (None before first use)."""
        return self._memory

    async def save(
        self,
        content: str,
        *,
        user_id: str,
        session_id: str | None = None,
        agent_id: str | None = None,
        category: MemoryCategory | str | None = None,
        importance: float = 0.5,
        metadata: Mapping[str, Any] | None = None,
        entity_refs: Sequence[str] | None = None,
    ) -> MemoryRecord:
        """Save a fact about ``user_id`` (USER scope; session/agent kept as provenance)."""
        check_content(content)
        check_id(user_id, "user_id")
        meta = check_metadata(metadata)
        hm = await self._hm()
        if agent_id is not None:
            meta.setdefault("agents", [agent_id])
        existing = await self._duplicate_of(hm, content, user_id)
        if existing is not None:
            agents = list(existing.metadata.get("agents", []))
            if agent_id is not None and agent_id not in agents:
                agents.append(agent_id)
                return await hm.update(
                    existing.id, user_id=user_id, metadata={**existing.metadata, "agents": agents}
                )
            return existing
        return await hm.add(
            content, user_id, session_id, agent_id, category=category or MemoryCategory.FACT,
            importance=importance, metadata=meta, entity_refs=entity_refs, scope=ScopeLevel.USER,
        )  # fmt: skip

    async def _duplicate_of(
        self, hm: HierarchicalMemory, content: str, user_id: str
    ) -> MemoryRecord | None:
        if not isinstance(content, str) or not content.strip() or self.dedup_threshold > 1.0:
            return None
        hits = await hm.search(content, user_id, top_k=1, mode="semantic")
        if hits and hits[0].similarity >= self.dedup_threshold:
            return hits[0].memory
        return None

    async def search(
        self,
        query: str,
        *,
        user_id: str,
        session_id: str | None = None,
        agent_id: str | None = None,
        top_k: int = 5,
        **filters: Any,
    ) -> list[SearchResult]:
        """Hybrid search; results have ``.content``, ``.score``, ``.similarity`` and ``.memory``."""
        hm = await self._hm()
        return await hm.search(query, user_id, session_id, agent_id, top_k=top_k, **filters)

    async def get_all(
        self, *, user_id: str, include_superseded: bool = False
    ) -> list[MemoryRecord]:
        f = MemoryFilter(
            user_id=check_id(user_id, "user_id"), include_superseded=include_superseded
        )
        hm = await self._hm()
        return await hm.query(f)

    async def delete(self, memory_id: str, *, user_id: str | None = None) -> bool:
        hm = await self._hm()
        return await hm.delete(memory_id, user_id=user_id)

    async def clear(self, *, user_id: str) -> int:
        """Delete every memory of ``user_id``; returns how many."""
        hm = await self._hm()
        return await hm.clear_scope(user_id)

    async def close(self) -> None:
        if self._memory is not None and self._owns_memory:
            await self._memory.close()
        self._memory = None if self._owns_memory else self._memory

    async def __aenter__(self) -> Memory:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
