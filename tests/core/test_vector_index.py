"""Contract tests of the VectorIndex adapters (numpy, faiss flat, faiss hnsw, faiss auto)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from headroom.memory.adapters.vector.numpy_index import NumpyVectorIndex
from headroom.memory.errors import (
    ConfigurationError,
    DimensionMismatchError,
    MissingDependencyError,
)
from headroom.memory.ports import VectorFilter, VectorIndex

DIM = 32
Factory = Callable[..., Any]


def _faiss_factory(**options: Any) -> Factory:
    def make(dimension: int = DIM, path: Path | None = None, **extra: Any) -> Any:
        pytest.importorskip("faiss")
        from headroom.memory.adapters.vector.faiss_index import FaissVectorIndex

        return FaissVectorIndex(dimension, path=path, **{**options, **extra})

    return make


def _numpy_factory(dimension: int = DIM, path: Path | None = None, **extra: Any) -> Any:
    return NumpyVectorIndex(dimension, path=path, **extra)


FACTORIES = {
    "numpy": _numpy_factory,
    "faiss-flat": _faiss_factory(kind="flat"),
    "faiss-hnsw": _faiss_factory(kind="hnsw", hnsw_m=16, hnsw_ef_construction=80),
    "faiss-auto": _faiss_factory(kind="auto", hnsw_min_entries=300),
}
APPROXIMATE = {"faiss-hnsw", "faiss-auto"}  # may be HNSW for unfiltered search


@pytest.fixture(params=list(FACTORIES))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make(kind: str) -> Factory:
    return FACTORIES[kind]


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def clustered(n: int, seed: int = 0, clusters: int = 20, spread: float = 0.35) -> np.ndarray:
    """Structured vectors (like real embeddings), not uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, DIM))
    labels = rng.integers(0, clusters, size=n)
    return unit(centres[labels] + spread * rng.normal(size=(n, DIM)))


def brute_force(
    ids: np.ndarray, vecs: np.ndarray, q: np.ndarray, k: int
) -> list[tuple[int, float]]:
    scores = vecs @ unit(q)
    order = np.argsort(-scores, kind="stable")[:k]
    return [(int(ids[i]), float(scores[i])) for i in order]


def assert_exact(hits: list[tuple[int, float]], expected: list[tuple[int, float]]) -> None:
    """Same ranking as brute force (ids may swap only where scores tie within float error)."""
    assert len(hits) == len(expected)
    np.testing.assert_allclose([s for _, s in hits], [s for _, s in expected], atol=1e-5)
    truth = dict(expected)
    for i, s in hits:
        if i not in truth:  # a tie at the boundary
            assert abs(s - expected[-1][1]) < 1e-5
    assert len({i for i, _ in hits}) == len(hits)


def recall(hits: list[tuple[int, float]], expected: list[tuple[int, float]]) -> float:
    return len({i for i, _ in hits} & {i for i, _ in expected}) / max(len(expected), 1)


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    vecs = clustered(1500)
    ids = np.arange(1000, 1000 + len(vecs), dtype=np.int64)
    return ids, vecs


def queries(n: int = 20, seed: int = 1) -> np.ndarray:
    base = clustered(n, seed=0)  # same cluster centres as the data
    return unit(base + 0.2 * np.random.default_rng(seed).normal(size=base.shape))


def test_is_a_vector_index(make: Factory) -> None:
    index = make()
    assert isinstance(index, VectorIndex)
    assert index.dimension == DIM
    assert len(index) == 0
    assert index.search(unit(np.ones(DIM)), 5) == []


def test_upsert_replaces_without_duplicates(make: Factory) -> None:
    a, b = clustered(100, seed=2), clustered(100, seed=3)
    ids = np.arange(100)
    index = make()
    index.upsert(ids.tolist(), a)
    index.upsert(ids[:50].tolist(), b[:50])
    index.upsert(ids[:50].tolist(), b[:50])
    assert len(index) == 100
    current = np.concatenate([b[:50], a[50:]])
    for i in (0, 10, 49, 50, 99):
        hits = index.search(current[i], 100)
        assert len({h for h, _ in hits}) == len(hits) == 100
        assert hits[0][0] == i and hits[0][1] == pytest.approx(1.0, abs=1e-5)
        assert dict(hits)[i] == pytest.approx(1.0, abs=1e-5)
    # duplicate ids within one batch: the last vector wins
    index.upsert([7, 7], np.stack([a[1], a[2]]))
    assert len(index) == 100
    assert index.search(a[2], 1)[0] == (7, pytest.approx(1.0, abs=1e-5))


