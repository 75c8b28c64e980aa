"""LRUMemoryCache hands out copies: nothing a caller does to a returned value reaches the cache."""

from __future__ import annotations

import copy

from headroom.memory.adapters.lru_cache import LRUMemoryCache
from headroom.memory.models import Memory, SearchResult

_TEMPLATE = SearchResult(
    Memory(
        id="m1", content="User likes herons", user_id="alice", entity_refs=["herons"],
        metadata={"source": {"kind": "chat", "turns": [1, 2]}, "n": 3},
    ),
    similarity=0.5, score=1.0, text_rank=1, vector_rank=2,
)  # fmt: skip


def _result() -> SearchResult:
    return copy.deepcopy(_TEMPLATE)


def test_returned_results_are_independent_copies() -> None:
    cache = LRUMemoryCache(10)
    original = [_result()]
    cache.put("k", original)
    original[0].memory.metadata["n"] = 99  # the caller's own value after put
    got = cache.get("k")
    assert got == [_result()] and got[0] is not original[0]
    got[0].score = -1.0
    got[0].memory.entity_refs.append("x")
    got[0].memory.metadata["source"]["turns"].append(3)
    got.append(_result())
    assert cache.get("k") == [_result()]
    assert cache.get("k") == copy.deepcopy([_result()])


def test_memories_and_other_values_are_copied_too() -> None:
    cache = LRUMemoryCache(2)
    cache.put("m", _result().memory)
    cache.get("m").metadata["n"] = 0
    assert cache.get("m").metadata["n"] == 3
    cache.put("d", {"a": [1]})
    cache.get("d")["a"].append(2)
    assert cache.get("d") == {"a": [1]}
    cache.put("x", 1)  # beyond max_size: the least recently used entry goes
    assert cache.get("m") is None and len(cache) == 2
