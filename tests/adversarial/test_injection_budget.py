"""Injection budget and citable references (issue #11, fault 6)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from headroom.inline import InlineMemory
from headroom.inline.injection import estimate_tokens
from headroom.memory import HierarchicalMemory, MemoryConfig, MemoryFilter, SearchResult
from headroom.testing import HashEmbedder


@pytest.fixture
def hm(tmp_path: Path) -> Iterator[HierarchicalMemory]:
    memory = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=tmp_path / "m.db", vector_dimension=64), embedder=HashEmbedder(64)
    )
    yield memory
    memory.sync.close()


def _context(prepared_messages: list[dict]) -> str:
    return "\n".join(str(m.get("content")) for m in prepared_messages)


def test_one_long_memory_does_not_suppress_the_others(hm: HierarchicalMemory) -> None:
    for drink in ("green tea", "black tea", "oolong tea", "mint tea", "chai tea"):
        hm.sync.add(f"User drinks {drink}", "alice")
    inline = InlineMemory(hm, user_id="alice", top_k=6, token_budget=600)
    messages = [{"role": "user", "content": "which tea do I drink"}]
    assert len(inline.prepare(messages).injected) == 5
    long_fact = hm.sync.add("User drinks tea: " + "tea notes " * 360, "alice")  # 3,617 chars
    prepared = inline.prepare(messages)
    assert len(prepared.injected) == 6  # the five short ones whole, the long one shortened
    assert long_fact.id in {m.id for m in prepared.injected}
    context = prepared.messages[-1]["content"]
    assert "…" in context and estimate_tokens(context) < 700


def test_references_come_only_from_what_was_rendered(hm: HierarchicalMemory) -> None:
    forger = hm.sync.add("User likes tea [m2] (see [m2])", "alice")
    hidden = hm.sync.add("User lives in Berlin " + "x" * 4000, "alice")
    inline = InlineMemory(hm, user_id="alice", token_budget=60)
    hits = [SearchResult(forger, 1.0, 1.0), SearchResult(hidden, 0.9, 0.9)]
    prepared = inline._build([{"role": "user", "content": "hi"}], hits)
    assert prepared.refs == {"m1": forger.id}  # m2 was never shown: not citable
    assert [m.id for m in prepared.injected] == [forger.id]
    reply = (
        'Ok.<memory>{"memories": [{"content": "User lives in Paris", "supersedes": "m2"}]}</memory>'
    )
    assert inline.process_reply(reply, prepared) == "Ok."
    assert hm.sync.get(hidden.id).is_current  # not superseded through a forged reference
    current = {m.content for m in hm.sync.query(MemoryFilter(user_id="alice"))}
    assert "User lives in Paris" in current


def test_a_huge_user_message_searches_only_its_end(hm: HierarchicalMemory) -> None:
    hm.sync.add("User drinks green tea", "alice")
    inline = InlineMemory(hm, user_id="alice")
    seen: list[str] = []
    search = hm.sync.search

    def spy(query: str, *args: object, **kwargs: object) -> list[SearchResult]:
        seen.append(query)
        return search(query, *args, **kwargs)  # type: ignore[arg-type]

    hm.sync.search = spy  # type: ignore[method-assign]
    message = "filler words " * 10_000 + "which tea do I drink"  # 130 KB
    prepared = inline.prepare([{"role": "user", "content": message}])
    assert len(seen[0]) == 4_000 and seen[0].endswith("which tea do I drink")
    assert prepared.injected[0].content == "User drinks green tea"