def test_remove_is_idempotent(make: Factory, data: tuple[np.ndarray, np.ndarray]) -> None:
    ids, vecs = data
    index = make()
    index.upsert(ids, vecs)
    gone = ids[:400].tolist()  # > 20%: triggers a compaction on faiss
    index.remove(gone)
    index.remove(gone)
    index.remove([123456789])
    assert len(index) == len(ids) - 400
    for q in vecs[:5]:
        assert not {h for h, _ in index.search(q, 10)} & set(gone)
    assert index.search(vecs[0], 1, VectorFilter(np.asarray(gone, dtype=np.int64))) == []
    index.upsert([gone[0]], vecs[:1])
    assert index.search(vecs[0], 1)[0][0] == gone[0]
    index.remove(ids.tolist())
    index.remove(ids.tolist())
    assert len(index) == 0 and index.search(vecs[0], 3) == []


def test_search_matches_brute_force(
    kind: str, make: Factory, data: tuple[np.ndarray, np.ndarray]
) -> None:
    ids, vecs = data
    index = make()
    index.upsert(ids, vecs)
    index.remove(ids[::7].tolist())  # tombstones on faiss
    keep = np.ones(len(ids), dtype=bool)
    keep[::7] = False
    recalls = []
    for q in queries():
        hits = index.search(q, 10)
        expected = brute_force(ids[keep], vecs[keep], q, 10)
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
        truth = dict(brute_force(ids[keep], vecs[keep], q, len(ids)))
        assert all(abs(truth[i] - s) < 1e-5 for i, s in hits)  # real cosine scores
        if kind in APPROXIMATE:
            recalls.append(recall(hits, expected))
        else:
            assert_exact(hits, expected)
    if recalls:
        assert np.mean(recalls) >= 0.95


@pytest.mark.parametrize("fraction", [0.01, 0.05, 0.6])
def test_filtered_search_is_exact_over_allowed_ids(
    kind: str, make: Factory, data: tuple[np.ndarray, np.ndarray], fraction: float
) -> None:
    ids, vecs = data
    index = make()
    if hasattr(index, "exact_filter_max"):  # exercise the selector and sorted-lookup paths
        index.exact_filter_max, index.recent_positions_max = 100, 10
    index.upsert(ids, vecs)
    rng = np.random.default_rng(5)
    chosen = rng.choice(len(ids), size=max(1, int(fraction * len(ids))), replace=False)
    allowed = np.concatenate([ids[chosen], [-5, 99_999_999]])  # unknown ids are ignored
    recalls = []
    for q in queries():
        hits = index.search(q, 10, VectorFilter(allowed_ids=allowed))
        expected = brute_force(ids[chosen], vecs[chosen], q, 10)
        assert {i for i, _ in hits} <= set(ids[chosen].tolist())
        if kind in APPROXIMATE and fraction > 0.2:  # large allowed set: HNSW with a selector
            assert len(hits) == len(expected)
            recalls.append(recall(hits, expected))
        else:
            assert_exact(hits, expected)
    if recalls:
        assert np.mean(recalls) >= 0.9
    dropped = ids[chosen[::2]]
    index.remove(dropped.tolist())  # lookups must follow writes
    left = np.setdiff1d(ids[chosen], dropped)
    for q in queries(3):
        hits = index.search(q, 10, VectorFilter(allowed_ids=allowed))
        assert {i for i, _ in hits} <= set(left.tolist())
        assert len(hits) == min(10, left.size)


def test_crowded_neighbours_do_not_hide_the_allowed_id(make: Factory) -> None:
    rng = np.random.default_rng(7)
    q = unit(rng.normal(size=DIM))
    crowd = unit(q + 0.3 * rng.normal(size=(2000, DIM)))  # all very close to the query
    far = unit(rng.normal(size=(2, DIM)))
    index = make()
    index.upsert(list(range(2000)), crowd)
    index.upsert([5000, 5001], far)
    hits = index.search(q, 5, VectorFilter(np.array([5000], dtype=np.int64)))
    assert hits == [(5000, pytest.approx(float(far[0] @ q), abs=1e-5))]
    hits = index.search(q, 1, VectorFilter(np.array([5001, 5000], dtype=np.int64)))
    best = int(np.argmax(far @ q))
    assert hits == [(5000 + best, pytest.approx(float(far[best] @ q), abs=1e-5))]
    unfiltered = index.search(q, 10)
    assert {i for i, _ in unfiltered} <= set(range(2000))


