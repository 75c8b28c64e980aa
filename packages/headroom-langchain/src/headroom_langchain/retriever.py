"""HeadroomRetriever: Headroom memories as LangChain Documents (hybrid search)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from headroom.memory import HierarchicalMemory, MemoryCategory, MemoryConfig, SearchResult
from headroom.memory.errors import ValidationError
from headroom.memory.ports import Embedder

from ._memory import resolve_memory

__all__ = ["HeadroomRetriever", "result_to_document"]

logger = logging.getLogger(__name__)

_PER_CALL = (
    "k",
    "categories",
    "min_importance",
    "include_superseded",
    "min_similarity",
    "search_mode",
)


def result_to_document(result: SearchResult) -> Document:
    """A Document for one search hit: the memory's content and its fields as metadata."""
    m = result.memory
    return Document(
        id=m.id,
        page_content=m.content,
        metadata={
            "id": m.id,
            "category": m.category.value,
            "importance": m.importance,
            "user_id": m.user_id,
            "session_id": m.session_id,
            "agent_id": m.agent_id,
            "scope_level": m.scope_level.value,
            "similarity": float(result.similarity),
            "score": float(result.score),
            "valid_from": m.valid_from.isoformat(),
            "valid_until": m.valid_until.isoformat() if m.valid_until else None,
            "is_current": m.is_current,
            "entity_refs": list(m.entity_refs),
        },
    )


class HeadroomRetriever(BaseRetriever):
    """Retrieve the memories visible to (user, session, agent) that match a query.

    Construct with ``memory=`` (an open HierarchicalMemory) or ``db_path=`` / ``config=`` (the
    retriever then opens the memory and :meth:`close` closes it)::

        retriever = HeadroomRetriever(db_path="memory.db", user_id="alice", k=3)
        docs = retriever.invoke("favourite language", k=2, categories=["preference"])

    Per call, ``invoke(query, **overrides)`` accepts ``k``, ``categories``, ``min_importance``,
    ``include_superseded``, ``min_similarity`` and ``search_mode``.
    """

    memory: HierarchicalMemory
    user_id: str
    session_id: str | None = None
    agent_id: str | None = None
    k: int = Field(default=4, ge=1)
    categories: list[str] | None = None
    min_importance: float | None = None
    include_superseded: bool = False
    min_similarity: float = 0.0
    search_mode: str | None = None
    """"hybrid" (the config's default), "semantic" or "text"."""
    owns_memory: bool = Field(default=False, exclude=True)

    model_config = ConfigDict(arbitrary_types_allowed=True)

    def __init__(
        self,
        *,
        memory: HierarchicalMemory | None = None,
        db_path: str | Path | None = None,
        config: MemoryConfig | None = None,
        embedder: Embedder | None = None,
        **fields: Any,
    ) -> None:
        owned = False
        if memory is None:
            memory, owned = resolve_memory(db_path=db_path, config=config, embedder=embedder)
        elif db_path is not None or config is not None:
            raise ValidationError("pass either memory= or db_path=/config=, not both")
        try:
            super().__init__(memory=memory, owns_memory=owned, **fields)  # type: ignore[call-arg]
        except BaseException:
            if owned:
                memory.sync.close()
            raise

    def close(self) -> None:
        """Close the memory if this retriever opened it."""
        if self.owns_memory:
            self.memory.sync.close()

    def _search_kwargs(self, overrides: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        unknown = set(overrides) - set(_PER_CALL)
        if unknown:
            raise ValidationError(f"unknown retriever arguments: {sorted(unknown)}")
        opts = {name: overrides.get(name, getattr(self, name)) for name in _PER_CALL}
        categories: Sequence[str] | None = opts["categories"]
        kwargs: dict[str, Any] = {
            "top_k": int(opts["k"]),
            "min_similarity": opts["min_similarity"],
            "categories": [MemoryCategory.parse(c) for c in categories] if categories else None,
            "min_importance": opts["min_importance"],
            "include_superseded": opts["include_superseded"],
            "mode": opts["search_mode"],
        }
        return self.user_id, kwargs

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        user_id, search = self._search_kwargs(kwargs)
        hits = self.memory.sync.search(query, user_id, self.session_id, self.agent_id, **search)
        return [result_to_document(hit) for hit in hits]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        user_id, search = self._search_kwargs(kwargs)
        hits = await self.memory.search(query, user_id, self.session_id, self.agent_id, **search)
        return [result_to_document(hit) for hit in hits]
