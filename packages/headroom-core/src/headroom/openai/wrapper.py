"""``with_memory``: give any OpenAI-compatible client a memory, in one line.

::

    client = with_memory(OpenAI(), user_id="alice")
    client.chat.completions.create(model="gpt-4o", messages=[...])   # used exactly as before

Each ``chat.completions.create`` call goes through :class:`~headroom.inline.memory.InlineMemory`:
the memories visible to (user, session, agent) are injected into the last user message and the
extraction instruction into the system message, the provider is called with those messages (all
other arguments unchanged), the ``<memory>`` block is removed from every choice of the reply (or
from the stream, chunk by chunk) and its facts are stored. Everything else on the client
(``client.models``, ``client.embeddings``, ...) passes through untouched. ``openai.AsyncOpenAI``
(or any client whose ``create`` is a coroutine function) gets an awaitable ``create``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from headroom.inline.extraction import ExtractedMemory
from headroom.inline.memory import InlineMemory, PreparedRequest
from headroom.memory.config import EmbedderBackend, MemoryConfig
from headroom.memory.core import HierarchicalMemory
from headroom.memory.errors import ClosedError, ValidationError
from headroom.memory.models import Memory, MemoryCategory, ScopeLevel, SearchResult
from headroom.memory.ports import Embedder, MemoryFilter
from headroom.memory.validation import (
    MAX_TOP_K,
    check_bool,
    check_content,
    check_id,
    check_int,
    check_metadata,
    check_optional_id,
)
from headroom.openai.stream import AsyncMemoryStream, MemoryStream, get_field, set_field

__all__ = ["MemoryWrapper", "WrapperMemoryAPI", "strip_response", "with_memory"]

logger = logging.getLogger(__name__)


class _Unset:
    def __repr__(self) -> str:
        return "<default>"


_UNSET: Any = _Unset()


def with_memory(
    client: Any,
    user_id: str,
    db_path: str | Path = _UNSET,
    top_k: int = 5,
    session_id: str | None = None,
    agent_id: str | None = None,
    embedder_backend: EmbedderBackend | str = _UNSET,
    config: MemoryConfig | None = None,
    *,
    memory: HierarchicalMemory | None = None,
    embedder: Embedder | None = None,
    token_budget: int = 600,
) -> MemoryWrapper:
    """Wrap ``client`` so that its chat completions remember facts about ``user_id``.

    ``config`` (default :class:`MemoryConfig()`) describes the memory to open lazily on first use;
    ``db_path`` and ``embedder_backend``, when given, override the config's. Pass ``memory=`` to
    share an open :class:`HierarchicalMemory` (the wrapper then never closes it) and ``embedder=``
    to use a custom embedder instance.
    """
    if config is not None and not isinstance(config, MemoryConfig):
        raise ValidationError(f"config must be a MemoryConfig, got {type(config).__name__}")
    base = config if config is not None else MemoryConfig()
    overrides: dict[str, Any] = {}
    if db_path is not _UNSET and db_path is not None:
        overrides["db_path"] = db_path
    if embedder_backend is not _UNSET and embedder_backend is not None:
        overrides["embedder_backend"] = embedder_backend
    resolved = base.with_overrides(**overrides) if overrides else base
    return MemoryWrapper(
        client, user_id=user_id, session_id=session_id, agent_id=agent_id, top_k=top_k,
        token_budget=token_budget, config=resolved, memory=memory, embedder=embedder,
    )  # fmt: skip


def _is_async_client(client: Any, create: Any) -> bool:
    if inspect.iscoroutinefunction(create) or inspect.iscoroutinefunction(inspect.unwrap(create)):
        return True
    openai = sys.modules.get("openai")
    async_cls = getattr(openai, "AsyncOpenAI", None) if openai is not None else None
    return isinstance(async_cls, type) and isinstance(client, async_cls)


def strip_response(response: Any) -> tuple[Any, list[ExtractedMemory]]:
    """Remove ``<memory>`` blocks from every choice of a chat completion.

    Pydantic responses are copied (``model_copy(deep=True)``), dicts and plain objects are changed
    in place. Returns the response and the items of the first choice that carried any; ``None``
    content (tool calls) is left alone.
    """
    if not get_field(response, "choices"):
        return response, []
    out = response.model_copy(deep=True) if hasattr(response, "model_copy") else response
    found: list[ExtractedMemory] = []
    for choice in get_field(out, "choices") or []:
        message = get_field(choice, "message")
        content = get_field(message, "content") if message is not None else None
        items: list[ExtractedMemory] = []
        if isinstance(content, str):
            visible, items = InlineMemory.split(content)
            if visible != content:
                set_field(message, "content", visible)
        elif isinstance(content, list):  # content parts
            for part in content:
                text = get_field(part, "text")
                if isinstance(text, str):
                    visible, part_items = InlineMemory.split(text)
                    set_field(part, "text", visible)
                    items = items or part_items
        if items and not found:
            found = items
    return out, found


class MemoryWrapper:
    """An OpenAI-compatible client with memory (see :func:`with_memory`)."""

    def __init__(
        self,
        client: Any,
        *,
        user_id: str,
        session_id: str | None = None,
        agent_id: str | None = None,
        top_k: int = 5,
        token_budget: int = 600,
        config: MemoryConfig | None = None,
        memory: HierarchicalMemory | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        create = getattr(
            getattr(getattr(client, "chat", None), "completions", None), "create", None
        )
        if not callable(create):
            raise ValidationError(
                f"client must be an OpenAI-compatible client with chat.completions.create, "
                f"got {type(client).__name__}"
            )
        self._client = client
        self.user_id = check_id(user_id, "user_id")
        self.session_id = check_optional_id(session_id, "session_id")
        self.agent_id = check_optional_id(agent_id, "agent_id")
        self.top_k = check_int(top_k, "top_k", low=1, high=MAX_TOP_K)
        self.token_budget = check_int(token_budget, "token_budget", low=0, high=10_000_000)
        if config is not None and not isinstance(config, MemoryConfig):
            raise ValidationError(f"config must be a MemoryConfig, got {type(config).__name__}")
        if memory is not None and not isinstance(memory, HierarchicalMemory):
            raise ValidationError(
                f"memory must be a HierarchicalMemory, got {type(memory).__name__}"
            )
        self.config = config if config is not None else MemoryConfig()
        self._embedder = embedder
        self._memory = memory
        self._owns_memory = memory is None
        self._inline: InlineMemory | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.is_async = _is_async_client(client, create)
        self._chat = _ChatProxy(self)
        self._memory_api = WrapperMemoryAPI(self)

    # -- plumbing ----------------------------------------------------------------------------------

    def inline(self) -> InlineMemory:
        """The InlineMemory of this wrapper, opening the memory on first use (blocking)."""
        if self._closed:
            raise ClosedError("this memory wrapper is closed")
        if self._inline is None:
            with self._lock:
                if self._inline is None:
                    if self._memory is None:
                        self._memory = HierarchicalMemory.create_sync(
                            self.config, embedder=self._embedder
                        )
                    self._inline = InlineMemory(
                        self._memory, user_id=self.user_id, session_id=self.session_id,
                        agent_id=self.agent_id, top_k=self.top_k, token_budget=self.token_budget,
                    )  # fmt: skip
        return self._inline

    async def ainline(self) -> InlineMemory:
        """Like :meth:`inline`; opening the memory runs on a worker thread."""
        if self._inline is not None and not self._closed:
            return self._inline
        return await asyncio.to_thread(self.inline)

    @property
    def client(self) -> Any:
        """The wrapped client."""
        return self._client

    @property
    def chat(self) -> _ChatProxy:
        return self._chat

    @property
    def memory(self) -> WrapperMemoryAPI:
        """Direct access to this user's memories: search, add, get_all, clear, stats, ..."""
        return self._memory_api

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_client":
            raise AttributeError(name)
        return getattr(self._client, name)

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the memory if this wrapper opened it (the client itself is left open)."""
        if self._closed:
            return
        self._closed = True
        if self._owns_memory and self._memory is not None and not self._memory.closed:
            self._memory.sync.close()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> MemoryWrapper:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> MemoryWrapper:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return (
            f"MemoryWrapper({type(self._client).__name__}, user_id={self.user_id!r}, "
            f"session_id={self.session_id!r}, agent_id={self.agent_id!r})"
        )


class _ChatProxy:
    """``wrapper.chat``: ``completions`` is intercepted, the rest is the client's ``chat``."""

    def __init__(self, wrapper: MemoryWrapper) -> None:
        self._wrapper = wrapper
        cls = _AsyncCompletions if wrapper.is_async else _SyncCompletions
        self.completions: _CompletionsBase = cls(wrapper)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_wrapper":
            raise AttributeError(name)
        return getattr(self._wrapper.client.chat, name)


