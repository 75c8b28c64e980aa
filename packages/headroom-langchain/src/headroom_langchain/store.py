"""HeadroomStore: a LangGraph ``BaseStore`` backed by Headroom's HierarchicalMemory.

Every item is one Headroom memory. Its ``content`` (what the other adapters recall and inject) is
the text of the item's index fields (see :mod:`._store_index`, LangGraph's ``IndexConfig``
semantics: ``fields``, ``embed``, ``dims``). The metadata holds ``lg_namespace`` (the namespace as a
list), ``lg_ns`` (the same as a JSON string, for exact lookups), ``lg_key``, ``lg_value`` (the
value), ``lg_created_at`` and ``lg_vectors`` (the item's embeddings; empty for ``index=False``).
``put`` on an existing (namespace, key) *supersedes* the memory, so the previous values stay in its
version history; ``delete`` removes all versions.

Namespace -> Headroom scope (``layout``, default ``("user", None, "session", "agent")``, the order
of LangChain's long-term-memory docs, ``(user_id, "memories")``): each position of the layout names
what that namespace element is; ``None`` is a free label::

    ("alice",)                             -> USER level of user "alice"
    ("alice", "memories")                  -> USER level of user "alice"
    ("alice", "memories", "s1")            -> SESSION level: session "s1" of "alice"
    ("alice", "memories", "s1", "planner") -> AGENT level: agent "planner" in session "s1"
    longer namespaces                      -> as their first four elements; the rest is a label

so ``(user_id, "memories")`` items are exactly the long-term memories that ``with_memory`` and the
other adapters recall for that user. For the ``("memories", user_id)`` order (LangMem's), pass
``layout=(None, "user", "session", "agent")``. Every read or change of an existing item names its
owner (the user of its namespace). Search follows LangGraph semantics (namespace prefixes, value
``filter``, ``limit``/``offset``); with ``query`` every indexed item is scored (cosine similarity,
best over its vectors) and ranked, items stored with ``index=False`` follow with ``score=None``.
``ttl`` is not supported. Async methods run the same code in a worker thread, in call order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langgraph.store.base import (
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)

from headroom.memory import (
    HierarchicalMemory,
    MemoryCategory,
    MemoryConfig,
    MemoryFilter,
    MemoryRecord,
)
from headroom.memory.ports import Embedder

from ._memory import resolve_memory
from ._store_index import StoreIndex, decode_vectors

__all__ = ["DEFAULT_LAYOUT", "DEFAULT_USER_ID", "HeadroomStore"]

logger = logging.getLogger(__name__)

DEFAULT_LAYOUT: tuple[str | None, ...] = ("user", None, "session", "agent")
DEFAULT_USER_ID = "langgraph"
SOURCE = "langgraph"


class HeadroomStore(BaseStore):
    """LangGraph long-term memory store over a Headroom database (see the module docstring)."""

    supports_ttl = False

    def __init__(
        self,
        memory: HierarchicalMemory | None = None,
        *,
        db_path: str | Path | None = None,
        config: MemoryConfig | None = None,
        embedder: Embedder | None = None,
        user_id: str | None = None,
        layout: Sequence[str | None] = DEFAULT_LAYOUT,
        index: Mapping[str, Any] | Sequence[str] | None = None,
        category: MemoryCategory | str = MemoryCategory.FACT,
        importance: float = 0.5,
    ) -> None:
        self.memory, self._owned = resolve_memory(
            memory, db_path=db_path, config=config, embedder=embedder
        )
        try:
            self.index = StoreIndex(self.memory, index)
        except BaseException:
            self.close()
            raise
        self.user_id = user_id or DEFAULT_USER_ID
        self.layout = tuple(layout)
        self.category = MemoryCategory.parse(category)
        self.importance = importance
        self._lock = threading.Lock()
        self._async_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def index_config(self) -> dict[str, Any]:
        """The effective ``IndexConfig`` (``dims`` filled in from the embedder when omitted)."""
        return self.index.config

    def close(self) -> None:
        """Close the memory if this store opened it."""
        if self._owned:
            self.memory.sync.close()

    # -- namespace mapping -----------------------------------------------------------------------

    def _position(self, role: str) -> int | None:
        return self.layout.index(role) if role in self.layout else None

    def _id_at(self, namespace: tuple[str, ...], role: str) -> str | None:
        pos = self._position(role)
        return namespace[pos] if pos is not None and pos < len(namespace) else None

    def scope_ids(self, namespace: tuple[str, ...]) -> tuple[str, str | None, str | None]:
        """The (user_id, session_id, agent_id) a namespace maps to."""
        session = self._id_at(namespace, "session")
        agent = self._id_at(namespace, "agent") if session is not None else None
        return self._id_at(namespace, "user") or self.user_id, session, agent

    def _prefix_user(self, prefix: tuple[str, ...]) -> str | None:
        """The user every item under ``prefix`` belongs to, or None if it may span users."""
        pos = self._position("user")
        if pos is None or len(prefix) <= pos:
            return self.user_id if pos is None else None
        return prefix[pos] if prefix[pos] != "*" else None

    # -- ops -------------------------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        with self._lock:  # find-then-write of one key must not interleave
            return self._batch(list(ops))

    def _batch(self, ops: list[Op]) -> list[Result]:
        results: list[Result] = []
        for op in ops:
            if isinstance(op, GetOp):
                results.append(self._get(op.namespace, op.key))
            elif isinstance(op, PutOp):
                if op.ttl is not None:
                    raise NotImplementedError("HeadroomStore does not support ttl")
                self._put(op)
                results.append(None)
            elif isinstance(op, SearchOp):
                results.append(self._search(op))
            elif isinstance(op, ListNamespacesOp):
                results.append(self._list_namespaces(op))
            else:
                raise ValueError(f"unknown store operation: {op!r}")
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        loop = asyncio.get_running_loop()
        lock = self._async_locks.setdefault(loop, asyncio.Lock())  # FIFO: calls run in order
        async with lock:
            return await asyncio.to_thread(self.batch, list(ops))

    def _find(self, namespace: tuple[str, ...], key: str) -> MemoryRecord | None:
        user_id, _, _ = self.scope_ids(namespace)
        found = self.memory.sync.query(
            MemoryFilter(
                user_id=user_id,
                metadata={"source": SOURCE, "lg_ns": _ns_json(namespace), "lg_key": key},
                limit=1,
            )
        )
        return found[0] if found else None

    def _get(self, namespace: tuple[str, ...], key: str) -> Item | None:
        memory = self._find(namespace, key)
        return _to_item(memory) if memory is not None else None

    def _put(self, op: PutOp) -> None:
        existing = self._find(op.namespace, op.key)
        if op.value is None:
            if existing is not None:
                self.memory.sync.delete(existing.id, user_id=existing.user_id, include_history=True)
            return
        now = datetime.now(UTC).isoformat()
        value = dict(op.value)
        texts = self.index.texts(value, op.index)
        metadata: dict[str, Any] = {
            "source": SOURCE,
            "lg_ns": _ns_json(op.namespace),
            "lg_namespace": list(op.namespace),
            "lg_key": op.key,
            "lg_value": value,
            "lg_created_at": existing.metadata.get("lg_created_at", now) if existing else now,
        }
        metadata["lg_vectors"] = self.index.encode(texts) if op.index is not False else []
        content = self.index.content(value, texts or self.index.texts(value))
        if existing is not None:
            self.memory.sync.supersede(
                existing.id, content, user_id=existing.user_id, metadata=metadata
            )
            return
        user_id, session_id, agent_id = self.scope_ids(op.namespace)
        self.memory.sync.add(
            content, user_id, session_id, agent_id,
            category=self.category, importance=self.importance, metadata=metadata,
        )  # fmt: skip

    def _candidates(self, prefix: tuple[str, ...]) -> list[MemoryRecord]:
        memories = self.memory.sync.query(
            MemoryFilter(user_id=self._prefix_user(prefix), metadata={"source": SOURCE})
        )
        condition = MatchCondition(match_type="prefix", path=prefix)
        return [m for m in memories if _matches(condition, _namespace_of(m))]

    def _search(self, op: SearchOp) -> list[SearchItem]:
        candidates = [
            m for m in self._candidates(op.namespace_prefix)
            if not op.filter or all(_compare(m.metadata["lg_value"].get(k), v) for k, v in op.filter.items())
        ]  # fmt: skip
        candidates.sort(key=lambda m: m.created_at, reverse=True)
        scores: dict[str, float] = {}
        if op.query and candidates:
            scores = self._scores(op.query, candidates)
            scored = sorted((m for m in candidates if m.id in scores), key=lambda m: -scores[m.id])
            candidates = scored + [m for m in candidates if m.id not in scores]
        page = candidates[op.offset : op.offset + op.limit]
        return [_to_search_item(m, scores.get(m.id)) for m in page]

    def _scores(self, query: str, candidates: list[MemoryRecord]) -> dict[str, float]:
        """The score of every indexed candidate (items put with ``index=False`` have none)."""
        vector = self.index.query_vector(query)
        scores: dict[str, float] = {}
        legacy: list[MemoryRecord] = []
        for m in candidates:
            encoded = m.metadata.get("lg_vectors")
            if encoded is None:  # written before vectors were kept: embed its content now
                legacy.append(m)
            elif encoded:
                scores[m.id] = self.index.score(vector, decode_vectors(encoded))
        if legacy:
            fresh = decode_vectors(self.index.encode([m.content for m in legacy]))
            for m, v in zip(legacy, fresh, strict=True):
                scores[m.id] = self.index.score(vector, [v])
        return scores

    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        memories = self.memory.sync.query(MemoryFilter(metadata={"source": SOURCE}))
        namespaces = {_namespace_of(m) for m in memories}
        if op.match_conditions:
            namespaces = {
                ns for ns in namespaces if all(_matches(c, ns) for c in op.match_conditions)
            }
        if op.max_depth is not None:
            namespaces = {ns[: op.max_depth] for ns in namespaces}
        return sorted(namespaces)[op.offset : op.offset + op.limit]


# -- helpers -----------------------------------------------------------------------------------


def _ns_json(namespace: tuple[str, ...]) -> str:
    return json.dumps(list(namespace), ensure_ascii=False)


def _namespace_of(memory: MemoryRecord) -> tuple[str, ...]:
    return tuple(memory.metadata.get("lg_namespace") or ())


def _timestamps(memory: MemoryRecord) -> tuple[datetime, datetime]:
    raw = memory.metadata.get("lg_created_at")
    created = datetime.fromisoformat(raw) if isinstance(raw, str) else memory.created_at
    return created, memory.created_at


def _to_item(memory: MemoryRecord) -> Item:
    created, updated = _timestamps(memory)
    return Item(
        value=dict(memory.metadata["lg_value"]), key=memory.metadata["lg_key"],
        namespace=_namespace_of(memory), created_at=created, updated_at=updated,
    )  # fmt: skip


def _to_search_item(memory: MemoryRecord, score: float | None) -> SearchItem:
    created, updated = _timestamps(memory)
    return SearchItem(
        namespace=_namespace_of(memory), key=memory.metadata["lg_key"],
        value=dict(memory.metadata["lg_value"]), created_at=created, updated_at=updated, score=score,
    )  # fmt: skip


def _matches(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    pairs = (
        zip(namespace, path, strict=False)
        if condition.match_type == "prefix"
        else zip(reversed(namespace), reversed(path), strict=False)
    )
    return all(p == "*" or k == p for k, p in pairs)


_OPERATORS = {
    "$eq": lambda a, b: a == b,
    "$ne": lambda a, b: a != b,
    "$gt": lambda a, b: a is not None and a > b,
    "$gte": lambda a, b: a is not None and a >= b,
    "$lt": lambda a, b: a is not None and a < b,
    "$lte": lambda a, b: a is not None and a <= b,
    "$in": lambda a, b: a in b,
    "$nin": lambda a, b: a not in b,
}


def _compare(actual: Any, expected: Any) -> bool:
    """LangGraph's filter semantics: equality, nested dicts, and ``$eq``/``$gt``/... operators."""
    if isinstance(expected, dict):
        if any(str(k).startswith("$") for k in expected):
            try:
                return all(_OPERATORS[op](actual, operand) for op, operand in expected.items())
            except (KeyError, TypeError):
                return False
        return isinstance(actual, dict) and all(
            _compare(actual.get(k), v) for k, v in expected.items()
        )
    return bool(actual == expected)
