"""Drop-in ``completion`` / ``acompletion`` and a Router wrapper that remember.

LiteLLM callbacks cannot change sync ``completion`` calls or SDK streams, so these wrap the
call itself: inject memories, call LiteLLM, strip the ``<memory>`` block (from complete
responses, or chunk by chunk from streams, sync and async) and store the facts.

Memories opened from ``db_path=`` / ``config=`` by the module-level functions are cached per
database file (a bounded number) and closed by :func:`close_all`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from headroom.memory import HierarchicalMemory, MemoryConfig

from ._handler import MemoryHandler
from ._memory import IdentityDefaults, InlinePool, MemoryRegistry, resolve_memory

__all__ = [
    "AsyncHeadroomStream",
    "HeadroomRouter",
    "HeadroomStream",
    "acompletion",
    "close_all",
    "completion",
    "default_registry",
]

logger = logging.getLogger(__name__)

_REGISTRY = MemoryRegistry()


def default_registry() -> MemoryRegistry:
    """The registry of memories opened by :func:`completion` / :func:`acompletion`."""
    return _REGISTRY


def close_all() -> None:
    """Close every memory the module-level functions opened from ``db_path`` / ``config``."""
    _REGISTRY.close_all()


class HeadroomStream:
    """A sync LiteLLM stream with the memory block removed; other attributes pass through."""

    def __init__(self, chunks: Iterator[Any], original: Any) -> None:
        self._chunks = chunks
        self.original = original

    def __iter__(self) -> HeadroomStream:
        return self

    def __next__(self) -> Any:
        return next(self._chunks)

    def __getattr__(self, name: str) -> Any:
        if name == "original":
            raise AttributeError(name)
        return getattr(self.original, name)


class AsyncHeadroomStream:
    """An async LiteLLM stream with the memory block removed; other attributes pass through."""

    def __init__(self, chunks: AsyncIterator[Any], original: Any) -> None:
        self._chunks = chunks
        self.original = original

    def __aiter__(self) -> AsyncHeadroomStream:
        return self

    async def __anext__(self) -> Any:
        return await self._chunks.__anext__()

    def __getattr__(self, name: str) -> Any:
        if name == "original":
            raise AttributeError(name)
        return getattr(self.original, name)


def _as_request(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """LiteLLM's ``(model, messages, ...)`` arguments as one keyword dict."""
    if len(args) > 2:
        raise TypeError("pass LiteLLM arguments after model and messages as keywords")
    request = dict(kwargs)
    for name, value in zip(("model", "messages"), args, strict=False):
        if name in request:
            raise TypeError(f"got multiple values for argument {name!r}")
        request[name] = value
    return request


def _explicit(user_id: str | None, session_id: str | None, agent_id: str | None) -> dict[str, Any]:
    return {"user_id": user_id, "session_id": session_id, "agent_id": agent_id}


def _run(
    handler: MemoryHandler | None,
    fn: Callable[..., Any],
    request: dict[str, Any],
    explicit: dict[str, Any],
) -> Any:
    if handler is None:
        return fn(**request)
    prepared = handler.prepare_request(request, **explicit) or request
    response = fn(**prepared)
    if prepared.get("stream"):
        return HeadroomStream(iter(handler.wrap_stream(prepared, response, **explicit)), response)
    return handler.process_response(prepared, response, **explicit)


async def _arun(
    handler: MemoryHandler | None,
    fn: Callable[..., Any],
    request: dict[str, Any],
    explicit: dict[str, Any],
) -> Any:
    if handler is None:
        return await fn(**request)
    prepared = await handler.aprepare_request(request, **explicit) or request
    response = await fn(**prepared)
    if prepared.get("stream"):
        chunks = handler.wrap_async_stream(prepared, response, **explicit)
        return AsyncHeadroomStream(aiter(chunks), response)
    return await handler.aprocess_response(prepared, response, **explicit)


