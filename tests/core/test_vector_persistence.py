"""FAISS index persistence: base + append-only delta, folding, torn files, legacy files, reopen.

Real FAISS files in tmp dirs. The engine-level tests check that a read-only session writes
nothing, that a torn delta is caught up from the store, and that search results are the same
before and after reopening.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from headroom.memory import HierarchicalMemory, MemoryConfig
from headroom.memory.adapters.vector.positions import PositionMap
from headroom.memory.ports import VectorFilter
from headroom.testing import HashEmbedder

pytest.importorskip("faiss")

from headroom.memory.adapters.vector.faiss_index import FaissVectorIndex

DIM = 32


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def vectors(n: int, seed: int = 0) -> np.ndarray:
    return unit(np.random.default_rng(seed).normal(size=(n, DIM)))


def make(path: Path, kind: str = "flat", **options: Any) -> FaissVectorIndex:
    index = FaissVectorIndex(DIM, path=path, kind=kind, hnsw_m=16, hnsw_ef_construction=80)
    for name, value in options.items():
        setattr(index, name, value)
    return index


def delta(path: Path) -> Path:
    return path.with_name(path.name + ".delta")


def token(path: Path) -> str:
    return str(json.loads(path.with_name(path.name + ".json").read_text())["token"])


def same_results(a: FaissVectorIndex, b: FaissVectorIndex, ids: np.ndarray, *, exact: bool) -> None:
    assert len(a) == len(b)
    for q in vectors(10, seed=99):
        for allowed in (ids[:50], ids[::3], ids):
            f = VectorFilter(allowed)
            assert a.search(q, 10, f) == b.search(q, 10, f)
        if exact:
            assert a.search(q, 10) == b.search(q, 10)


def test_a_small_change_appends_a_delta_and_leaves_the_base_alone(tmp_path: Path) -> None:
    path = tmp_path / "v.faiss"
    index = make(path)
    ids = np.arange(1000, dtype=np.int64)
    vecs = vectors(1000)
    index.upsert(ids, vecs)
    index.save(1)
    base_bytes, base_token = path.read_bytes(), token(path)
    assert not delta(path).exists()

    index.upsert([1000, 1001], vectors(2, seed=1))  # new
    index.upsert([5], vectors(1, seed=2))  # replaced
    index.remove([7, 8, 123456])  # removed (and an unknown id)
    index.save(2)
    assert path.read_bytes() == base_bytes and token(path) == base_token
    first = delta(path).stat().st_size
    assert 0 < first < 4 * (8 + 4 * DIM) + 200  # three vectors and a few ids, not the index
    index.remove([9])
    index.save(3)
    assert delta(path).stat().st_size > first and path.read_bytes() == base_bytes

    loaded = make(path)
    assert loaded.load() == 3
    all_ids = np.arange(1002, dtype=np.int64)
    same_results(index, loaded, all_ids, exact=True)
    assert loaded.search(vectors(1, seed=2)[0], 1)[0][0] == 5
    assert not {7, 8, 9} & {i for i, _ in loaded.search(vecs[7], 20)}


def test_saving_without_changes_since_the_load_appends_only_the_seq(tmp_path: Path) -> None:
    path = tmp_path / "v.faiss"
    index = make(path)
    index.upsert(np.arange(100), vectors(100))
    index.save(4)
    loaded = make(path)
    assert loaded.load() == 4
    loaded.save(9)  # e.g. the store changed rows but no vector
    assert delta(path).stat().st_size < 100
    again = make(path)
    assert again.load() == 9 and len(again) == 100


def test_the_delta_is_folded_into_a_new_base_past_the_fraction(tmp_path: Path) -> None:
    path = tmp_path / "v.faiss"
    index = make(path, delta_fold_fraction=0.05)
    index.upsert(np.arange(400), vectors(400))
    index.save(1)
    first_token = token(path)
    for seq in range(2, 12):  # 10 vectors (~1.3 KB) per save against a ~53 KB base
        index.upsert(np.arange(400 + 10 * seq, 410 + 10 * seq), vectors(10, seed=seq))
        index.save(seq)
    assert token(path) != first_token  # folded at least once
    assert not delta(path).exists() or delta(path).stat().st_size < 0.05 * path.stat().st_size
    loaded = make(path)
    assert loaded.load() == 11
    same_results(index, loaded, np.arange(520), exact=True)


def test_hnsw_delta_replays_into_the_graph_and_folds_by_vector_count(tmp_path: Path) -> None:
    path = tmp_path / "v.faiss"
    index = make(path, kind="hnsw", hnsw_delta_fold_fraction=0.05)
    index.upsert(np.arange(600), vectors(600))
    index.save(1)
    base = path.read_bytes()
    index.upsert(np.arange(600, 620), vectors(20, seed=3))  # 20 <= 0.05 * 600: a delta
    index.remove([1, 2])
    index.save(2)
    assert path.read_bytes() == base
    loaded = make(path, kind="hnsw")
    assert loaded.load() == 2 and loaded.kind == "hnsw"
    same_results(index, loaded, np.arange(620), exact=False)
    for i in (0, 605, 619):  # the replayed vectors are in the graph
        assert loaded.search(index._xb()[index._map_lookup(np.array([i]))[0]], 1)[0][0] == i
    index.upsert(np.arange(620, 640), vectors(20, seed=4))  # 40 > 30 vectors: fold
    index.save(3)
    assert path.read_bytes() != base and not delta(path).exists()


def test_switching_to_hnsw_writes_a_new_base(tmp_path: Path) -> None:
    path = tmp_path / "v.faiss"
    index = FaissVectorIndex(DIM, path=path, kind="auto", hnsw_min_entries=300)
    index.background_build = False
    index.upsert(np.arange(200), vectors(200))
    index.save(1)
    index.upsert(np.arange(200, 400), vectors(200, seed=1))  # crosses: HNSW
    assert index.kind == "hnsw"
    index.save(2)
    assert not delta(path).exists()
    assert json.loads(path.with_name("v.faiss.json").read_text())["kind"] == "hnsw"
    loaded = FaissVectorIndex(DIM, path=path, kind="auto", hnsw_min_entries=300)
    assert loaded.load() == 2 and loaded.kind == "hnsw" and len(loaded) == 400


def _two_saves(path: Path) -> FaissVectorIndex:
    index = make(path)
    index.upsert(np.arange(300), vectors(300))
    index.save(1)
    index.upsert([300], vectors(1, seed=1))
    index.save(2)
    index.upsert([301], vectors(1, seed=2))
    index.remove([0])
    index.save(3)
    return index


@pytest.mark.parametrize("damage", ["torn", "flipped"])
def test_a_torn_or_corrupt_delta_record_ends_the_log(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "v.faiss"
    _two_saves(path)
    raw = bytearray(delta(path).read_bytes())
    if damage == "torn":
        raw = raw[:-10]
    else:
        raw[-20] ^= 0xFF
    delta(path).write_bytes(bytes(raw))
    loaded = make(path)
    assert loaded.load() == 2  # the last good record: the store replays what followed
    assert len(loaded) == 301
    assert loaded.search(vectors(1, seed=1)[0], 1)[0][0] == 300
    assert 301 not in {i for i, _ in loaded.search(vectors(1, seed=2)[0], 5)}
    # the next save cuts the bad tail and appends after the last good record
    loaded.upsert([302], vectors(1, seed=3))
    loaded.save(5)
    again = make(path)
    assert again.load() == 5 and len(again) == 302
    assert again.search(vectors(1, seed=3)[0], 1)[0][0] == 302


def test_a_delta_of_another_base_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "v.faiss"
    _two_saves(path)
    old_delta = delta(path).read_bytes()
    index = make(path)
    index.upsert(np.arange(50), vectors(50, seed=7))
    index.save(10)  # a new base (the first save of a fresh index): the old delta is removed
    assert not delta(path).exists()
    delta(path).write_bytes(old_delta)  # e.g. a crash before the unlink
    loaded = make(path)
    assert loaded.load() == 10 and len(loaded) == 50


@pytest.mark.parametrize("damage", ["truncate", "garbage", "stale-sidecar", "no-sidecar"])
def test_a_damaged_base_is_not_loaded(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "v.faiss"
    index = make(path)
    index.upsert(np.arange(300), vectors(300))
    index.save(1)
    side = path.with_name("v.faiss.json")
    old_side = side.read_bytes()
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":  # same length, so only the checksum can tell
        path.write_bytes(raw[:100] + np.random.default_rng(0).bytes(len(raw) - 100))
    elif damage == "stale-sidecar":  # a crash between writing the base and its sidecar
        index.upsert([999], vectors(1, seed=1))
        index.clear()
        index.upsert(np.arange(300), vectors(300, seed=5))
        index.save(2)
        side.write_bytes(old_side)
    else:
        side.unlink()
    loaded = make(path)
    assert loaded.load() is None and len(loaded) == 0


def test_a_legacy_npz_index_loads_and_the_next_save_writes_the_new_format(tmp_path: Path) -> None:
    import faiss

    from headroom.memory.adapters.vector.common import IndexFileMeta, write_index_file

    path = tmp_path / "v.faiss"
    flat = faiss.IndexFlatIP(DIM)
    vecs = vectors(100)
    flat.add(vecs)
    ids = np.arange(100, dtype=np.int64)
    meta = IndexFileMeta("faiss", 6, DIM, 100, "flat")
    write_index_file(path, {"index": faiss.serialize_index(flat), "ids": ids}, meta)
    loaded = make(path)
    assert loaded.load() == 6 and len(loaded) == 100
    assert loaded.search(vecs[42], 1)[0][0] == 42
    loaded.upsert([100], vectors(1, seed=1))
    loaded.save(7)
    assert json.loads(path.with_name("v.faiss.json").read_text())["format_version"] == 2
    again = make(path)
    assert again.load() == 7 and len(again) == 101


def test_a_base_replaced_by_another_process_is_not_extended(tmp_path: Path) -> None:
    path = tmp_path / "v.faiss"
    index = make(path)
    index.upsert(np.arange(100), vectors(100))
    index.save(1)
    a, b = make(path), make(path)
    assert a.load() == 1 and b.load() == 1
    b.clear()  # b writes a whole new base
    b.upsert(np.arange(100), vectors(100))
    b.upsert([100], vectors(1, seed=1))
    b.save(2)
    a.upsert([100], vectors(1, seed=1))
    a.upsert([101], vectors(1, seed=2))
    a.save(3)  # a's delta would not apply to b's base: a writes its own base
    loaded = make(path)
    assert loaded.load() == 3 and len(loaded) == 102


def test_two_processes_appending_to_one_delta_keep_both_records(tmp_path: Path) -> None:
    path = tmp_path / "v.faiss"
    index = make(path)
    index.upsert(np.arange(100), vectors(100))
    index.save(1)
    a, b = make(path), make(path)
    assert a.load() == 1 and b.load() == 1
    a.upsert([100], vectors(1, seed=1))
    a.save(2)
    b.upsert([101], vectors(1, seed=2))
    b.remove([3])
    b.save(3)  # b appends after a's record
    a.upsert([102], vectors(1, seed=3))
    a.save(4)
    loaded = make(path)
    assert loaded.load() == 4 and len(loaded) == 102
    for seed, i in ((1, 100), (2, 101), (3, 102)):
        assert loaded.search(vectors(1, seed=seed)[0], 1)[0][0] == i
    assert 3 not in {i for i, _ in loaded.search(vectors(100)[3], 5)}


def test_base_checksum_covers_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "v.faiss"
    index = make(path)
    index.upsert(np.arange(10), vectors(10))
    index.save(1)
    info = json.loads(path.with_name("v.faiss.json").read_text())
    assert info["checksum"] == f"crc32:{zlib.crc32(path.read_bytes()):08x}"
    assert path.stat().st_size == info["index_bytes"] + 8 * info["positions"]


def test_position_map_agrees_with_a_dict_under_random_writes() -> None:
    rng = np.random.default_rng(3)
    pm = PositionMap()
    ids_by_pos = np.empty(0, dtype=np.int64)
    truth: dict[int, int] = {}
    for step in range(300):
        if rng.random() < 0.7:  # upsert a batch (some ids already present)
            batch = np.unique(rng.integers(0, 2000, size=int(rng.integers(1, 40))))
            for i in batch.tolist():
                if i in truth:
                    ids_by_pos[truth[i]] = -1
            start = ids_by_pos.size
            ids_by_pos = np.concatenate([ids_by_pos, batch])
            pm.added(batch, start, ids_by_pos, recent_max=16)
            truth.update(zip(batch.tolist(), range(start, start + batch.size), strict=True))
        else:  # remove
            for i in rng.integers(0, 2000, size=10).tolist():
                if i in truth:
                    ids_by_pos[truth.pop(i)] = -1
        if step % 50 == 0:
            pm.rebuild(ids_by_pos)
        query = rng.integers(0, 2000, size=100)
        expected = np.array([truth.get(i, -1) for i in query.tolist()], dtype=np.int64)
        assert np.array_equal(pm.lookup(query, ids_by_pos), expected)
        assert pm.get(int(query[0]), ids_by_pos) == truth.get(int(query[0]))


# -- through the engine ----------------------------------------------------------------------


def _open(path: Path, **options: Any) -> HierarchicalMemory:
    cfg = MemoryConfig(db_path=path, vector_dimension=64, cache_max_size=0, **options)
    return HierarchicalMemory.create_sync(cfg, embedder=HashEmbedder(64))


def _index_files(directory: Path) -> dict[str, tuple[int, int]]:
    return {
        p.name: (p.stat().st_mtime_ns, p.stat().st_size)
        for p in directory.iterdir()
        if ".faiss" in p.name
    }


NOTES = [f"note {i} about {w}" for i, w in enumerate(["otters", "puffins", "herons"] * 20)]


def test_engine_saves_deltas_writes_nothing_after_reads_and_reopens_equal(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    hm = _open(db)
    hm.sync.add_batch([{"content": c, "user_id": f"u{i % 3}"} for i, c in enumerate(NOTES)])
    hm.sync.close()
    base = (tmp_path / "m.db.faiss").read_bytes()
    hm = _open(db)
    hm.sync.add("a late note about herons", "u1")
    before = {u: hm.sync.search("herons", u, mode="semantic", top_k=5) for u in ("u0", "u1")}
    hm.sync.close()
    assert (tmp_path / "m.db.faiss").read_bytes() == base  # a delta, not a new base
    assert (tmp_path / "m.db.faiss.delta").exists()

    files = _index_files(tmp_path)
    hm = _open(db)  # a read-only session
    after = {u: hm.sync.search("herons", u, mode="semantic", top_k=5) for u in ("u0", "u1")}
    hm.sync.close()
    assert _index_files(tmp_path) == files  # close() wrote nothing
    assert [[(r.memory.id, round(r.score, 6)) for r in v] for v in before.values()] == [
        [(r.memory.id, round(r.score, 6)) for r in v] for v in after.values()
    ]
    ro = _open(db, read_only=True)
    assert ro.sync.search("a late note about herons", "u1", top_k=1)[0].content.startswith("a late")
    ro.sync.close()
    assert _index_files(tmp_path) == files


def test_engine_catches_up_from_the_store_after_a_torn_delta(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    hm = _open(db)
    hm.sync.add_batch([{"content": c, "user_id": "u"} for c in NOTES])
    hm.sync.close()
    hm = _open(db)
    late = hm.sync.add("a late note about kingfishers", "u")
    hm.sync.delete(hm.sync.search("note 3 about otters", "u", top_k=1)[0].memory.id, user_id="u")
    hm.sync.close()
    d = tmp_path / "m.db.faiss.delta"
    d.write_bytes(d.read_bytes()[:-7])  # a crash in the middle of the append
    hm = _open(db)
    try:
        assert hm.sync.stats()["vector_index_size"] == len(NOTES)  # +1 -1, caught up
        top = hm.sync.search("a late note about kingfishers", "u", mode="semantic", top_k=1)
        assert top[0].memory.id == late.id
        assert all(
            r.content != "note 3 about otters"
            for r in hm.sync.search("note 3 about otters", "u", mode="semantic", top_k=5)
        )
    finally:
        hm.sync.close()
