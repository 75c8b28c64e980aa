"""Store rules on both backends: crowded neighbours, concurrent supersedes, atomic writes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from headroom.memory import (
    HierarchicalMemory,
    MemoryConfig,
    MemoryFilter,
    StorageError,
    SupersededError,
)
from headroom.testing import FixedEmbedder, HashEmbedder

pytestmark = pytest.mark.contract


def test_crowded_neighbours_never_hide_a_users_best_matches(
    store_url: Path | str, backend: str
) -> None:
    """One user with 5 memories, another with 10k vectors all closer to the query.

    On PostgreSQL both plans are checked on the same data: the exact scan of the visible rows
    (AUTO, small visible set) and the HNSW index with iterative scans (forced).
    """
    rng = np.random.default_rng(1)
    dim = 32
    query = rng.normal(size=dim)
    query /= np.linalg.norm(query)
    table = {"query": query}
    for i in range(10_000):
        v = query + 0.05 * rng.normal(size=dim)
        table[f"crowd {i}"] = v / np.linalg.norm(v)
    mine = []
    for i in range(5):
        v = query + (0.6 + 0.1 * i) * rng.normal(size=dim)
        table[f"alice {i}"] = v / np.linalg.norm(v)
        mine.append(f"alice {i}")
    expected = sorted(mine, key=lambda t: -float(np.dot(table[t], query)))
    # AUTO builds the HNSW index when a memory with > hnsw_min_entries vectors is opened
    cfg = MemoryConfig(
        db_path=store_url, vector_dimension=dim, cache_enabled=False, hnsw_min_entries=5_000
    )
    hm = HierarchicalMemory.create_sync(cfg, embedder=FixedEmbedder(table, dim))
    for start in range(0, 10_000, 2_500):
        hm.sync.add_batch(
            [{"content": f"crowd {i}", "user_id": "bob"} for i in range(start, start + 2_500)]
        )
    for text in mine:
        hm.sync.add(text, "alice")
    hm.sync.close()
    hm = HierarchicalMemory.create_sync(cfg, embedder=FixedEmbedder(table, dim))
    try:
        if backend == "postgres":
            assert hm._engine.store.has_hnsw  # type: ignore[attr-defined]
        plans = ["exact", "hnsw"] if backend == "postgres" else ["faiss"]
        for plan in plans:
            index = hm._engine.vector_index  # type: ignore[attr-defined]
            if plan == "hnsw":
                index.exact_max = 0  # as VectorBackend.HNSW: always the approximate index
            started = time.perf_counter()
            hits = hm.sync.search("query", "alice", mode="semantic", top_k=5, min_similarity=-1.0)
            assert [h.content for h in hits] == expected, plan
            assert time.perf_counter() - started < 10  # bounded, not a benchmark
            hybrid = hm.sync.search("query", "alice", top_k=10, min_similarity=-1.0)
            assert {h.content for h in hybrid} == set(mine), plan
            if backend == "postgres":
                assert index.last_plan == plan
    finally:
        hm.sync.close()


CHILD = """
import sys, time
from pathlib import Path
from headroom.memory import HierarchicalMemory, MemoryConfig, SupersededError
from headroom.testing import HashEmbedder
url, old_id, tag, go = sys.argv[1:5]
hm = HierarchicalMemory.create_sync(
    MemoryConfig(db_path=url, vector_dimension=64, cache_enabled=False), embedder=HashEmbedder(64)
)
hm.sync.get(old_id)
while not Path(go).exists():
    time.sleep(0.005)
try:
    hm.sync.supersede(old_id, f"User now lives in {tag}")
    print("ok")
except SupersededError as exc:
    print("superseded", exc)