class _CompletionsBase:
    def __init__(self, wrapper: MemoryWrapper) -> None:
        self._wrapper = wrapper

    @property
    def _target(self) -> Any:
        return self._wrapper.client.chat.completions

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_wrapper":
            raise AttributeError(name)
        return getattr(self._target, name)

    @staticmethod
    def _messages(kwargs: Mapping[str, Any]) -> list[Any] | None:
        messages = kwargs.get("messages")
        if isinstance(messages, list | tuple) and messages:
            return list(messages)
        return None


def _prepared_kwargs(kwargs: dict[str, Any], prepared: PreparedRequest) -> dict[str, Any]:
    return {**kwargs, "messages": prepared.messages}


class _SyncCompletions(_CompletionsBase):
    """``chat.completions`` of a synchronous client."""

    def create(self, **kwargs: Any) -> Any:
        messages = self._messages(kwargs)
        if messages is None:
            return self._target.create(**kwargs)
        inline = self._wrapper.inline()
        try:
            prepared = inline.prepare(messages)
        except Exception:
            logger.exception("headroom: could not prepare the request; sending it without memory")
            return self._target.create(**kwargs)
        response = self._target.create(**_prepared_kwargs(kwargs, prepared))
        if kwargs.get("stream"):
            return MemoryStream(response, inline, prepared)
        try:
            out, items = strip_response(response)
        except Exception:
            logger.exception("headroom: could not read the memory block of the response")
            return response
        inline.store(items, prepared.refs)
        return out


