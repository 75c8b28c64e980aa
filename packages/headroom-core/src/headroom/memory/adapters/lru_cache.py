"""LRUMemoryCache: a bounded, thread-safe LRU that hands out deep copies.

The values it holds are search results and memories: those are copied field by field (their
only mutable parts are the ``entity_refs`` list and the JSON ``metadata``), ~20x faster than
``copy.deepcopy``, so a cache hit of ten results costs microseconds; anything else is deep-copied.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from typing import Any

from headroom.memory.models import Memory, SearchResult

__all__ = ["LRUMemoryCache"]


class LRUMemoryCache:
    """Least-recently-used cache. Values are copied in and out, so callers cannot mutate entries."""

    def __init__(self, max_size: int = 1000) -> None:
        self.max_size = max_size
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Any | None:
        with self._lock:
            if key not in self._items:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return _copy(self._items[key])

    def put(self, key: str, value: Any) -> None:
        if self.max_size <= 0:
            return
        with self._lock:
            self._items[key] = _copy(value)
            self._items.move_to_end(key)
            while len(self._items) > self.max_size:
                self._items.popitem(last=False)

    def invalidate(self, key: str | None = None) -> None:
        with self._lock:
            if key is None:
                self._items.clear()
            else:
                self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


def _json_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_copy(v) for v in value]
    return value  # str, int, float, bool, None: immutable


def _shallow(obj: Any) -> Any:
    """A shallow copy of a plain dataclass instance (``copy.copy`` without its protocol)."""
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__)
    return new


def _copy_memory(memory: Memory) -> Memory:
    out: Memory = _shallow(memory)
    out.entity_refs = list(memory.entity_refs)
    out.metadata = _json_copy(memory.metadata)
    return out


def _copy(value: Any) -> Any:
    """A deep copy, fast for what the engine caches (lists of results, memories)."""
    if type(value) is list:
        return [_copy(v) for v in value]
    if type(value) is SearchResult:
        out: SearchResult = _shallow(value)
        out.memory = _copy_memory(value.memory)
        return out
    if type(value) is Memory:
        return _copy_memory(value)
    return copy.deepcopy(value)
