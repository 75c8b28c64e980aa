"""What each MCP tool does, over an open HierarchicalMemory, for one caller :class:`Identity`.

Free of the MCP SDK (the server module registers thin wrappers), so every rule is testable
directly. Every read and write is confined to ``identity.user_id``: an id of another user's memory
is answered exactly like an unknown id, so ids cannot be probed. Errors are HeadroomErrors with a
message meant for the model (the server turns them into MCP tool errors, ``isError: true``).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from headroom.memory.core import HierarchicalMemory
from headroom.memory.errors import AccessDeniedError, MemoryNotFoundError, ValidationError
from headroom.memory.models import Memory, MemoryCategory, ScopeLevel
from headroom.memory.ports import MemoryFilter
from headroom.memory.validation import MAX_ID_CHARS

from .identity import Identity
from .models import (
    ForgetResult,
    HistoryResult,
    ListResult,
    RecallHit,
    RecallResult,
    RememberResult,
    UpdateResult,
    memory_out,
)

__all__ = ["MAX_QUERY_CHARS", "MemoryTools"]

logger = logging.getLogger(__name__)

MAX_QUERY_CHARS = 2_000
MAX_TOP_K = 50
MAX_PAGE = 200


class MemoryTools:
    """The tools' behaviour; one instance per server (shared by all its connections)."""

    def __init__(
        self,
        memory: HierarchicalMemory,
        *,
        dedup_threshold: float = 0.9,
        max_content_chars: int = 10_000,
    ) -> None:
        self.memory = memory
        self.dedup_threshold = dedup_threshold
        self.max_content_chars = max_content_chars
        # Check-then-write (near-duplicate merge, supersede) must not interleave between calls.
        self._write_lock = asyncio.Lock()

    # -- helpers ---------------------------------------------------------------------------------

    def _content(self, content: str) -> str:
        text = content.strip() if isinstance(content, str) else ""
        if not text:
            raise ValidationError("content must not be empty")
        if len(text) > self.max_content_chars:
            raise ValidationError(
                f"content is {len(text)} characters; the limit is {self.max_content_chars}. "
                "Store one short fact per memory."
            )
        if "\x00" in text:
            raise ValidationError("content must not contain NUL characters")
        return text

    @staticmethod
    def _id(memory_id: str) -> str:
        if not isinstance(memory_id, str) or not memory_id.strip():
            raise ValidationError("id must be a non-empty memory id")
        if len(memory_id) > MAX_ID_CHARS:
            raise MemoryNotFoundError(f"no memory with id {memory_id[:40]!r}...")
        return memory_id.strip()

    async def _own(self, memory_id: str, who: Identity) -> Memory:
        """The caller's memory ``memory_id``; another user's memory reads as unknown."""
        mid = self._id(memory_id)
        try:
            memory = await self.memory.get(mid, user_id=who.user_id)
        except AccessDeniedError:
            memory = None
        if memory is None:
            raise MemoryNotFoundError(f"no memory with id {mid!r}")
        return memory

    @staticmethod
    def _provenance(who: Identity, base: dict[str, Any] | None = None) -> dict[str, Any]:
        meta = dict(base or {})
        meta.update(source="mcp", stored_by=who.agent_id, agents=[who.agent_id])
        return meta

    @staticmethod
    def _scope(scope: str) -> ScopeLevel:
        level = ScopeLevel.parse(scope)
        if level is ScopeLevel.TURN:
            raise ValidationError("scope must be one of: user, session, agent")
        return level

    # -- tools -----------------------------------------------------------------------------------

    async def remember(
        self,
        who: Identity,
        content: str,
        *,
        category: str | None = None,
        importance: float | None = None,
        scope: str = "user",
        supersedes: str | None = None,
    ) -> RememberResult:
        text = self._content(content)
        level = self._scope(scope)
        cat = MemoryCategory.parse(category) if category is not None else None
        async with self._write_lock:
            if supersedes is not None:
                old = await self._own(supersedes, who)
                new = await self.memory.supersede(
                    old.id, text, user_id=who.user_id, category=cat, importance=importance,
                    metadata=self._provenance(who, old.metadata),
                )  # fmt: skip
                return RememberResult(action="superseded", memory=memory_out(new))
            duplicate = await self._duplicate_of(who, text)
            if duplicate is not None:
                return RememberResult(
                    action="merged",
                    memory=memory_out(await self._merge(who, duplicate, importance)),
                )
            added = await self.memory.add(
                text, who.user_id, who.session_id, who.agent_id, category=cat or MemoryCategory.FACT,
                importance=0.5 if importance is None else importance, scope=level,
                metadata=self._provenance(who),
            )  # fmt: skip
        logger.info("headroom mcp: %s stored %s for %s", who.agent_id, added.id, who.user_id)
        return RememberResult(action="stored", memory=memory_out(added))

    async def _duplicate_of(self, who: Identity, text: str) -> Memory | None:
        if self.dedup_threshold > 1.0:
            return None
        hits = await self.memory.search(
            text, who.user_id, who.session_id, who.agent_id, top_k=1, mode="semantic"
        )
        if hits and hits[0].similarity >= self.dedup_threshold:
            return hits[0].memory
        return None

    async def _merge(self, who: Identity, existing: Memory, importance: float | None) -> Memory:
        meta = dict(existing.metadata)
        agents = [a for a in meta.get("agents", []) if isinstance(a, str)]
        first = meta.get("stored_by") or existing.agent_id
        if isinstance(first, str) and first not in agents:
            agents.insert(0, first)
        if who.agent_id not in agents:
            agents.append(who.agent_id)
        meta["agents"] = agents
        new_importance = None
        if importance is not None and importance > existing.importance:
            new_importance = importance
        logger.info("headroom mcp: %s restated %s (merged)", who.agent_id, existing.id)
        return await self.memory.update(
            existing.id, user_id=who.user_id, metadata=meta, importance=new_importance
        )

    async def recall(
        self,
        who: Identity,
        query: str,
        *,
        top_k: int = 5,
        category: str | None = None,
        valid_at: datetime | None = None,
        include_history: bool = False,
    ) -> RecallResult:
        text = query.strip() if isinstance(query, str) else ""
        if not text:
            raise ValidationError("query must not be empty")
        if len(text) > MAX_QUERY_CHARS:
            raise ValidationError(f"query is longer than {MAX_QUERY_CHARS} characters")
        if not 1 <= top_k <= MAX_TOP_K:
            raise ValidationError(f"top_k must be between 1 and {MAX_TOP_K}")
        when = _aware(valid_at)
        hits = await self.memory.search(
            text, who.user_id, who.session_id, who.agent_id, top_k=top_k,
            categories=[MemoryCategory.parse(category)] if category else None,
            include_superseded=when is not None, valid_at=when,
        )  # fmt: skip
        results = []
        for hit in hits:
            history = None
            if include_history:
                chain = await self.memory.get_history(hit.memory.id, user_id=who.user_id)
                history = [memory_out(m) for m in chain if m.id != hit.memory.id]
            results.append(
                RecallHit(
                    memory=memory_out(hit.memory),
                    score=float(hit.score),
                    similarity=float(hit.similarity),
                    history=history,
                )
            )
        return RecallResult(query=text, results=results)

    async def forget(
        self, who: Identity, memory_id: str, *, include_history: bool = False
    ) -> ForgetResult:
        async with self._write_lock:
            memory = await self._own(memory_id, who)
            count = 1
            if include_history:
                count = len(await self.memory.get_history(memory.id, user_id=who.user_id))
            deleted = await self.memory.delete(
                memory.id, user_id=who.user_id, include_history=include_history
            )
        return ForgetResult(id=memory.id, deleted=count if deleted else 0)

    async def history(self, who: Identity, memory_id: str) -> HistoryResult:
        memory = await self._own(memory_id, who)
        chain = await self.memory.get_history(memory.id, user_id=who.user_id)
        return HistoryResult(id=memory.id, versions=[memory_out(m) for m in chain])

    def _filter(
        self, who: Identity, category: str | None, scope: str | None, include_superseded: bool
    ) -> MemoryFilter:
        return MemoryFilter(
            user_id=who.user_id, session_id=who.session_id, agent_id=who.agent_id,
            categories=[MemoryCategory.parse(category)] if category else None,
            scope_levels=[self._scope(scope)] if scope else None,
            include_superseded=include_superseded, order_by="-created_at",
        )  # fmt: skip

    async def list_memories(
        self,
        who: Identity,
        *,
        category: str | None = None,
        scope: str | None = None,
        include_superseded: bool = False,
        limit: int = 20,
        offset: int = 0,
    ) -> ListResult:
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationError(f"limit must be between 1 and {MAX_PAGE}")
        if offset < 0:
            raise ValidationError("offset must not be negative")
        f = self._filter(who, category, scope, include_superseded)
        total = await self.memory.count(f)
        f.limit, f.offset = limit, offset
        page = await self.memory.query(f)
        end = offset + len(page)
        return ListResult(
            memories=[memory_out(m) for m in page],
            total=total,
            next_offset=end if end < total else None,
        )

    async def update(
        self,
        who: Identity,
        memory_id: str,
        *,
        content: str | None = None,
        category: str | None = None,
        importance: float | None = None,
        keep_history: bool = True,
    ) -> UpdateResult:
        if content is None and category is None and importance is None:
            raise ValidationError("nothing to update: give content, category or importance")
        text = self._content(content) if content is not None else None
        cat = MemoryCategory.parse(category) if category is not None else None
        async with self._write_lock:
            old = await self._own(memory_id, who)
            if text is not None and keep_history and text != old.content:
                new = await self.memory.supersede(
                    old.id, text, user_id=who.user_id, category=cat, importance=importance,
                    metadata=self._provenance(who, old.metadata),
                )  # fmt: skip
                return UpdateResult(memory=memory_out(new), superseded_id=old.id)
            fixed = await self.memory.update(
                old.id, user_id=who.user_id, content=text, category=cat, importance=importance
            )
        return UpdateResult(memory=memory_out(fixed), superseded_id=None)

    async def snapshot(self, who: Identity, limit: int = MAX_PAGE) -> str:
        """The caller's current memories as Markdown (the ``headroom://memories`` resource)."""
        f = self._filter(who, None, None, False)
        f.limit, f.order_by = limit, "-importance"
        memories = await self.memory.query(f)
        if not memories:
            return f"# Memories of {who.user_id}\n\n(none yet)\n"
        lines = [f"# Memories of {who.user_id}", ""]
        for m in memories:
            out = memory_out(m)
            by = ", ".join(out.agents) or "unknown agent"
            lines.append(
                f"- {m.content}  ({out.category}, {out.scope} scope, from {by}, "
                f"since {m.valid_from.date().isoformat()}, id {m.id})"
            )
        return "\n".join(lines) + "\n"


def _aware(when: datetime | None) -> datetime | None:
    if when is None:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
