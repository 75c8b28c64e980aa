"""``headroom memory migrate``: SQLite -> PostgreSQL -> SQLite, nothing re-embedded, verified."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from headroom.cli.main import main
from headroom.memory import HierarchicalMemory, MemoryConfig, MemoryFilter
from headroom.testing import HashEmbedder

pytestmark = pytest.mark.postgres


@pytest.fixture
def backend() -> str:
    return "postgres"


def _vectors(hm: HierarchicalMemory) -> dict[str, np.ndarray]:
    store = hm._engine.store  # type: ignore[attr-defined]
    pks = store.matching_pks(MemoryFilter(include_superseded=True))
    mems = store.get_by_pks(pks)
    return {mems[p].id: v for p, v in store.get_vectors(pks).items()}


def _snapshot(location: Path | str) -> tuple[list[dict], dict[str, np.ndarray]]:
    hm = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=location, vector_dimension=64), embedder=HashEmbedder(64)
    )
    try:
        rows = [m.to_dict() for m in hm.sync.query(MemoryFilter(include_superseded=True))]
        return sorted(rows, key=lambda r: r["id"]), _vectors(hm)
    finally:
        hm.sync.close()


def test_migrate_both_ways_copies_everything_without_reembedding(
    tmp_path: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "memory.db"
    hm = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=source, vector_dimension=64), embedder=HashEmbedder(64)
    )
    old = hm.sync.add("User works at Google", "alice", "s1", metadata={"k": 1})
    hm.sync.supersede(old.id, "User now works at Anthropic")
    hm.sync.add_batch([{"content": f"fact {i}", "user_id": f"u{i % 3}"} for i in range(25)])
    hm.sync.close()
    expected_rows, expected_vecs = _snapshot(source)

    assert main(["memory", "migrate", "--from", str(source), "--to", store_url]) == 0
    assert "migrated 27 records" in capsys.readouterr().out
    rows, vecs = _snapshot(store_url)
    assert rows == expected_rows  # ids, dates, chains, scopes, metadata
    assert set(vecs) == set(expected_vecs)
    assert all(np.allclose(vecs[i], expected_vecs[i]) for i in vecs)

    # the copy is a working memory: history and text search
    pg = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=store_url, vector_dimension=64), embedder=HashEmbedder(64)
    )
    current = pg.sync.query(MemoryFilter(user_id="alice"))
    assert [m.content for m in pg.sync.get_history(current[0].id)] == [
        "User works at Google",
        "User now works at Anthropic",
    ]
    assert [r.content for r in pg.sync.search("Anthropic", "alice", mode="text")] == [
        "User now works at Anthropic"
    ]
    pg.sync.close()

    # the CLI's --db takes the URL too
    assert main(["memory", "stats", "--db", store_url, "--embedder", "hash", "--json"]) == 0
    assert '"versions": 27' in capsys.readouterr().out

    # running it again copies nothing; and back to a new SQLite file
    assert main(["memory", "migrate", "--from", str(source), "--to", store_url]) == 0
    assert "migrated 0 records (27 already present)" in capsys.readouterr().out
    back = tmp_path / "back.db"
    assert main(["memory", "migrate", "--from", store_url, "--to", str(back)]) == 0
    rows2, vecs2 = _snapshot(back)
    assert rows2 == expected_rows
    assert all(np.allclose(vecs2[i], expected_vecs[i]) for i in vecs2)


def test_migrate_errors_are_one_line(
    tmp_path: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["memory", "migrate", "--from", str(tmp_path / "nope.db"), "--to", store_url]) == 1
    assert "no memory database" in capsys.readouterr().err
    other = tmp_path / "other.db"
    HierarchicalMemory.create_sync(
        MemoryConfig(db_path=other, vector_dimension=32), embedder=HashEmbedder(32)
    ).sync.close()
    src = tmp_path / "src.db"
    h = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=src, vector_dimension=64), embedder=HashEmbedder(64)
    )
    h.sync.add("x", "u")
    h.sync.close()
    assert main(["memory", "migrate", "--from", str(src), "--to", str(other)]) == 2
    err = capsys.readouterr().err
    assert "DimensionMismatchError" in err and len(err.strip().splitlines()) == 1