class _AsyncCompletions(_CompletionsBase):
    """``chat.completions`` of an asynchronous client: ``create`` is a coroutine function."""

    async def create(self, **kwargs: Any) -> Any:
        messages = self._messages(kwargs)
        if messages is None:
            return await self._target.create(**kwargs)
        inline = await self._wrapper.ainline()
        try:
            prepared = await inline.aprepare(messages)
        except Exception:
            logger.exception("headroom: could not prepare the request; sending it without memory")
            return await self._target.create(**kwargs)
        response = await self._target.create(**_prepared_kwargs(kwargs, prepared))
        if kwargs.get("stream"):
            return AsyncMemoryStream(response, inline, prepared)
        try:
            out, items = strip_response(response)
        except Exception:
            logger.exception("headroom: could not read the memory block of the response")
            return response
        await inline.astore(items, prepared.refs)
        return out


class WrapperMemoryAPI:
    """``wrapper.memory``: synchronous access to the wrapper's user's memories only.

    Every method runs on the memory's worker thread, so it also works inside a running event loop.
    """

    def __init__(self, wrapper: MemoryWrapper) -> None:
        self._wrapper = wrapper

    @property
    def hierarchical(self) -> HierarchicalMemory:
        """The underlying :class:`HierarchicalMemory` (opened if needed)."""
        return self._wrapper.inline().memory

    @property
    def user_id(self) -> str:
        return self._wrapper.user_id

    def search(self, query: str, top_k: int = 5, **filters: Any) -> list[SearchResult]:
        """Hybrid search over what this wrapper's user (and session/agent) can see."""
        w = self._wrapper
        return self.hierarchical.sync.search(
            query, w.user_id, w.session_id, w.agent_id, top_k=top_k, **filters
        )

    def add(
        self,
        content: str,
        category: MemoryCategory | str = MemoryCategory.FACT,
        importance: float = 0.7,
        *,
        metadata: Mapping[str, Any] | None = None,
        scope: ScopeLevel | str = ScopeLevel.USER,
    ) -> Memory:
        """Store a memory for this user (USER scope unless ``scope`` says otherwise)."""
        w = self._wrapper
        check_content(content)
        meta = {"source": "manual", **check_metadata(metadata)}
        inline = w.inline()
        return inline.memory.sync.add(
            content, w.user_id, inline.session_id, w.agent_id, category=MemoryCategory.parse(category),
            importance=importance, metadata=meta, scope=scope,
        )  # fmt: skip

    def get(self, memory_id: str) -> Memory | None:
        return self.hierarchical.sync.get(memory_id, user_id=self.user_id)

    def get_all(self, *, include_superseded: bool = False) -> list[Memory]:
        """All of this user's memories (current versions unless ``include_superseded``)."""
        f = MemoryFilter(
            user_id=self.user_id,
            include_superseded=check_bool(include_superseded, "include_superseded"),
        )
        return self.hierarchical.sync.query(f)

    def delete(self, memory_id: str) -> bool:
        return self.hierarchical.sync.delete(memory_id, user_id=self.user_id)

    def history(self, memory_id: str) -> list[Memory]:
        """The supersession chain of a memory, oldest first."""
        return self.hierarchical.sync.get_history(memory_id, user_id=self.user_id)

    def clear(self) -> int:
        """Delete every memory of this user (other users are untouched); returns how many."""
        return self.hierarchical.sync.clear_scope(self.user_id)

    def stats(self) -> dict[str, Any]:
        """This user's counts: ``total``, ``categories`` (every category), ``superseded``, ..."""
        data = self.hierarchical.sync.stats(self.user_id)
        categories = {c.value: 0 for c in MemoryCategory}
        categories.update(data.get("categories") or {})
        data["categories"] = categories
        data["user_id"] = self.user_id
        return data

    def __repr__(self) -> str:
        return f"WrapperMemoryAPI(user_id={self.user_id!r})"
