"""Call a wrapped model so that no callback handler of the caller sees its raw output.

LangChain resolves a runnable's callbacks from the config it is given *and* from the ambient run
config (the context variable ``var_child_runnable_config`` that LangGraph sets for every node).
Passing ``callbacks=[]`` is not enough: a ``RunnableBinding`` (what ``bind_tools`` returns) merges
its own config, which it completes from the ambient one, and so puts the graph's streaming handlers
back. Here the wrapped model runs in a copy of the current context in which that variable is
cleared, so it sees only the config passed explicitly:

* sync calls and each step of a sync stream run through ``Context.run``;
* async calls and each step of an async stream run as a task with that context.

``inner_config(run_manager)`` is that explicit config: no callbacks, or (for tracing) a child of
the outer run with every streaming handler (``astream_events``, LangGraph ``stream_mode="messages"``)
left out, so the inner run is traced but never streamed.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, TypeVar

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    BaseCallbackHandler,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import var_child_runnable_config

__all__ = [
    "ainvoke_isolated",
    "astream_isolated",
    "inner_config",
    "isolated_context",
    "run_isolated",
    "stream_isolated",
]

T = TypeVar("T")


def isolated_context() -> contextvars.Context:
    """A copy of the current context without the ambient LangChain/LangGraph run config."""
    ctx = contextvars.copy_context()
    ctx.run(var_child_runnable_config.set, None)
    return ctx


def _is_streaming(handler: BaseCallbackHandler) -> bool:
    try:
        from langchain_core.tracers._streaming import _StreamingCallbackHandler
    except ImportError:  # pragma: no cover - older/newer langchain-core
        return "stream" in type(handler).__name__.lower()
    return isinstance(handler, _StreamingCallbackHandler)


def inner_config(
    run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None,
) -> RunnableConfig:
    """The config for the wrapped model: no callbacks, or a non-streaming child of ``run_manager``."""
    if run_manager is None:
        return {"callbacks": []}
    child: CallbackManager | AsyncCallbackManager
    if isinstance(run_manager, AsyncCallbackManagerForLLMRun):
        child = AsyncCallbackManager(handlers=[], parent_run_id=run_manager.run_id)
    else:
        child = CallbackManager(handlers=[], parent_run_id=run_manager.run_id)
    handlers = [h for h in run_manager.inheritable_handlers if not _is_streaming(h)]
    child.set_handlers(handlers)
    child.add_tags(run_manager.inheritable_tags)
    child.add_metadata(run_manager.inheritable_metadata)
    return {"callbacks": child, "tags": ["nostream"]}


def run_isolated(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` without the ambient run config."""
    return isolated_context().run(fn, *args, **kwargs)


def stream_isolated(fn: Callable[..., Iterator[T]], *args: Any, **kwargs: Any) -> Iterator[T]:
    """The items of ``fn(*args, **kwargs)``, each step run without the ambient run config."""
    ctx = isolated_context()
    iterator = ctx.run(lambda: iter(fn(*args, **kwargs)))
    try:
        while True:
            try:
                item = ctx.run(next, iterator)
            except StopIteration:
                return
            yield item
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            ctx.run(close)


async def _in(ctx: contextvars.Context, coro: Coroutine[Any, Any, T]) -> T:
    return await asyncio.create_task(coro, context=ctx)


async def ainvoke_isolated(
    fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any
) -> T:
    """``await fn(*args, **kwargs)`` without the ambient run config."""
    ctx = isolated_context()
    return await _in(ctx, fn(*args, **kwargs))


async def astream_isolated(
    fn: Callable[..., AsyncIterator[T]], *args: Any, **kwargs: Any
) -> AsyncIterator[T]:
    """The items of ``fn(*args, **kwargs)``, each step awaited without the ambient run config."""
    ctx = isolated_context()
    iterator = ctx.run(lambda: aiter(fn(*args, **kwargs)))

    async def step() -> T:
        return await anext(iterator)

    try:
        while True:
            try:
                item = await _in(ctx, step())
            except StopAsyncIteration:
                return
            yield item
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:

            async def close() -> None:
                await aclose()

            await _in(ctx, close())
