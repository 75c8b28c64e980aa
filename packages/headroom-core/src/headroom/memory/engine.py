"""MemoryEngine: the synchronous implementation behind HierarchicalMemory.

It runs on one worker thread (see :mod:`headroom.memory.core`); it is not thread-safe on its own.
It keeps the derived indexes in step with the store: after every own write directly, and before
every search by replaying the store's change log (writes by other processes), see ``sync_index``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np

from .config import MemoryConfig
from .engine_reads import EngineReads
from .errors import SupersededError, ValidationError
from .models import Memory, MemoryCategory, ScopeLevel, utcnow
from .ports import (
    Embedder,
    FloatArray,
    MemoryCache,
    MemoryFilter,
    TextIndex,
    VectorIndex,
    VisibleSetTextIndex,
)
from .query_analysis import check_context
from .validation import (
    check_bool,
    check_content,
    check_entity_refs,
    check_id,
    check_import_links,
    check_importance,
    check_metadata,
    check_optional_id,
    check_record,
    check_timestamp,
    derive_scope,
)

__all__ = ["MemoryEngine"]

logger = logging.getLogger(__name__)

_ADD_KEYS = frozenset(
    {"content", "user_id", "session_id", "agent_id", "turn_id", "category", "importance",
     "entity_refs", "metadata", "valid_from", "scope", "context"}
)  # fmt: skip


class MemoryEngine(EngineReads):
    def __init__(
        self,
        config: MemoryConfig,
        store: Any,
        embedder: Embedder,
        vector_index: VectorIndex | None,
        text_index: TextIndex | None,
        cache: MemoryCache | None,
        *,
        owns_embedder: bool = True,
    ) -> None:
        self.config = config
        self.owns_embedder = owns_embedder
        self.store = store
        self.embedder = embedder
        self.vector_index = vector_index
        self.text_index = text_index
        self._visible_text = isinstance(text_index, VisibleSetTextIndex)  # decided once
        self.cache = cache
        self._index_seq = -1
        self._saved_seq = -1  # the sequence the index file on disk is consistent with
        self._cache_seq = -1
        self._reads_lock = threading.Lock()
        self._pks_cache = OrderedDict()
        self._pks_seq = -1
        self._index_lock = threading.RLock()

    # -- lifecycle -----------------------------------------------------------------------------

    def open(self) -> None:
        self.store.open(embedder_model=self.embedder.model_name, dimension=self.embedder.dimension)
        if self.vector_index is not None:
            bind = getattr(self.vector_index, "bind", None)
            database_id = getattr(self.store, "database_id", "")
            if bind is not None and database_id:
                bind(database_id)  # an index file copied from another database is rebuilt
            self._load_or_rebuild_index()

    def close(self) -> None:
        try:
            if self.vector_index is not None and self._index_seq >= 0 and not self.config.read_only:
                self.sync_index()
                if self._index_seq != self._saved_seq:  # nothing to write after a read-only session
                    self.vector_index.save(self._index_seq)
        finally:
            self.store.close()
            if self.owns_embedder:
                self.embedder.close()

    def _load_or_rebuild_index(self) -> None:
        assert self.vector_index is not None
        saved = self.vector_index.load()
        store_seq = self.store.current_seq()
        if saved is not None and saved <= store_seq:
            self._index_seq = self._saved_seq = saved
            self.sync_index()
            if len(self.vector_index) == self.store.vector_count():
                return
            logger.warning("vector index disagrees with the store after catch-up; rebuilding")
        elif saved is not None:
            logger.warning(
                "vector index is newer than the store (seq %s > %s); rebuilding", saved, store_seq
            )
        self.rebuild_index()

    def rebuild_index(self) -> int:
        """Rebuild the vector index from the embeddings in the store; returns the vector count."""
        if self.vector_index is None:
            return 0
        with self._index_lock:
            seq, pks, vectors = self.store.snapshot_vectors()
            self.vector_index.clear()
            if pks:
                self.vector_index.upsert(pks, vectors)
            self._index_seq = seq
            if not self.config.read_only:
                self.vector_index.save(seq)
                self._saved_seq = seq
        logger.info("rebuilt vector index: %d vectors at seq %d", len(pks), seq)
        return len(pks)

    def sync_index(self, seq: int | None = None) -> None:
        """Apply store changes made since the index was last in step (any process). ``seq`` is
        the store's sequence when the caller has just read it (nothing to do if unchanged)."""
        if self.vector_index is None or seq == self._index_seq:
            return
        with self._index_lock:
            changes = self.store.changes_since(self._index_seq)
            if changes.seq == self._index_seq:
                return
            if changes.removed_ids:
                self.vector_index.remove(changes.removed_ids)
            if changes.upserted_ids and changes.upserted_vectors is not None:
                self.vector_index.upsert(changes.upserted_ids, changes.upserted_vectors)
            self._index_seq = changes.seq

    def _after_write(self) -> None:
        if self.cache is not None:
            self.cache.invalidate()

    def _embed(self, texts: Sequence[str]) -> FloatArray:
        vectors = self.embedder.embed(list(texts))
        return np.asarray(vectors, dtype=np.float32)

    # -- writes --------------------------------------------------------------------------------

    def build_memory(self, **kwargs: Any) -> Memory:
        """Validate add() arguments and build the record (nothing is written)."""
        unknown = set(kwargs) - _ADD_KEYS
        if unknown:
            raise ValidationError(f"unknown memory fields: {sorted(unknown)}")
        user_id = check_id(kwargs.get("user_id"), "user_id")
        session_id = check_optional_id(kwargs.get("session_id"), "session_id")
        agent_id = check_optional_id(kwargs.get("agent_id"), "agent_id")
        turn_id = check_optional_id(kwargs.get("turn_id"), "turn_id")
        importance = check_importance(kwargs.get("importance", 0.5))
        scope = derive_scope(kwargs.get("scope"), session_id, agent_id, turn_id)
        promoted_from = None
        if (
            self.config.auto_bubble
            and scope is not ScopeLevel.USER
            and importance > self.config.bubble_threshold
        ):
            promoted_from, scope = scope, ScopeLevel.USER
        now = utcnow()
        return Memory(
            id=str(uuid.uuid4()),
            content=check_content(kwargs.get("content")),
            user_id=user_id,
            session_id=session_id,
            agent_id=agent_id,
            turn_id=turn_id,
            scope_level=scope,
            category=MemoryCategory.parse(kwargs.get("category")),
            importance=importance,
            entity_refs=check_entity_refs(kwargs.get("entity_refs")),
            metadata=check_metadata(kwargs.get("metadata")),
            created_at=now,
            updated_at=now,
            valid_from=check_timestamp(kwargs.get("valid_from"), "valid_from") or now,
            promoted_from=promoted_from,
            context=check_context(kwargs.get("context")),
        )

    def add_batch(self, items: Sequence[Mapping[str, Any]]) -> list[Memory]:
        if isinstance(items, Mapping | str) or not isinstance(items, Sequence):
            raise ValidationError("add_batch expects a list of dicts with add()'s arguments")
        memories = []
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise ValidationError(f"add_batch item {i} is not a dict")
            try:
                memories.append(self.build_memory(**item))
            except ValidationError as exc:
                raise ValidationError(f"add_batch item {i}: {exc}") from exc
        if not memories:
            return []
        vectors = self._embed([m.content for m in memories])
        self._check_capacity(len(memories))
        before = self._index_seq
        pks = self.store.insert(memories, vectors)
        self._index_new(pks, vectors, before)
        self._after_write()
        return [m.copy() for m in memories]

    def import_memories(self, memories: Sequence[Memory]) -> int:
        """Insert exported records as they are (ids, timestamps, scope, supersession links).

        Ids already stored (or repeated in ``memories``) are skipped; content is re-embedded with
        this memory's embedder. Returns how many records were inserted.
        """
        if isinstance(memories, Memory | str) or not isinstance(memories, Sequence):
            raise ValidationError("import_memories expects a list of Memory records")
        fresh: list[Memory] = []
        seen: set[str] = set()
        for i, memory in enumerate(memories):
            if not isinstance(memory, Memory):
                raise ValidationError(f"import item {i} is not a Memory")
            memory = memory.copy()
            try:
                check_record(memory)
            except ValidationError as exc:
                raise ValidationError(f"import item {i} (id {memory.id!r}): {exc}") from exc
            if memory.id in seen or self.store.get(memory.id) is not None:
                continue
            seen.add(memory.id)
            fresh.append(memory)
        check_import_links(fresh, self.store.get)
        if not fresh:
            return 0
        vectors = self._embed([m.content for m in fresh])
        self._check_capacity(len(fresh))
        before = self._index_seq
        pks = self.store.insert(fresh, vectors)
        self._index_new(pks, vectors, before)
        self._after_write()
        return len(fresh)

    def _check_capacity(self, adding: int) -> None:
        cap = self.config.hnsw_max_entries
        if cap is not None and self.store.vector_count() + adding > cap:
            from .errors import ConfigurationError

            raise ConfigurationError(
                f"adding {adding} memories would exceed hnsw_max_entries={cap}"
            )

    def _index_new(self, pks: Sequence[int], vectors: FloatArray, seq_before: int) -> None:
        if self.vector_index is None:
            return
        self.vector_index.upsert(list(pks), vectors)
        # Our write bumped seq by exactly one if nobody else wrote; otherwise catch up on search.
        if self.store.current_seq() == seq_before + 1:
            self._index_seq = seq_before + 1

    def update(
        self,
        memory_id: str,
        *,
        user_id: str | None = None,
        content: str | None = None,
        category: MemoryCategory | str | None = None,
        importance: float | None = None,
        entity_refs: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Memory:
        memory = self.require(memory_id, user_id)
        if not memory.is_current and content is not None:
            raise SupersededError(f"memory {memory_id!r} is superseded; its content is history")
        changes: dict[str, Any] = {"updated_at": utcnow()}
        if content is not None:
            changes["content"] = check_content(content)
        if category is not None:
            changes["category"] = MemoryCategory.parse(category)
        if importance is not None:
            changes["importance"] = check_importance(importance)
        if entity_refs is not None:
            changes["entity_refs"] = check_entity_refs(entity_refs)
        if metadata is not None:
            changes["metadata"] = check_metadata(metadata)
        updated = replace(memory, **changes)
        vector = None
        if "content" in changes and changes["content"] != memory.content:
            vector = self._embed([updated.content])[0]
        self.store.update(updated, vector)
        self.sync_index()
        self._after_write()
        return updated.copy()

    def delete(
        self, memory_id: str, *, user_id: str | None = None, include_history: bool = False
    ) -> bool:
        memory = self.get(memory_id, user_id)
        if memory is None:
            return False
        check_bool(include_history, "include_history")
        ids = [memory_id]
        if include_history:  # the chain of the memory's owner only
            ids = [m.id for m in self.history(memory_id) if m.user_id == memory.user_id]
        deleted = self.store.delete(ids, **self._by_user(memory.user_id))
        self.sync_index()
        self._after_write()
        return deleted > 0

    def supersede(
        self,
        old_memory_id: str,
        new_content: str,
        *,
        user_id: str | None = None,
        category: MemoryCategory | str | None = None,
        importance: float | None = None,
        entity_refs: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        valid_from: datetime | None = None,
    ) -> Memory:
        old = self.require(old_memory_id, user_id)
        if not old.is_current:
            raise SupersededError(
                f"memory {old_memory_id!r} was already superseded by {old.superseded_by!r}; "
                "supersede the current version"
            )
        now = utcnow()
        when = check_timestamp(valid_from, "valid_from") or now
        if when < old.valid_from:
            raise ValidationError("valid_from of the new version is before the old version's")
        new = replace(
            old,
            id=str(uuid.uuid4()),
            content=check_content(new_content),
            category=MemoryCategory.parse(category) if category is not None else old.category,
            importance=check_importance(importance) if importance is not None else old.importance,
            entity_refs=check_entity_refs(entity_refs)
            if entity_refs is not None
            else list(old.entity_refs),
            metadata=check_metadata(metadata) if metadata is not None else dict(old.metadata),
            created_at=now,
            updated_at=now,
            valid_from=when,
            valid_until=None,
            supersedes=old.id,
            superseded_by=None,
        )
        closed = replace(old, valid_until=when, superseded_by=new.id, updated_at=now)
        vector = self._embed([new.content])[0]
        self.store.supersede(closed, new, vector)
        self.sync_index()
        self._after_write()
        return new.copy()

    def clear_scope(
        self,
        user_id: str,
        session_id: str | None = None,
        agent_id: str | None = None,
        turn_id: str | None = None,
    ) -> int:
        """Delete the memories stored at the given scope and narrower (all versions)."""
        check_id(user_id, "user_id")
        levels = [ScopeLevel.USER, ScopeLevel.SESSION, ScopeLevel.AGENT, ScopeLevel.TURN]
        narrowest = 0
        for depth, value in ((1, session_id), (2, agent_id), (3, turn_id)):
            if value is not None:
                narrowest = depth
        f = MemoryFilter(
            user_id=user_id,
            session_id=check_optional_id(session_id, "session_id"),
            agent_id=check_optional_id(agent_id, "agent_id"),
            turn_id=check_optional_id(turn_id, "turn_id"),
            exact_scope=True,
            scope_levels=levels[narrowest:] if narrowest else None,
            include_superseded=True,
        )
        deleted = self.store.delete_matching(f)
        self.sync_index()
        self._after_write()
        return int(deleted)
