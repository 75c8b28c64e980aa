"""Ports: the small typed protocols the orchestrator depends on, and the filter types.

Adapters live in :mod:`headroom.memory.adapters`; only :mod:`headroom.memory.factory` picks them.
Contracts every adapter keeps:

* ids handed to indexes are the store's integer primary keys (``pk``); indexes hold ids only,
  never content, so the store stays the single source of truth and indexes can be rebuilt;
* scores are "higher is better" (cosine similarity for vectors, negated bm25 for text);
* methods are synchronous and may block; :class:`~headroom.memory.HierarchicalMemory` calls them
  from one worker thread, so adapters need not be thread-safe beyond that.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from .models import Memory, MemoryCategory, ScopeLevel

__all__ = [
    "Embedder",
    "FloatArray",
    "MemoryCache",
    "MemoryFilter",
    "MemoryStore",
    "StoreChanges",
    "TextIndex",
    "VectorFilter",
    "VectorIndex",
    "VisibleSetTextIndex",
]

FloatArray = npt.NDArray[np.float32]


@dataclass
class MemoryFilter:
    """Which memories a query, count, search or text search considers.

    Scope semantics (the same as search): ``user_id`` alone selects all of that user's memories.
    With ``session_id`` / ``agent_id`` / ``turn_id`` the filter describes a *request context* and
    selects what that context can see: the user's USER-level memories, SESSION-level memories of the
    session, AGENT-level memories of the agent in that session, TURN-level memories of the turn.
    With ``exact_scope=True`` the ids are instead matched exactly against the stored columns
    (provenance), e.g. "every memory that came from session s1" whatever its level.
    """

    user_id: str | None = None
    session_id: str | None = None
    agent_id: str | None = None
    turn_id: str | None = None
    exact_scope: bool = False
    scope_levels: Sequence[ScopeLevel] | None = None
    categories: Sequence[MemoryCategory] | None = None
    min_importance: float | None = None
    max_importance: float | None = None
    include_superseded: bool = False
    valid_at: datetime | None = None
    """Only versions that were current at this instant (use with include_superseded=True)."""
    created_after: datetime | None = None
    created_before: datetime | None = None
    metadata: dict[str, Any] | None = None
    """Exact matches on top-level metadata keys (JSON scalars)."""
    entity_refs: Sequence[str] | None = None
    """Memories referring to any of these entities."""
    ids: Sequence[str] | None = None
    limit: int | None = None
    offset: int = 0
    order_by: str = "created_at"
    """"created_at" (oldest first), "-created_at", "importance" or "-importance"."""

    def __post_init__(self) -> None:
        from .validation import check_filter_fields

        check_filter_fields(self)


@dataclass
class VectorFilter:
    """Restricts a vector search to a set of store primary keys (exact, filter before ranking).

    ``user_id``, when given, is the owner of every allowed id: an index that lives in a sharded
    database may use it to route the search to one shard (others ignore it)."""

    allowed_ids: npt.NDArray[np.int64] | None = None
    user_id: str | None = None


@dataclass
class StoreChanges:
    """What changed in the store after a sequence number (for keeping derived indexes in step)."""

    upserted_ids: list[int] = field(default_factory=list)
    upserted_vectors: FloatArray | None = None
    removed_ids: list[int] = field(default_factory=list)
    seq: int = 0


@runtime_checkable
class Embedder(Protocol):
    """Turns text into L2-normalised float32 vectors of a fixed dimension.

    ``embed`` returns shape ``(len(texts), dimension)``; it is blocking and deterministic for a given
    model. Errors are raised as :class:`~headroom.memory.errors.EmbeddingError`.
    """

    @property
    def dimension(self) -> int: ...

    @property
    def model_name(self) -> str: ...

    def embed(self, texts: Sequence[str]) -> FloatArray: ...

    def close(self) -> None: ...


@runtime_checkable
class VectorIndex(Protocol):
    """A derived, rebuildable vector index of store primary keys.

    ``upsert`` replaces vectors of ids already present (no duplicates); ``remove`` is idempotent;
    ``search`` returns ``(id, cosine similarity)`` best first, and when ``filter.allowed_ids`` is
    given it ranks only those ids (exactly: a user's best match is never lost to other users).
    ``load`` returns the store sequence number the persisted index was saved at, or None when the
    file is missing, corrupt or of another dimension (the caller then rebuilds).
    """

    @property
    def dimension(self) -> int: ...

    def upsert(self, ids: Sequence[int], vectors: FloatArray) -> None: ...

    def remove(self, ids: Sequence[int]) -> None: ...

    def search(
        self, query: FloatArray, k: int, filter: VectorFilter | None = None
    ) -> list[tuple[int, float]]: ...

    def clear(self) -> None: ...

    def __len__(self) -> int: ...

    def save(self, seq: int) -> None: ...

    def load(self) -> int | None: ...


@runtime_checkable
class TextIndex(Protocol):
    """A derived full-text index over memory content.

    ``search`` accepts any user string (quotes, operators, emoji, empty) and returns
    ``(id, score)`` best first among the memories the filter selects.
    """

    def search(self, query: str, k: int, filter: MemoryFilter) -> list[tuple[int, float]]: ...

    def rebuild(self) -> None: ...


@runtime_checkable
class VisibleSetTextIndex(TextIndex, Protocol):
    """A text index that can rank within the rows the engine already knows are visible.

    ``allowed`` holds the sorted primary keys ``filter`` selects (one user's); the result is what
    ``search(query, k, filter)`` would return, computed without re-applying the filter."""

    def search_visible(
        self, query: str, k: int, filter: MemoryFilter, allowed: npt.NDArray[np.int64]
    ) -> list[tuple[int, float]]: ...


@runtime_checkable
class MemoryStore(Protocol):
    """The single source of truth: memories, their embeddings and a change sequence.

    Every write bumps the store's sequence number in the same transaction, so derived indexes
    and caches (also in other processes) can tell whether they are stale.

    A store whose ``routes_by_user`` attribute is true (PostgreSQL) also accepts the owner as an
    optional keyword, ``user_id=``, in ``get``, ``get_by_pks``, ``get_vectors`` and ``delete``,
    and then only touches that user's rows (so a user-sharded database reads one shard).
    """

    def open(self, *, embedder_model: str, dimension: int) -> None: ...

    def insert(self, memories: Sequence[Memory], vectors: FloatArray | None) -> list[int]: ...

    def get(self, memory_id: str) -> Memory | None: ...

    def get_by_pks(self, pks: Sequence[int]) -> dict[int, Memory]: ...

    def update(self, memory: Memory, vector: FloatArray | None) -> None: ...

    def supersede(self, old: Memory, new: Memory, vector: FloatArray | None) -> None: ...

    def delete(self, memory_ids: Sequence[str]) -> int: ...

    def query(self, filter: MemoryFilter) -> list[Memory]: ...

    def count(self, filter: MemoryFilter) -> int: ...

    def matching_pks(self, filter: MemoryFilter) -> npt.NDArray[np.int64]: ...

    def changes_since(self, seq: int) -> StoreChanges: ...

    def iter_vectors(self, batch_size: int = 10_000) -> Iterator[tuple[list[int], FloatArray]]: ...

    def vector_count(self) -> int: ...

    def current_seq(self) -> int: ...

    def stats(self, user_id: str | None = None) -> dict[str, Any]: ...

    def close(self) -> None: ...


@runtime_checkable
class MemoryCache(Protocol):
    """A bounded cache of memories (and search results) that hands out copies."""

    def get(self, key: str) -> Any | None: ...

    def put(self, key: str, value: Any) -> None: ...

    def invalidate(self, key: str | None = None) -> None: ...

    def __len__(self) -> int: ...


def _categories(values: Sequence[MemoryCategory | str] | None) -> list[MemoryCategory] | None:
    if values is None:
        return None
    if isinstance(values, str) or not isinstance(values, Sequence):
        from .errors import ValidationError

        raise ValidationError(f"categories must be a list of categories, got {values!r}")
    return [MemoryCategory.parse(v) for v in values]


def search_filter(
    user_id: str,
    session_id: str | None = None,
    agent_id: str | None = None,
    turn_id: str | None = None,
    *,
    categories: Sequence[MemoryCategory | str] | None = None,
    min_importance: float | None = None,
    include_superseded: bool = False,
    valid_at: datetime | None = None,
    metadata: Mapping[str, Any] | None = None,
    entity_refs: Sequence[str] | None = None,
) -> MemoryFilter:
    """The filter of a search request made at (user, session, agent, turn)."""
    return MemoryFilter(
        user_id=user_id,
        session_id=session_id,
        agent_id=agent_id,
        turn_id=turn_id,
        categories=_categories(categories),
        min_importance=min_importance,
        include_superseded=include_superseded,
        valid_at=valid_at,
        metadata=metadata,  # type: ignore[arg-type]  # checked and copied by __post_init__
        entity_refs=entity_refs,
    )