def test_empty_allowed_set_and_unknown_ids(
    make: Factory, data: tuple[np.ndarray, np.ndarray]
) -> None:
    ids, vecs = data
    index = make()
    index.upsert(ids, vecs)
    assert index.search(vecs[0], 10, VectorFilter(np.array([], dtype=np.int64))) == []
    assert index.search(vecs[0], 10, VectorFilter(np.array([1, 2, 3], dtype=np.int64))) == []
    assert len(index.search(vecs[0], 10, VectorFilter(None))) == 10


def test_k_larger_than_size(make: Factory) -> None:
    vecs = clustered(5)
    index = make()
    index.upsert([10, 20, 30, 40, 50], vecs)
    hits = index.search(vecs[0], 50)
    assert sorted(i for i, _ in hits) == [10, 20, 30, 40, 50]
    assert_exact(hits, brute_force(np.array([10, 20, 30, 40, 50]), vecs, vecs[0], 50))
    assert index.search(vecs[0], 0) == []
    filtered = index.search(vecs[0], 50, VectorFilter(np.array([20, 40], dtype=np.int64)))
    assert sorted(i for i, _ in filtered) == [20, 40]


def test_query_shapes(make: Factory) -> None:
    vecs = clustered(20)
    index = make()
    index.upsert(list(range(20)), vecs)
    assert index.search(vecs[3], 3) == index.search(vecs[3].reshape(1, -1), 3)
    assert index.search(vecs[3], 1)[0][0] == 3


def test_dimension_mismatch_is_typed(make: Factory) -> None:
    index = make()
    with pytest.raises(DimensionMismatchError):
        index.upsert([1], np.ones((1, DIM + 1), dtype=np.float32))
    with pytest.raises(DimensionMismatchError):
        index.search(np.ones(DIM - 1, dtype=np.float32), 3)
    assert len(index) == 0


def test_max_entries(make: Factory) -> None:
    index = make(max_entries=10)
    vecs = clustered(12)
    index.upsert(list(range(10)), vecs[:10])
    index.upsert(list(range(5)), vecs[:5])  # replacing stays within the limit
    with pytest.raises(ConfigurationError):
        index.upsert([10, 11], vecs[10:])
    assert len(index) == 10


def test_save_load_round_trip(
    make: Factory, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    ids, vecs = data
    path = tmp_path / "sub" / "vectors.idx"
    index = make(path=path)
    index.upsert(ids, vecs)
    index.remove(ids[:100].tolist())
    index.save(seq=7)
    assert path.exists() and (tmp_path / "sub" / "vectors.idx.json").exists()
    side = json.loads((tmp_path / "sub" / "vectors.idx.json").read_text())
    assert side["seq"] == 7 and side["dimension"] == DIM and side["count"] == len(ids) - 100
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]

    loaded = make(path=path)
    assert loaded.load() == 7
    assert len(loaded) == len(index)
    for q in queries(5):
        assert loaded.search(q, 10) == index.search(q, 10)
        allowed = VectorFilter(ids[:300])
        assert loaded.search(q, 10, allowed) == index.search(q, 10, allowed)
    assert not {i for i, _ in loaded.search(vecs[0], 50)} & set(ids[:100].tolist())
    loaded.upsert([1], vecs[:1])  # still writable after loading
    assert loaded.search(vecs[0], 1)[0][0] == 1


@pytest.mark.parametrize("damage", ["truncate", "garbage", "sidecar", "no-sidecar"])
def test_load_of_a_damaged_file_returns_none(make: Factory, tmp_path: Path, damage: str) -> None:
    path = tmp_path / "vectors.idx"
    index = make(path=path)
    index.upsert(list(range(200)), clustered(200))
    index.save(seq=3)
    raw = path.read_bytes()
    side = tmp_path / "vectors.idx.json"
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(len(raw)))
    elif damage == "sidecar":
        side.write_text("{not json")
    else:
        side.unlink()
    fresh = make(path=path)
    fresh.upsert([1], clustered(1))
    assert fresh.load() is None
    assert len(fresh) == 0


