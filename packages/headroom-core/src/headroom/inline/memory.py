"""InlineMemory: the one implementation of inject -> call -> extract -> store -> strip.

``with_memory`` and the LangChain, LlamaIndex and LiteLLM adapters all use it, in OpenAI's chat
message format. Rules (see the README):

* injection: the top-k memories visible to (user, session, agent), searched with the last user
  message, are rendered as quoted data inside ``<headroom_context>`` and prepended to the *last*
  user message only (earlier history stays byte-identical, so provider prompt caching works);
  the extraction instruction is appended to the system message; a token budget caps the block;
* extraction: the ``<memory>`` JSON block is parsed from the reply and removed from what the
  caller sees (also in streams, see :meth:`InlineMemory.stream_stripper`);
* where facts land: an item without ``scope`` is stored at USER level (its session and agent
  kept as provenance); ``"scope": "session"`` / ``"agent"`` stores it at that narrower scope.
  A wrapper without a session id gets a private one, so session-scoped facts stay in its lifetime;
* ``"supersedes": "m2"`` (a reference shown in the context) supersedes that memory, building a
  version chain; near-duplicates (cosine >= ``dedup_threshold``) of visible memories are skipped;
* failures in the memory layer are logged and never break the user's call.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from headroom.inline.extraction import ExtractedMemory, StreamingMemoryStripper, split_memory_block
from headroom.inline.injection import (
    EXTRACTION_INSTRUCTION,
    InjectedMemory,
    last_user_text,
    prepare_messages,
    render_memory_context_refs,
)
from headroom.memory.core import HierarchicalMemory
from headroom.memory.errors import ValidationError
from headroom.memory.models import Memory, MemoryCategory, ScopeLevel, SearchResult
from headroom.memory.validation import clean_text

__all__ = ["InlineMemory", "PreparedRequest"]

logger = logging.getLogger(__name__)

MAX_QUERY_CHARS = 4_000
"""The injection search uses at most this many characters: the end of the last user message."""


@dataclass
class PreparedRequest:
    """The messages to send, and the references of the memories injected into them."""

    messages: list[dict[str, Any]]
    refs: dict[str, str] = field(default_factory=dict)
    """Reference shown to the model ("m1") -> memory id."""
    injected: list[Memory] = field(default_factory=list)


class InlineMemory:
    """Inline memory for one identity (user, optional session and agent) over a HierarchicalMemory."""

    def __init__(
        self,
        memory: HierarchicalMemory,
        *,
        user_id: str,
        session_id: str | None = None,
        agent_id: str | None = None,
        top_k: int = 5,
        token_budget: int = 600,
        min_similarity: float = 0.0,
        dedup_threshold: float = 0.92,
        default_importance: float = 0.7,
        instruction: str | None = EXTRACTION_INSTRUCTION,
    ) -> None:
        from headroom.memory.validation import (
            MAX_TOP_K,
            check_id,
            check_importance,
            check_int,
            check_number,
            check_optional_id,
        )

        if not isinstance(memory, HierarchicalMemory):
            raise ValidationError(
                f"memory must be a HierarchicalMemory, got {type(memory).__name__}"
            )
        self.memory = memory
        self.user_id = check_id(user_id, "user_id")
        self.explicit_session_id = check_optional_id(session_id, "session_id")
        self.session_id = self.explicit_session_id or f"auto-{uuid.uuid4().hex[:12]}"
        self.agent_id = check_optional_id(agent_id, "agent_id")
        self.top_k = check_int(top_k, "top_k", low=1, high=MAX_TOP_K)
        self.token_budget = check_int(token_budget, "token_budget", low=0, high=10_000_000)
        self.min_similarity = check_number(min_similarity, "min_similarity")
        self.dedup_threshold = check_number(dedup_threshold, "dedup_threshold")
        self.default_importance = check_importance(default_importance, "default_importance")
        self.instruction = instruction

    # -- injection -------------------------------------------------------------------------------

    def _search_args(self, query: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
        # User text: lone surrogates become U+FFFD (never an error), and only the last
        # MAX_QUERY_CHARS are searched, so one huge message cannot hold the memory's single
        # worker (embedders read at most a few hundred tokens anyway).
        query = clean_text(query[-MAX_QUERY_CHARS:])
        return (query, self.user_id, self.session_id, self.agent_id), {
            "top_k": self.top_k, "min_similarity": self.min_similarity,
        }  # fmt: skip

    def _build(
        self, messages: Sequence[Mapping[str, Any]], hits: Sequence[SearchResult]
    ) -> PreparedRequest:
        injected = [h.memory for h in hits]
        refs = {f"m{i}": m.id for i, m in enumerate(injected, start=1)}
        rendered, shown_refs = render_memory_context_refs(
            [
                InjectedMemory(
                    ref=ref,
                    content=m.content,
                    category=m.category.value,
                    scope=m.scope_level.value,
                    memory_id=m.id,
                )
                for ref, m in zip(refs, injected, strict=True)
            ],
            token_budget=self.token_budget,
        )
        # Only memories actually rendered (within the token budget) can be cited back.
        shown = {ref: refs[ref] for ref in shown_refs}
        return PreparedRequest(
            messages=prepare_messages(messages, context=rendered, instruction=self.instruction),
            refs=shown,
            injected=[m for m in injected if m.id in shown.values()],
        )

    async def aprepare(self, messages: Sequence[Mapping[str, Any]]) -> PreparedRequest:
        """Inject memories and the instruction (never raises: on failure, only the instruction)."""
        hits: list[SearchResult] = []
        query = last_user_text(messages)
        if query.strip():
            try:
                args, kwargs = self._search_args(query)
                hits = await self.memory.search(*args, **kwargs)
            except Exception:
                logger.exception(
                    "headroom: memory search failed; sending the request without memories"
                )
        return self._build(messages, hits)

    def prepare(self, messages: Sequence[Mapping[str, Any]]) -> PreparedRequest:
        """Blocking twin of :meth:`aprepare`."""
        hits: list[SearchResult] = []
        query = last_user_text(messages)
        if query.strip():
            try:
                args, kwargs = self._search_args(query)
                hits = self.memory.sync.search(*args, **kwargs)
            except Exception:
                logger.exception(
                    "headroom: memory search failed; sending the request without memories"
                )
        return self._build(messages, hits)

    # -- extraction ------------------------------------------------------------------------------

    @staticmethod
    def split(text: str | None) -> tuple[str, list[ExtractedMemory]]:
        """The visible text and the extracted items of a complete reply."""
        return split_memory_block(text)

    @staticmethod
    def stream_stripper() -> StreamingMemoryStripper:
        """A stateful stripper for streamed replies (tags split across chunks are handled)."""
        return StreamingMemoryStripper()

    async def astore(
        self, items: Sequence[ExtractedMemory], refs: Mapping[str, str] | None = None
    ) -> list[Memory]:
        """Store extracted items (never raises; failures are logged)."""
        if not items:
            return []
        try:
            return await self.memory._call(self._store_items, list(items), dict(refs or {}))
        except Exception:
            logger.exception("headroom: storing extracted memories failed")
            return []

    def store(
        self, items: Sequence[ExtractedMemory], refs: Mapping[str, str] | None = None
    ) -> list[Memory]:
        """Blocking twin of :meth:`astore`."""
        if not items:
            return []
        try:
            return self.memory._call_sync(self._store_items, list(items), dict(refs or {}))
        except Exception:
            logger.exception("headroom: storing extracted memories failed")
            return []

    async def aprocess_reply(
        self, text: str | None, prepared: PreparedRequest | None = None
    ) -> str:
        """Strip the block from a complete reply, store its items, return the visible text."""
        if text is None:
            return ""
        visible, items = split_memory_block(text)
        await self.astore(items, prepared.refs if prepared else None)
        return visible

    def process_reply(self, text: str | None, prepared: PreparedRequest | None = None) -> str:
        if text is None:
            return ""
        visible, items = split_memory_block(text)
        self.store(items, prepared.refs if prepared else None)
        return visible

    # runs on the memory's worker thread --------------------------------------------------------

    def _store_items(self, items: list[ExtractedMemory], refs: dict[str, str]) -> list[Memory]:
        engine = self.memory._engine
        stored: list[Memory] = []
        for item in items:
            try:
                result = self._store_one(engine, item, refs)
            except Exception:
                logger.exception("headroom: could not store extracted memory")
                continue
            if result is not None:
                stored.append(result)
        return stored

    def _scope_for(self, item: ExtractedMemory) -> ScopeLevel:
        if item.scope is ScopeLevel.AGENT:
            return ScopeLevel.AGENT if self.agent_id else ScopeLevel.SESSION
        if item.scope is ScopeLevel.SESSION:
            return ScopeLevel.SESSION
        return ScopeLevel.USER

    def _store_one(self, engine: Any, item: ExtractedMemory, refs: dict[str, str]) -> Memory | None:
        from headroom.memory.ports import MemoryFilter

        category = item.category or MemoryCategory.FACT
        importance = item.importance if item.importance is not None else self.default_importance
        old_id = refs.get(item.supersedes) if item.supersedes else None
        if old_id is not None:
            old = engine.get(old_id)
            if old is not None and old.user_id == self.user_id and old.is_current:
                if old.content.strip().lower() == item.content.strip().lower():
                    return None
                return engine.supersede(
                    old_id, item.content, user_id=self.user_id, category=category,
                    importance=importance,
                    metadata={**old.metadata, "source": "inline"},
                )  # fmt: skip
        visible = MemoryFilter(
            user_id=self.user_id, session_id=self.session_id, agent_id=self.agent_id
        )
        hits = engine.search(item.content, visible, top_k=1, min_similarity=0.0, mode="semantic")
        if hits and hits[0].similarity >= self.dedup_threshold:
            logger.debug("headroom: skipped near-duplicate memory %r", item.content)
            return None
        scope = self._scope_for(item)
        metadata: dict[str, Any] = {"source": "inline"}
        if item.scope is not None:
            metadata["requested_scope"] = item.scope.value
        memories = engine.add_batch(
            [
                {
                    "content": item.content,
                    "user_id": self.user_id,
                    "session_id": self.session_id,
                    "agent_id": self.agent_id,
                    "category": category,
                    "importance": importance,
                    "entity_refs": list(item.entities),
                    "metadata": metadata,
                    "scope": scope,
                }
            ]
        )
        return memories[0]
