"""HierarchicalMemory: the async orchestrator, and its synchronous facade.

All work (SQLite, FAISS, embedding) runs on one dedicated worker thread per memory, so ``async``
methods never block the event loop and the adapters need no locking of their own. The sync
facade (:attr:`HierarchicalMemory.sync`) submits to the same worker and waits, so it also works
from inside a running event loop (a notebook, an async web app).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from .config import MemoryConfig
from .engine import MemoryEngine
from .errors import ClosedError, ValidationError
from .models import Memory, MemoryCategory, ScopeLevel, SearchResult
from .ports import Embedder, MemoryFilter, search_filter
from .sync import SyncHierarchicalMemory
from .validation import (
    ADD_KWARGS,
    SEARCH_FILTER_KWARGS,
    check_filter,
    check_kwargs,
    check_optional_id,
    check_search_args,
)

__all__ = ["HierarchicalMemory", "SyncHierarchicalMemory"]

R = TypeVar("R")


_READ_METHODS = frozenset({"search", "get", "history", "query", "count", "stats"})
"""MemoryEngine methods served by the reader threads (everything else runs on the writer)."""


class HierarchicalMemory:
    """Hierarchical (user > session > agent > turn), temporal memory with hybrid search.

    Create it with ``await HierarchicalMemory.create(config)`` (or ``create_sync``) and close it
    with ``await memory.close()`` or ``async with``.
    """

    def __init__(self, engine: MemoryEngine, executor: ThreadPoolExecutor) -> None:
        self._engine = engine
        self._executor = executor  # the one writer thread (and reads made while writing)
        self._worker_ident: int | None = None
        self._reader_idents: set[int] = set()
        self._readers = ThreadPoolExecutor(
            max_workers=engine.config.read_threads,
            thread_name_prefix="headroom-read",
            initializer=lambda: self._reader_idents.add(threading.get_ident()),
        )
        self._closed = False
        self.sync = SyncHierarchicalMemory(self)

    # -- construction ----------------------------------------------------------------------------

    @classmethod
    def _build(
        cls, config: MemoryConfig | None, embedder: Embedder | None, overrides: dict[str, Any]
    ) -> tuple[ThreadPoolExecutor, Callable[[], MemoryEngine]]:
        from .factory import create_memory_system

        if config is not None and not isinstance(config, MemoryConfig):
            raise ValidationError(f"config must be a MemoryConfig, got {type(config).__name__}")
        if embedder is not None and not isinstance(embedder, Embedder):
            raise ValidationError(
                "embedder must provide dimension, model_name, embed() and close(), "
                f"got {type(embedder).__name__}"
            )
        cfg = (
            (config or MemoryConfig()).with_overrides(**overrides)
            if overrides
            else (config or MemoryConfig())
        )
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="headroom-memory")

        def build() -> MemoryEngine:
            parts = create_memory_system(cfg, embedder=embedder)
            engine = MemoryEngine(
                cfg,
                parts.store,
                parts.embedder,
                parts.vector_index,
                parts.text_index,
                parts.cache,
                owns_embedder=embedder is None,
            )
            try:
                engine.open()
            except BaseException:
                parts.store.close()
                raise
            return engine

        return executor, build

    @classmethod
    async def create(
        cls,
        config: MemoryConfig | None = None,
        *,
        embedder: Embedder | None = None,
        **overrides: Any,
    ) -> HierarchicalMemory:
        """Open (or create) the memory described by ``config``; keyword overrides replace fields."""
        executor, build = cls._build(config, embedder, overrides)
        try:
            engine = await asyncio.get_running_loop().run_in_executor(executor, build)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls._started(engine, executor)

    @classmethod
    def create_sync(
        cls,
        config: MemoryConfig | None = None,
        *,
        embedder: Embedder | None = None,
        **overrides: Any,
    ) -> HierarchicalMemory:
        """Like :meth:`create`, for synchronous code (also safe inside a running event loop)."""
        executor, build = cls._build(config, embedder, overrides)
        try:
            engine = executor.submit(build).result()
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls._started(engine, executor)

    @classmethod
    def _started(cls, engine: MemoryEngine, executor: ThreadPoolExecutor) -> HierarchicalMemory:
        memory = cls(engine, executor)
        memory._worker_ident = executor.submit(threading.get_ident).result()
        return memory

    @property
    def config(self) -> MemoryConfig:
        return self._engine.config

    @property
    def closed(self) -> bool:
        return self._closed

    # -- plumbing --------------------------------------------------------------------------------

    def _pool_for(self, fn: Callable[..., Any]) -> ThreadPoolExecutor | None:
        """The pool that runs ``fn``: the readers for the engine's read methods, else the writer;
        None when the caller is already one of this memory's threads (run inline)."""
        me = threading.get_ident()
        if me == self._worker_ident or me in self._reader_idents:
            return None
        is_read = getattr(fn, "__self__", None) is self._engine and (
            getattr(fn, "__name__", "") in _READ_METHODS
        )
        return self._readers if is_read else self._executor

    async def _call(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
        if self._closed:
            raise ClosedError("this HierarchicalMemory is closed")
        pool = self._pool_for(fn)
        if pool is None:
            return fn(*args, **kwargs)
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(pool, functools.partial(fn, *args, **kwargs))
        except RuntimeError:  # the pool shut down between the check and the call
            raise ClosedError("this HierarchicalMemory is closed") from None
        return await future

    def _call_sync(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
        if self._closed:
            raise ClosedError("this HierarchicalMemory is closed")
        pool = self._pool_for(fn)
        if pool is None:
            return fn(*args, **kwargs)
        try:
            future = pool.submit(fn, *args, **kwargs)
        except RuntimeError:  # the pool shut down between the check and the call
            raise ClosedError("this HierarchicalMemory is closed") from None
        return future.result()

    # -- writes ----------------------------------------------------------------------------------

    async def add(
        self,
        content: str,
        user_id: str,
        session_id: str | None = None,
        agent_id: str | None = None,
        turn_id: str | None = None,
        *,
        category: MemoryCategory | str | None = MemoryCategory.FACT,
        importance: float = 0.5,
        entity_refs: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        valid_from: datetime | None = None,
        scope: ScopeLevel | str | None = None,
        context: str | None = None,
    ) -> Memory:
        """Store one memory. Its scope is ``scope`` or the narrowest id given (turn > agent >
        session > user); the other ids are kept as provenance. ``valid_from`` (timezone-aware)
        dates imported history. ``context`` (e.g. the previous turn) is indexed for full-text
        search with the memory but never returned."""
        item = dict(content=content, user_id=user_id, session_id=session_id, agent_id=agent_id,
                    turn_id=turn_id, category=category, importance=importance,
                    entity_refs=entity_refs, metadata=metadata, valid_from=valid_from, scope=scope,
                    context=context)  # fmt: skip
        return (await self._call(self._engine.add_batch, [item]))[0]

    async def add_batch(self, items: Sequence[Mapping[str, Any]]) -> list[Memory]:
        """Store many memories: all validated first, one embedding batch, one transaction."""
        return await self._call(self._engine.add_batch, items)

    async def import_memories(self, memories: Sequence[Memory]) -> int:
        """Insert exported records keeping ids, timestamps and supersession links (skips ids
        already stored; content is re-embedded). Returns how many were inserted."""
        return await self._call(self._engine.import_memories, memories)

    async def update(
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
        """Correct a memory in place (same version). Use :meth:`supersede` when a fact changes."""
        return await self._call(
            self._engine.update, memory_id, user_id=user_id, content=content, category=category,
            importance=importance, entity_refs=entity_refs, metadata=metadata,
        )  # fmt: skip

    async def delete(
        self, memory_id: str, *, user_id: str | None = None, include_history: bool = False
    ) -> bool:
        """Delete a memory (and with ``include_history`` its whole supersession chain)."""
        return await self._call(
            self._engine.delete, memory_id, user_id=user_id, include_history=include_history
        )

    async def supersede(
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
        """Replace a fact: closes the old version and returns the new current one."""
        return await self._call(
            self._engine.supersede, old_memory_id, new_content, user_id=user_id, category=category,
            importance=importance, entity_refs=entity_refs, metadata=metadata, valid_from=valid_from,
        )  # fmt: skip

    async def clear_scope(
        self,
        user_id: str,
        session_id: str | None = None,
        agent_id: str | None = None,
        turn_id: str | None = None,
    ) -> int:
        """Delete the memories stored at that scope and narrower ones; returns how many."""
        return await self._call(self._engine.clear_scope, user_id, session_id, agent_id, turn_id)

    async def remember(self, content: str, user_id: str, **kwargs: Any) -> Memory:
        """Shorthand for :meth:`add`."""
        check_kwargs(kwargs, ADD_KWARGS, "remember")
        return await self.add(content, user_id, **kwargs)

    # -- reads -----------------------------------------------------------------------------------

    async def get(self, memory_id: str, *, user_id: str | None = None) -> Memory | None:
        """The memory, or None. With ``user_id``, another user's memory raises AccessDeniedError."""
        return await self._call(self._engine.get, memory_id, check_optional_id(user_id, "user_id"))

    async def get_history(self, memory_id: str, *, user_id: str | None = None) -> list[Memory]:
        """The supersession chain containing the memory, oldest first."""
        return await self._call(
            self._engine.history, memory_id, check_optional_id(user_id, "user_id")
        )

    async def query(self, filter: MemoryFilter | None = None) -> list[Memory]:
        """Memories matching the filter (current versions only unless include_superseded)."""
        return await self._call(self._engine.query, check_filter(filter))

    async def count(self, filter: MemoryFilter | None = None) -> int:
        return await self._call(self._engine.count, check_filter(filter))

    async def search(
        self,
        query: str,
        user_id: str,
        session_id: str | None = None,
        agent_id: str | None = None,
        turn_id: str | None = None,
        *,
        top_k: int = 10,
        min_similarity: float = 0.0,
        categories: Sequence[MemoryCategory | str] | None = None,
        min_importance: float | None = None,
        include_superseded: bool = False,
        valid_at: datetime | None = None,
        metadata: Mapping[str, Any] | None = None,
        entity_refs: Sequence[str] | None = None,
        mode: str | None = None,
    ) -> list[SearchResult]:
        """Search what a request at (user, session, agent, turn) can see.

        ``mode``: "hybrid" (default: bm25 + dense fused, see :mod:`headroom.memory.ranking`),
        "semantic" or "text". ``min_similarity`` bounds the cosine similarity of the results.
        """
        mode = mode or self.config.search_mode
        check_search_args(query, top_k, min_similarity, mode)
        f = search_filter(
            user_id, session_id, agent_id, turn_id, categories=categories,
            min_importance=min_importance, include_superseded=include_superseded,
            valid_at=valid_at, metadata=metadata, entity_refs=entity_refs,
        )  # fmt: skip
        return await self._call(
            self._engine.search, query, f, top_k=top_k, min_similarity=min_similarity, mode=mode
        )

    async def text_search(
        self,
        query: str,
        user_id: str,
        session_id: str | None = None,
        agent_id: str | None = None,
        turn_id: str | None = None,
        *,
        top_k: int = 10,
        **filters: Any,
    ) -> list[SearchResult]:
        """Full-text (FTS5 bm25) search; any user string is safe."""
        check_kwargs(filters, SEARCH_FILTER_KWARGS, "text_search")
        return await self.search(
            query, user_id, session_id, agent_id, turn_id, top_k=top_k, mode="text", **filters
        )

    async def recall(
        self, query: str, user_id: str, *, top_k: int = 5, **kwargs: Any
    ) -> list[Memory]:
        """The memories most relevant to ``query`` (search, returning memories only)."""
        check_kwargs(kwargs, ("session_id", "agent_id", "turn_id", "min_similarity", "mode",
                              *SEARCH_FILTER_KWARGS), "recall")  # fmt: skip
        return [r.memory for r in await self.search(query, user_id, top_k=top_k, **kwargs)]

    async def stats(self, user_id: str | None = None) -> dict[str, Any]:
        """Counts (total current, by category, by scope level, superseded) and database size."""
        return await self._call(self._engine.stats, user_id)

    async def rebuild_index(self) -> int:
        """Rebuild the vector index from the store; returns the number of vectors."""
        return await self._call(self._engine.rebuild_index)

    # -- lifecycle -------------------------------------------------------------------------------

    def _close_now(self) -> None:
        if self._closed:
            return
        self._closed = True  # new calls fail with ClosedError from here on
        try:
            self._readers.shutdown(wait=True)  # reads in flight finish first
            self._executor.submit(self._engine.close).result()
        finally:
            self._closed = True
            self._executor.shutdown(wait=True)

    async def close(self) -> None:
        """Persist the vector index and release the database and the embedder."""
        if self._closed:
            return
        await asyncio.get_running_loop().run_in_executor(None, self._close_now)

    async def __aenter__(self) -> HierarchicalMemory:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"HierarchicalMemory(db_path={str(self.config.db_path)!r}, {state})"