def test_load_with_other_dimension_or_missing_file(make: Factory, tmp_path: Path) -> None:
    path = tmp_path / "vectors.idx"
    assert make(path=path).load() is None  # missing
    index = make(path=path)
    index.upsert([1, 2], clustered(2))
    index.save(seq=1)
    other = make(dimension=DIM // 2, path=path)
    assert other.load() is None and len(other) == 0
    no_path = make()
    no_path.upsert([1], clustered(1))
    no_path.save(seq=5)  # no-op
    assert no_path.load() is None


def test_clear(make: Factory) -> None:
    index = make()
    vecs = clustered(50)
    index.upsert(list(range(50)), vecs)
    index.clear()
    assert len(index) == 0 and index.search(vecs[0], 5) == []
    index.upsert([3], vecs[:1])
    assert index.search(vecs[0], 5)[0][0] == 3


# -- faiss specifics ---------------------------------------------------------------------------


def test_auto_switches_to_hnsw_and_stays_correct() -> None:
    pytest.importorskip("faiss")
    from headroom.memory.adapters.vector.faiss_index import FaissVectorIndex

    vecs = clustered(600, seed=11)
    ids = np.arange(600, dtype=np.int64) * 3
    index = FaissVectorIndex(DIM, kind="auto", hnsw_min_entries=500)
    index.upsert(ids[:500].tolist(), vecs[:500])
    assert index.kind == "flat"
    index.upsert(ids[500:].tolist(), vecs[500:])  # crosses: HNSW builds in the background
    assert index.wait_for_build(60)
    assert index.kind == "hnsw" and len(index) == 600
    recalls = []
    for q in queries(20):
        recalls.append(recall(index.search(q, 10), brute_force(ids, vecs, q, 10)))
        assert_exact(
            index.search(q, 10, VectorFilter(ids[:40])), brute_force(ids[:40], vecs[:40], q, 10)
        )
    assert np.mean(recalls) >= 0.95
    index.upsert(ids[:10].tolist(), vecs[10:20])  # replacement on HNSW (tombstones)
    assert len(index) == 600
    top = index.search(vecs[15], 2)
    assert {top[0][0], top[1][0]} == {int(ids[5]), int(ids[15])}
    assert top[0][1] == pytest.approx(1.0, abs=1e-5) and top[1][1] == pytest.approx(1.0, abs=1e-5)


def test_forced_kind_is_applied_on_load(tmp_path: Path) -> None:
    pytest.importorskip("faiss")
    from headroom.memory.adapters.vector.faiss_index import FaissVectorIndex

    path = tmp_path / "v.idx"
    vecs = clustered(300)
    hnsw = FaissVectorIndex(DIM, path=path, kind="hnsw")
    hnsw.upsert(list(range(300)), vecs)
    hnsw.save(seq=9)
    flat = FaissVectorIndex(DIM, path=path, kind="flat")
    assert flat.load() == 9 and flat.kind == "flat" and len(flat) == 300
    q = queries(1)[0]
    assert_exact(flat.search(q, 10), brute_force(np.arange(300), vecs, q, 10))


def test_numpy_file_is_not_loaded_by_faiss(tmp_path: Path) -> None:
    pytest.importorskip("faiss")
    from headroom.memory.adapters.vector.faiss_index import FaissVectorIndex

    path = tmp_path / "v.idx"
    np_index = NumpyVectorIndex(DIM, path=path)
    np_index.upsert([1], clustered(1))
    np_index.save(seq=1)
    assert FaissVectorIndex(DIM, path=path).load() is None


def test_missing_faiss_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from headroom.memory.adapters.vector.faiss_index import FaissVectorIndex

    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(MissingDependencyError, match=r"headroom-core\[faiss\]"):
        FaissVectorIndex(DIM)


def test_bad_kind_is_a_configuration_error() -> None:
    pytest.importorskip("faiss")
    from headroom.memory.adapters.vector.faiss_index import FaissVectorIndex

    with pytest.raises(ConfigurationError):
        FaissVectorIndex(DIM, kind="ivf")


def test_hnsw_switch_does_not_block_and_replays_writes_made_during_the_build() -> None:
    pytest.importorskip("faiss")
    import threading

    from headroom.memory.adapters.vector.faiss_index import FaissVectorIndex

    gate = threading.Event()

    class GatedIndex:  # the background build waits until the test has written more
        def __init__(self, inner: object) -> None:
            self.inner, self.first = inner, True

        def add(self, x: np.ndarray) -> None:
            if self.first:
                self.first = False
                assert gate.wait(30)
            self.inner.add(x)  # type: ignore[attr-defined]

        def __getattr__(self, name: str) -> object:
            return getattr(self.inner, name)

    vecs = clustered(700, seed=5)
    ids = np.arange(700, dtype=np.int64)
    index = FaissVectorIndex(DIM, kind="auto", hnsw_min_entries=500)
    make = index._new_index
    index._new_index = lambda kind: GatedIndex(make(kind)) if kind == "hnsw" else make(kind)  # type: ignore[method-assign]
    index.upsert(ids[:600].tolist(), vecs[:600])  # crosses, returns at once
    assert index.kind == "flat" and not index.wait_for_build(0.01)
    index.upsert(ids[600:].tolist(), vecs[600:])  # added during the build
    index.remove(ids[:5].tolist())  # removed during the build
    index.upsert([10], vecs[650:651])  # replaced during the build
    q = vecs[620]
    assert index.search(q, 1)[0][0] in (620, 10)  # exact on flat meanwhile
    gate.set()
    assert index.wait_for_build(60) and index.kind == "hnsw"
    assert len(index) == 695
    for i in (0, 4):
        assert all(hit[0] != i for hit in index.search(vecs[i], 10))
    top = {hit[0] for hit in index.search(vecs[650], 2)}
    assert top == {10, 650}
    assert index.search(vecs[690], 1)[0][0] == 690
    live = index.search(vecs[300], 1, VectorFilter(np.array([300, 301])))
    assert live[0][0] == 300


def test_writes_made_during_the_hnsw_build_are_added_outside_the_lock() -> None:
    pytest.importorskip("faiss")
    import threading

    from headroom.memory.adapters.vector.faiss_index import FaissVectorIndex

    gate = threading.Event()
    index = FaissVectorIndex(DIM, kind="auto", hnsw_min_entries=300)
    index.build_catchup_max = 50
    calls: list[tuple[int, bool]] = []  # (vectors added, index lock free meanwhile)

    def lock_is_free() -> bool:
        out: list[bool] = []

        def probe() -> None:
            got = index._lock.acquire(blocking=False)
            if got:
                index._lock.release()
            out.append(got)

        t = threading.Thread(target=probe)
        t.start()
        t.join()
        return out[0]

    class RecordingIndex:
        def __init__(self, inner: object) -> None:
            self.inner = inner

        def add(self, x: np.ndarray) -> None:
            if not calls:
                assert gate.wait(30)
            calls.append((len(x), lock_is_free()))
            self.inner.add(x)  # type: ignore[attr-defined]

        def __getattr__(self, name: str) -> object:
            return getattr(self.inner, name)

    make = index._new_index
    index._new_index = lambda kind: RecordingIndex(make(kind)) if kind == "hnsw" else make(kind)  # type: ignore[method-assign]
    vecs = clustered(900, seed=8)
    index.upsert(list(range(400)), vecs[:400])  # crosses: the build starts
    index.upsert(list(range(400, 900)), vecs[400:])  # 500 writes while it runs
    index.remove([450])
    gate.set()
    assert index.wait_for_build(60) and index.kind == "hnsw"
    assert calls[0] == (400, True) and calls[1] == (499, True)  # caught up outside the lock
    assert len(index) == 899
    assert index.search(vecs[899 - 1], 1)[0][0] == 898
    assert 450 not in {i for i, _ in index.search(vecs[450], 10)}


def test_compacting_an_hnsw_index_runs_in_the_background() -> None:
    pytest.importorskip("faiss")
    import threading

    from headroom.memory.adapters.vector.faiss_index import FaissVectorIndex

    index = FaissVectorIndex(DIM, kind="hnsw", hnsw_m=16, hnsw_ef_construction=80)
    vecs = clustered(500, seed=9)
    index.upsert(list(range(500)), vecs)
    gate = threading.Event()
    make = index._new_index

    def gated(kind: str) -> Any:
        inner = make(kind)
        add = inner.add
        inner.add = lambda x: (gate.wait(30), add(x))  # the background build waits for the test
        return inner

    index._new_index = gated  # type: ignore[method-assign]
    index.remove(list(range(150)))  # 30% tombstones: a new graph is built off the caller
    assert index._dead == 150 and len(index) == 350  # still the tombstoned graph meanwhile
    assert 0 not in {i for i, _ in index.search(vecs[0], 10)}
    index.upsert([1000], vecs[:1])  # a write during the build is replayed at the swap
    gate.set()
    assert index.wait_for_build(60)
    assert index._dead == 0 and len(index) == 351 and index.kind == "hnsw"
    assert index.search(vecs[0], 1)[0][0] == 1000
    assert index.search(vecs[300], 1)[0][0] == 300


def test_faiss_similarities_of_stored_ids(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from headroom.memory.adapters.vector.faiss_index import FaissVectorIndex

    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(50, 16)).astype(np.float32)
    index = FaissVectorIndex(16)
    index.upsert(list(range(100, 150)), vectors)
    q = rng.normal(size=16).astype(np.float32)
    sims = index.similarities(q, [100, 149, 7, 120])
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q)
    assert set(sims) == {100, 149, 120}  # 7 is not stored
    for pk, sim in sims.items():
        assert sim == pytest.approx(float(unit[pk - 100] @ qn), abs=1e-5)
    index.remove([120])
    assert 120 not in index.similarities(q, [120])
