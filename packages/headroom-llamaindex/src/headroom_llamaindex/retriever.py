"""HeadroomRetriever: Headroom memories as LlamaIndex ``NodeWithScore``.

Each hit becomes a ``TextNode`` whose ``id_`` is the memory id and whose text is the memory's
content, with metadata ``memory_id``, ``category``, ``importance``, ``scope_level``, ``user_id``,
``session_id``, ``agent_id``, ``similarity``, ``rank_score``, ``created_at``, ``valid_from``,
``valid_until`` and ``entity_refs`` (timestamps as ISO strings). Only ``category`` and
``valid_from`` are shown to the LLM and to embedders; the rest is excluded from node content.

Score: the node's ``score`` is the cosine ``similarity`` of the memory to the query (comparable
across queries, so ``SimilarityPostprocessor(similarity_cutoff=...)`` works); the order is the
core's ranking (hybrid bm25 + dense fusion by default), whose fused value is in
``metadata["rank_score"]``. Filters are the core's: scope (user, session, agent), ``categories``,
``min_importance``, ``include_superseded``, ``valid_at``, ``metadata`` and ``entity_refs``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from llama_index.core.callbacks import CallbackManager
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from headroom.memory.config import MemoryConfig
from headroom.memory.core import HierarchicalMemory
from headroom.memory.models import MemoryCategory, SearchResult
from headroom.memory.ports import Embedder

from ._memory import OwnedMemory, resolve_memory

__all__ = ["HeadroomRetriever", "search_result_to_node"]

_LLM_VISIBLE = {"category", "valid_from"}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def search_result_to_node(result: SearchResult) -> NodeWithScore:
    """One search hit as a ``NodeWithScore`` (score = cosine similarity)."""
    memory = result.memory
    metadata: dict[str, Any] = {
        "memory_id": memory.id,
        "category": memory.category.value,
        "importance": memory.importance,
        "scope_level": memory.scope_level.value,
        "user_id": memory.user_id,
        "session_id": memory.session_id,
        "agent_id": memory.agent_id,
        "similarity": float(result.similarity),
        "rank_score": float(result.score),
        "created_at": _iso(memory.created_at),
        "valid_from": _iso(memory.valid_from),
        "valid_until": _iso(memory.valid_until),
        "entity_refs": list(memory.entity_refs),
    }
    hidden = [key for key in metadata if key not in _LLM_VISIBLE]
    node = TextNode(
        id_=memory.id,
        text=memory.content,
        metadata=metadata,
        excluded_llm_metadata_keys=hidden,
        excluded_embed_metadata_keys=hidden,
    )
    return NodeWithScore(node=node, score=float(result.similarity))


class HeadroomRetriever(OwnedMemory, BaseRetriever):
    """Retrieve the memories visible to (user, session, agent) that match a query."""

    def __init__(
        self,
        *,
        user_id: str,
        session_id: str | None = None,
        agent_id: str | None = None,
        memory: HierarchicalMemory | None = None,
        db_path: str | Path | None = None,
        config: MemoryConfig | None = None,
        embedder: Embedder | None = None,
        top_k: int = 5,
        min_similarity: float = 0.0,
        categories: Sequence[MemoryCategory | str] | None = None,
        min_importance: float | None = None,
        include_superseded: bool = False,
        valid_at: datetime | None = None,
        metadata: Mapping[str, Any] | None = None,
        entity_refs: Sequence[str] | None = None,
        mode: str | None = None,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        from headroom.memory.validation import check_id, check_optional_id

        self.user_id = check_id(user_id, "user_id")
        self.session_id = check_optional_id(session_id, "session_id")
        self.agent_id = check_optional_id(agent_id, "agent_id")
        self.top_k = top_k
        self._filters: dict[str, Any] = {
            "min_similarity": min_similarity,
            "categories": None
            if categories is None
            else [MemoryCategory.parse(c) for c in categories],
            "min_importance": min_importance,
            "include_superseded": include_superseded,
            "valid_at": valid_at,
            "metadata": dict(metadata) if metadata is not None else None,
            "entity_refs": list(entity_refs) if entity_refs is not None else None,
            "mode": mode,
        }
        super().__init__(callback_manager=callback_manager, verbose=verbose)
        self._hm, self._owned = resolve_memory(memory, db_path, config, embedder)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        if not query_bundle.query_str.strip():
            return []
        hits = self._hm.sync.search(
            query_bundle.query_str, self.user_id, self.session_id, self.agent_id,
            top_k=self.top_k, **self._filters,
        )  # fmt: skip
        return [search_result_to_node(hit) for hit in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        if not query_bundle.query_str.strip():
            return []
        hits = await self._hm.search(
            query_bundle.query_str, self.user_id, self.session_id, self.agent_id,
            top_k=self.top_k, **self._filters,
        )  # fmt: skip
        return [search_result_to_node(hit) for hit in hits]
