"""Per-user in-memory bm25 (adapters/sqlite/user_postings.py): the same ranking as FTS5, kept in
step with the store (this process and others), bounded, and never across users."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headroom.memory import HierarchicalMemory, MemoryConfig
from headroom.memory.ports import MemoryFilter, search_filter
from headroom.testing import HashEmbedder

WORDS = (
    "python rust coffee tea hiking jazz piano paris tokyo dog cat garden doctor dentist "
    "birthday tennis novel sister brother manager startup database redis docker beach "
    "running runs ran runner café naïve straße ÆØÅ 東京 foo_bar x1 2024"
).split()


def _open(path: Path) -> HierarchicalMemory:
    return HierarchicalMemory.create_sync(
        MemoryConfig(db_path=path, vector_dimension=32, cache_enabled=False),
        embedder=HashEmbedder(32),
    )


def _sentence(rng: random.Random) -> str:
    return "User " + " ".join(rng.choices(WORDS, k=rng.randint(1, 12)))


def _both(hm: HierarchicalMemory, query: str, f: MemoryFilter, k: int = 50):  # type: ignore[no-untyped-def]
    engine = hm._engine
    index = engine.text_index
    allowed = engine._allowed_pks(f, None)
    fts = index.search(query, k, f)  # type: ignore[union-attr]
    resident = index.search_visible(query, k, f, allowed)  # type: ignore[union-attr]
    return fts, resident


def _assert_same_ranking(fts: list[tuple[int, float]], resident: list[tuple[int, float]]) -> None:
    assert [round(s, 9) for _, s in fts] == [round(s, 9) for _, s in resident]
    # the same rows, except that rows tied at the last score may differ (FTS5's tie order)
    if fts:
        last = round(fts[-1][1], 9)
        assert {p for p, s in fts if round(s, 9) != last} == {
            p for p, s in resident if round(s, 9) != last
        }


@pytest.fixture
def populated(tmp_path: Path) -> HierarchicalMemory:
    hm = _open(tmp_path / "m.db")
    rng = random.Random(7)
    hm.sync.add_batch(
        [
            {
                "content": _sentence(rng),
                "user_id": f"u{i % 5}",
                "session_id": f"s{i % 3}",
                "scope": "session" if i % 4 == 0 else "user",
            }
            for i in range(600)
        ]
    )
    yield hm
    hm.sync.close()


def test_same_bm25_ranking_as_fts5(populated: HierarchicalMemory) -> None:
    rng = random.Random(3)
    for i in range(60):
        query = " ".join(rng.choices(WORDS, k=rng.randint(1, 6)))
        f = search_filter(f"u{i % 5}", session_id="s1" if i % 2 else None)
        _assert_same_ranking(*_both(populated, query, f))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=st.text(min_size=0, max_size=80))
def test_any_query_text_ranks_like_fts5(populated: HierarchicalMemory, query: str) -> None:
    query = query.encode("utf-8", "replace").decode("utf-8")
    _assert_same_ranking(*_both(populated, query, search_filter("u1")))


def test_follows_adds_updates_supersedes_and_deletes(populated: HierarchicalMemory) -> None:
    hm = populated
    f = search_filter("u2")
    assert hm.sync.search("quokka", "u2", mode="text") == []  # user u2 is now cached
    added = hm.sync.add("User saw a quokka", "u2")
    assert [r.memory.id for r in hm.sync.search("quokka", "u2", mode="text")] == [added.id]
    hm.sync.update(added.id, content="User saw a wombat", user_id="u2")
    assert hm.sync.search("quokka", "u2", mode="text") == []
    assert [r.memory.id for r in hm.sync.search("wombat", "u2", mode="text")] == [added.id]
    newer = hm.sync.supersede(added.id, "User saw two wombats", user_id="u2")
    assert [r.memory.id for r in hm.sync.search("wombat", "u2", mode="text")] == [newer.id]
    hm.sync.delete(newer.id, user_id="u2")
    assert hm.sync.search("wombat", "u2", mode="text") == []
    _assert_same_ranking(*_both(hm, "python wombat coffee", f))


def test_follows_writes_from_another_process(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    hm, other = _open(path), _open(path)
    try:
        hm.sync.add("User likes herons", "ann")
        assert len(hm.sync.search("heron", "ann", mode="text")) == 1
        m = other.sync.add("User photographs herons", "ann")
        assert len(hm.sync.search("heron", "ann", mode="text")) == 2
        other.sync.update(m.id, content="User photographs egrets", user_id="ann")
        assert [r.memory.id for r in hm.sync.search("egret", "ann", mode="text")] == [m.id]
        other.sync.delete(m.id, user_id="ann")
        assert hm.sync.search("egret", "ann", mode="text") == []
        _assert_same_ranking(*_both(hm, "heron egret", search_filter("ann")))
    finally:
        hm.sync.close()
        other.sync.close()


def test_many_changes_and_compaction_keep_the_ranking(populated: HierarchicalMemory) -> None:
    hm = populated
    rng = random.Random(11)
    mems = hm.sync.add_batch([{"content": _sentence(rng), "user_id": "u3"} for _ in range(300)])
    hm.sync.search("python", "u3", mode="text")
    for m in mems[:200]:  # kill most of the new rows: the user's arrays are compacted
        hm.sync.delete(m.id, user_id="u3")
    for query in ("python coffee", "naïve café", "runs"):
        _assert_same_ranking(*_both(hm, query, search_filter("u3")))


def test_bounded_memory_evicts_users_and_stays_correct(populated: HierarchicalMemory) -> None:
    postings = populated._engine.text_index._postings  # type: ignore[union-attr]
    postings.max_postings = 50  # far below one user's postings: every search evicts
    for i in range(10):
        _assert_same_ranking(*_both(populated, "python tea dog", search_filter(f"u{i % 5}")))
    assert len(postings._users) <= 2


def test_never_returns_another_users_rows(populated: HierarchicalMemory) -> None:
    engine = populated._engine
    index = engine.text_index
    own = engine._allowed_pks(search_filter("u0"), None)
    others = engine._allowed_pks(search_filter("u1"), None)
    # even when handed someone else's ids as "allowed", u0's postings only hold u0's rows
    hits = index.search_visible("python coffee tea", 100, search_filter("u0"), others)  # type: ignore[union-attr]
    assert hits == []
    hits = index.search_visible("python coffee tea", 100, search_filter("u0"), own)  # type: ignore[union-attr]
    assert hits and set(p for p, _ in hits) <= set(own.tolist())
    both = np.union1d(own, others)
    hits = index.search_visible("python coffee tea", 1000, search_filter("u0"), both)  # type: ignore[union-attr]
    assert set(p for p, _ in hits) <= set(own.tolist())


def test_row_id_cache_survives_other_users_writes_only(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    hm, other = _open(path), _open(path)
    store = hm._engine.store
    calls: list[object] = []
    original = store.matching_pks

    def counting(f: MemoryFilter):  # type: ignore[no-untyped-def]
        calls.append(f.user_id)
        return original(f)

    store.matching_pks = counting  # type: ignore[method-assign]
    try:
        a1 = hm.sync.add("User likes herons", "alice")
        hm.sync.add("User likes otters", "bob")
        assert len(hm.sync.search("herons", "alice")) == 1
        calls.clear()
        hm.sync.add("User likes seals", "bob")  # another user's write, this process
        other.sync.add("User likes whales", "carol")  # and another process's
        assert [r.memory.id for r in hm.sync.search("herons", "alice", mode="text")] == [a1.id]
        assert calls == []  # alice's row ids were still good
        other.sync.add("User photographs herons", "alice")  # alice's own rows changed
        assert len(hm.sync.search("herons", "alice", mode="text")) == 2
        assert calls == ["alice"]
        other.sync.delete(a1.id, user_id="alice")  # a deleted row drops the entry too
        hits = hm.sync.search("herons", "alice", mode="text")
        assert [r.memory.content for r in hits] == ["User photographs herons"]
        assert calls == ["alice", "alice"]
    finally:
        hm.sync.close()
        other.sync.close()