hm.sync.close()
"""


def test_concurrent_supersedes_leave_exactly_one_successor(
    store_url: Path | str, tmp_path: Path
) -> None:
    cfg = MemoryConfig(db_path=store_url, vector_dimension=64)
    hm = HierarchicalMemory.create_sync(cfg, embedder=HashEmbedder(64))
    old = hm.sync.add("User lives in Paris", "u")
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(CHILD), str(store_url), old.id, tag, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("Berlin", "Rome")
    ]
    time.sleep(2.0)  # both children open and waiting
    go.touch()
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outs.append(out.split()[0])
    assert sorted(outs) == ["ok", "superseded"]
    versions = hm.sync.query(MemoryFilter(user_id="u", include_superseded=True))
    assert len(versions) == 2
    current = hm.sync.query(MemoryFilter(user_id="u"))
    assert len(current) == 1 and current[0].supersedes == old.id
    assert [m.id for m in hm.sync.get_history(current[0].id)] == [old.id, current[0].id]
    hm.sync.close()


def test_a_failed_supersede_writes_nothing(store_url: Path | str) -> None:
    """The close of the old version and the insert of the new one are one transaction."""
    hm = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=store_url, vector_dimension=64), embedder=HashEmbedder(64)
    )
    a = hm.sync.add("User lives in Paris", "u")
    b = hm.sync.add("User likes tea", "u")
    store = hm._engine.store  # type: ignore[attr-defined]
    closed = a.copy()
    closed.superseded_by = b.id
    clash = b.copy()  # the new version reuses an existing id: the insert fails
    with pytest.raises(StorageError):
        store.supersede(closed, clash, np.zeros(64, dtype=np.float32))
    assert store.get(a.id).superseded_by is None
    assert hm.sync.count(MemoryFilter(user_id="u", include_superseded=True)) == 2
    with pytest.raises(SupersededError):
        hm.sync.supersede(a.id, "x") and hm.sync.supersede(a.id, "y")
    hm.sync.close()


def test_import_is_one_transaction(store_url: Path | str) -> None:
    hm = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=store_url, vector_dimension=64), embedder=HashEmbedder(64)
    )
    existing = hm.sync.add("User likes tea", "u")
    store = hm._engine.store  # type: ignore[attr-defined]
    fresh = existing.copy()
    fresh.id = "fresh-id"
    with pytest.raises(StorageError):  # the second record clashes: the first is not kept either
        store.insert([fresh, existing], np.zeros((2, 64), dtype=np.float32))
    assert store.get("fresh-id") is None
    hm.sync.close()


def test_text_search_weighs_rare_words_higher(store_url: Path | str) -> None:
    """bm25 on both backends: the row matching the rare query word ranks first."""
    hm = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=store_url, vector_dimension=64), embedder=HashEmbedder(64)
    )
    hm.sync.add_batch([{"content": f"User drinks coffee {i}", "user_id": "u"} for i in range(12)])
    hm.sync.add("User owns a kayak", "u")
    hm.sync.add("User owns a kayak", "other")  # other users never count or show
    hits = hm.sync.search("coffee kayak", "u", mode="text", top_k=3)
    assert hits[0].content == "User owns a kayak" and hits[0].memory.user_id == "u"
    assert all(h.memory.user_id == "u" for h in hits)
    hm.sync.close()


OPENER = """
import sys
from headroom.memory import HierarchicalMemory, MemoryConfig
from headroom.testing import HashEmbedder
hm = HierarchicalMemory.create_sync(
    MemoryConfig(db_path=sys.argv[1], vector_dimension=64), embedder=HashEmbedder(64)
)
hm.sync.add(f"opened by {sys.argv[2]}", "u")
hm.sync.close()
"""


def test_processes_opening_a_fresh_store_together(store_url: Path | str) -> None:
    """Schema creation is serialized: three processes opening an empty store all succeed."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, str(store_url), str(i)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    hm = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=store_url, vector_dimension=64), embedder=HashEmbedder(64)
    )
    assert hm.sync.count(MemoryFilter(user_id="u")) == 3
    hm.sync.close()


def test_count_without_conditions_counts_every_row(store_url: Path | str) -> None:
    """A filter with no condition still reads the table (it once counted 1 on any store)."""
    hm = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=store_url, vector_dimension=64), embedder=HashEmbedder(64)
    )
    everything = MemoryFilter(include_superseded=True)
    assert hm.sync.count(everything) == 0
    hm.sync.add_batch([{"content": f"fact {i}", "user_id": f"u{i % 2}"} for i in range(3)])
    assert hm.sync.count(everything) == 3 == len(hm.sync.query(everything))
    hm.sync.close()