def _module_handler(
    memory: HierarchicalMemory | None,
    db_path: str | Path | None,
    config: MemoryConfig | None,
    top_k: int,
) -> MemoryHandler | None:
    try:
        hm = _REGISTRY.memory(memory, db_path, config)
        return MemoryHandler(hm, top_k=top_k, pool=_REGISTRY.pool(hm))
    except Exception:
        logger.exception("headroom: could not open the memory; calling the model without it")
        return None


def completion(
    *args: Any,
    user_id: str | None = None,
    session_id: str | None = None,
    agent_id: str | None = None,
    memory: HierarchicalMemory | None = None,
    db_path: str | Path | None = None,
    config: MemoryConfig | None = None,
    top_k: int = 5,
    **litellm_kwargs: Any,
) -> Any:
    """``litellm.completion`` with memory: same arguments and result (streams stripped too).

    Without ``user_id=``, the user comes from ``metadata["headroom_user_id"]`` or ``user=``;
    without any, the call goes through untouched. ``memory=`` or ``db_path=`` / ``config=``
    choose the database (default: ``MemoryConfig()``'s).
    """
    import litellm

    handler = _module_handler(memory, db_path, config, top_k)
    request = _as_request(args, litellm_kwargs)
    return _run(handler, litellm.completion, request, _explicit(user_id, session_id, agent_id))


async def acompletion(
    *args: Any,
    user_id: str | None = None,
    session_id: str | None = None,
    agent_id: str | None = None,
    memory: HierarchicalMemory | None = None,
    db_path: str | Path | None = None,
    config: MemoryConfig | None = None,
    top_k: int = 5,
    **litellm_kwargs: Any,
) -> Any:
    """``litellm.acompletion`` with memory (see :func:`completion`); streams are async iterables."""
    import asyncio

    import litellm

    handler = await asyncio.to_thread(_module_handler, memory, db_path, config, top_k)
    request = _as_request(args, litellm_kwargs)
    return await _arun(
        handler, litellm.acompletion, request, _explicit(user_id, session_id, agent_id)
    )


class HeadroomRouter:
    """A ``litellm.Router`` whose ``completion`` / ``acompletion`` remember.

    ``HeadroomRouter(router, db_path="memory.db", user_id="alice")``; per call, ``user_id=``,
    ``session_id=`` and ``agent_id=`` override the defaults (metadata and ``user=`` work too).
    Every other attribute is the router's.
    """

    def __init__(
        self,
        router: Any,
        *,
        memory: HierarchicalMemory | None = None,
        db_path: str | Path | None = None,
        config: MemoryConfig | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
        agent_id: str | None = None,
        top_k: int = 5,
        embedder: Any = None,
    ) -> None:
        self.router = router
        hm, self._owned = resolve_memory(memory, db_path, config, embedder)
        self.memory = hm
        self.handler = MemoryHandler(
            hm,
            defaults=IdentityDefaults(user_id, session_id, agent_id),
            top_k=top_k,
            pool=InlinePool(hm, top_k=top_k),
        )

    def completion(
        self,
        *args: Any,
        user_id: str | None = None,
        session_id: str | None = None,
        agent_id: str | None = None,
        **kwargs: Any,
    ) -> Any:
        request = _as_request(args, kwargs)
        explicit = _explicit(user_id, session_id, agent_id)
        return _run(self.handler, self.router.completion, request, explicit)

    async def acompletion(
        self,
        *args: Any,
        user_id: str | None = None,
        session_id: str | None = None,
        agent_id: str | None = None,
        **kwargs: Any,
    ) -> Any:
        request = _as_request(args, kwargs)
        explicit = _explicit(user_id, session_id, agent_id)
        return await _arun(self.handler, self.router.acompletion, request, explicit)

    def close(self) -> None:
        """Close the memory if this wrapper opened it."""
        if self._owned and not self.memory.closed:
            self.memory.sync.close()

    def __getattr__(self, name: str) -> Any:
        if name == "router":
            raise AttributeError(name)
        return getattr(self.router, name)
