"""``memory.sync``: the blocking twin of :class:`~headroom.memory.core.HierarchicalMemory`.

Every call runs on the memory's one worker thread (the same engine), so it also works inside a
running event loop (a notebook, an async web app).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .errors import HeadroomError, ValidationError
from .models import Memory, MemoryCategory, SearchResult
from .ports import MemoryFilter, search_filter
from .validation import (
    ADD_KWARGS,
    SEARCH_FILTER_KWARGS,
    SUPERSEDE_KWARGS,
    UPDATE_KWARGS,
    check_filter,
    check_kwargs,
    check_optional_id,
    check_search_args,
)

if TYPE_CHECKING:
    from .core import HierarchicalMemory
    from .engine import MemoryEngine

__all__ = ["SyncHierarchicalMemory"]


class SyncHierarchicalMemory:
    """Blocking twin of :class:`HierarchicalMemory` (``memory.sync``): same engine, same worker."""

    def __init__(self, memory: HierarchicalMemory) -> None:
        self._memory = memory

    @property
    def _engine(self) -> MemoryEngine:
        return self._memory._engine

    def add(self, content: str, user_id: str, session_id: str | None = None, agent_id: str | None = None,
            turn_id: str | None = None, **kwargs: Any) -> Memory:  # fmt: skip
        check_kwargs(kwargs, ADD_KWARGS, "add")
        item = dict(
            content=content,
            user_id=user_id,
            session_id=session_id,
            agent_id=agent_id,
            turn_id=turn_id,
            **kwargs,
        )
        item.setdefault("category", MemoryCategory.FACT)
        return self._memory._call_sync(self._engine.add_batch, [item])[0]

    def add_batch(self, items: Sequence[Mapping[str, Any]]) -> list[Memory]:
        return self._memory._call_sync(self._engine.add_batch, items)

    def import_memories(self, memories: Sequence[Memory]) -> int:
        return self._memory._call_sync(self._engine.import_memories, memories)

    def get(self, memory_id: str, *, user_id: str | None = None) -> Memory | None:
        return self._memory._call_sync(
            self._engine.get, memory_id, check_optional_id(user_id, "user_id")
        )

    def update(self, memory_id: str, **kwargs: Any) -> Memory:
        check_kwargs(kwargs, UPDATE_KWARGS, "update")
        return self._memory._call_sync(self._engine.update, memory_id, **kwargs)

    def delete(
        self, memory_id: str, *, user_id: str | None = None, include_history: bool = False
    ) -> bool:
        return self._memory._call_sync(
            self._engine.delete, memory_id, user_id=user_id, include_history=include_history
        )

    def supersede(self, old_memory_id: str, new_content: str, **kwargs: Any) -> Memory:
        check_kwargs(kwargs, SUPERSEDE_KWARGS, "supersede")
        return self._memory._call_sync(self._engine.supersede, old_memory_id, new_content, **kwargs)

    def get_history(self, memory_id: str, *, user_id: str | None = None) -> list[Memory]:
        return self._memory._call_sync(
            self._engine.history, memory_id, check_optional_id(user_id, "user_id")
        )

    def query(self, filter: MemoryFilter | None = None) -> list[Memory]:
        return self._memory._call_sync(self._engine.query, check_filter(filter))

    def count(self, filter: MemoryFilter | None = None) -> int:
        return self._memory._call_sync(self._engine.count, check_filter(filter))

    def search(self, query: str, user_id: str, session_id: str | None = None, agent_id: str | None = None,
               turn_id: str | None = None, *, top_k: int = 10, min_similarity: float = 0.0,
               mode: str | None = None, **filters: Any) -> list[SearchResult]:  # fmt: skip
        if "user_id" in filters:
            raise ValidationError("user_id given twice")
        check_kwargs(filters, SEARCH_FILTER_KWARGS, "search")
        mode = mode or self._memory.config.search_mode
        check_search_args(query, top_k, min_similarity, mode)
        f = search_filter(user_id, session_id, agent_id, turn_id, **filters)
        if not self._memory.closed:  # a cache hit is answered here, without a thread hop
            try:
                hit = self._engine.cached_search(
                    query, f, top_k=top_k, min_similarity=min_similarity, mode=mode
                )
            except HeadroomError:  # e.g. closed meanwhile: the call below says so
                hit = None
            if hit is not None:
                return hit
        return self._memory._call_sync(
            self._engine.search, query, f, top_k=top_k, min_similarity=min_similarity, mode=mode
        )

    def text_search(
        self, query: str, user_id: str, *args: Any, **kwargs: Any
    ) -> list[SearchResult]:
        return self.search(query, user_id, *args, mode="text", **kwargs)

    def clear_scope(self, user_id: str, session_id: str | None = None, agent_id: str | None = None,
                    turn_id: str | None = None) -> int:  # fmt: skip
        return self._memory._call_sync(
            self._engine.clear_scope, user_id, session_id, agent_id, turn_id
        )

    def stats(self, user_id: str | None = None) -> dict[str, Any]:
        return self._memory._call_sync(self._engine.stats, user_id)

    def rebuild_index(self) -> int:
        return self._memory._call_sync(self._engine.rebuild_index)

    def close(self) -> None:
        self._memory._close_now()
