"""Persistence, cross-process consistency and index rebuilds on real SQLite + FAISS files."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from headroom.memory import DimensionMismatchError, HierarchicalMemory, MemoryConfig, MemoryFilter
from headroom.testing import FixedEmbedder, HashEmbedder

CHILD_PRELUDE = """
import sys
from headroom.memory import HierarchicalMemory, MemoryConfig, MemoryFilter
from headroom.testing import HashEmbedder
cfg = MemoryConfig(db_path=sys.argv[1], vector_dimension=64)
hm = HierarchicalMemory.create_sync(cfg, embedder=HashEmbedder(64))
"""


def run_child(body: str, *args: str) -> str:
    code = CHILD_PRELUDE + textwrap.dedent(body)
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def open_hm(db: Path | str) -> HierarchicalMemory:
    return HierarchicalMemory.create_sync(
        MemoryConfig(db_path=db, vector_dimension=64), embedder=HashEmbedder(64)
    )


@pytest.mark.contract  # SQLite and PostgreSQL
def test_memories_survive_a_new_process(store_url: Path | str) -> None:
    hm = open_hm(store_url)
    hm.sync.add("User prefers Go for performance-critical code", "bob")
    hm.sync.close()
    out = run_child(
        """
        hits = hm.sync.search("which language for performance", "bob", "afternoon")
        print(hits[0].content if hits else "NOTHING")
        hm.sync.close()
        """,
        str(store_url),
    )
    assert out.strip() == "User prefers Go for performance-critical code"


@pytest.mark.contract  # SQLite and PostgreSQL
def test_writes_of_another_process_are_searchable_without_reopening(store_url: Path | str) -> None:
    hm = open_hm(store_url)
    hm.sync.add("first memory about kayaks", "u")
    assert len(hm.sync.search("kayaks", "u", mode="semantic")) == 1
    run_child('hm.sync.add("second memory about kayaks", "u"); hm.sync.close()', str(store_url))
    hits = hm.sync.search("kayaks", "u", mode="semantic")
    assert sorted(h.content for h in hits) == [
        "first memory about kayaks",
        "second memory about kayaks",
    ]
    run_child(
        """
        m = hm.sync.query(MemoryFilter(user_id="u"))
        hm.sync.delete([x for x in m if x.content.startswith("first")][0].id); hm.sync.close()
        """,
        str(store_url),
    )
    assert [h.content for h in hm.sync.search("kayaks", "u", mode="semantic")] == [
        "second memory about kayaks"
    ]
    hm.sync.close()


@pytest.mark.contract  # SQLite and PostgreSQL
def test_two_processes_writing_concurrently_lose_nothing(store_url: Path | str) -> None:
    open_hm(store_url).sync.close()  # create the schema first
    body = """
    import sys
    tag = sys.argv[2]
    for i in range(40):
        hm.sync.add(f"memory {i} from writer {tag}", "u")
    hm.sync.add_batch([{"content": f"batch {i} from {tag}", "user_id": "u"} for i in range(20)])
    hm.sync.close()
    """
    code = CHILD_PRELUDE + textwrap.dedent(body)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(store_url), tag], stderr=subprocess.PIPE, text=True
        )
        for tag in ("A", "B")
    ]
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    hm = open_hm(store_url)
    assert hm.sync.count(MemoryFilter(user_id="u")) == 120
    assert hm.sync.stats()["vector_index_size"] == 120
    hits = hm.sync.search("memory 7 from writer B", "u", mode="semantic", top_k=1)
    assert hits[0].content == "memory 7 from writer B"
    hm.sync.close()


@pytest.mark.parametrize("damage", ["delete", "truncate", "garbage", "stale"])
def test_vector_index_is_rebuilt_when_missing_corrupt_or_stale(db_path: Path, damage: str) -> None:
    hm = open_hm(db_path)
    hm.sync.add_batch(
        [{"content": f"note number {i} about gardening", "user_id": "u"} for i in range(30)]
    )
    hm.sync.close()
    index = Path(f"{db_path}.faiss")
    assert index.exists()
    if damage == "delete":
        index.unlink()
    elif damage == "truncate":
        index.write_bytes(index.read_bytes()[:100])
    elif damage == "garbage":
        index.write_bytes(b"not a faiss index" * 100)
    else:  # a process crashed after writing to the store but before saving its index
        saved = index.read_bytes()
        hm = open_hm(db_path)
        hm.sync.add("a late note about roses", "u")
        hm.sync.close()
        index.write_bytes(saved)
        Path(f"{index}.json").unlink(missing_ok=True)
    hm = open_hm(db_path)
    expected = 31 if damage == "stale" else 30
    assert hm.sync.stats()["vector_index_size"] == expected
    hits = hm.sync.search("note number 7 about gardening", "u", mode="semantic", top_k=1)
    assert hits[0].content == "note number 7 about gardening"
    hm.sync.close()


@pytest.mark.contract  # SQLite and PostgreSQL
def test_dimension_mismatch_is_a_clear_error(store_url: Path | str) -> None:
    open_hm(store_url).sync.close()
    with pytest.raises(DimensionMismatchError, match="64"):
        HierarchicalMemory.create_sync(
            MemoryConfig(db_path=store_url, vector_dimension=32), embedder=HashEmbedder(32)
        )
    with pytest.raises(DimensionMismatchError, match="vector_dimension"):
        HierarchicalMemory.create_sync(MemoryConfig(db_path=store_url), embedder=HashEmbedder(64))
    with pytest.raises(DimensionMismatchError, match="embedded with"):
        HierarchicalMemory.create_sync(
            MemoryConfig(db_path=store_url, vector_dimension=64),
            embedder=HashEmbedder(64, model_name="other"),
        )


@pytest.mark.contract  # SQLite and PostgreSQL
def test_a_users_best_match_survives_crowded_neighbours(store_url: Path | str) -> None:
    rng = np.random.default_rng(0)
    dim = 32
    query = rng.normal(size=dim)
    query /= np.linalg.norm(query)
    table = {"query": query}
    crowd = []
    for i in range(3000):  # other users' vectors, all closer to the query than alice's
        v = query + 0.05 * rng.normal(size=dim)
        table[f"crowd {i}"] = v / np.linalg.norm(v)
        crowd.append({"content": f"crowd {i}", "user_id": f"other{i % 7}"})
    far = query + 0.8 * rng.normal(size=dim)
    table["alice only"] = far / np.linalg.norm(far)
    hm = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=store_url, vector_dimension=dim), embedder=FixedEmbedder(table, dim)
    )
    hm.sync.add_batch(crowd)
    hm.sync.add("alice only", "alice")
    hits = hm.sync.search("query", "alice", mode="semantic", top_k=5)
    assert [h.content for h in hits] == ["alice only"]
    hits = hm.sync.search("query", "alice", top_k=5)
    assert [h.content for h in hits] == ["alice only"]
    hm.sync.close()
