"""Reads run on their own threads: a small search never waits behind another caller's slow
request or a write, results stay correct under concurrent reads and writes, and close() lets
reads in flight finish."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from headroom.memory import HierarchicalMemory, MemoryConfig, MemoryFilter
from headroom.memory.errors import ClosedError
from headroom.testing import HashEmbedder


class GatedEmbedder(HashEmbedder):
    """Embeds texts containing GATE only once ``release`` is set (a stand-in for a slow request)."""

    def __init__(self) -> None:
        super().__init__(32)
        self.entered = threading.Event()
        self.release = threading.Event()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if any("GATE" in t for t in texts):
            self.entered.set()
            assert self.release.wait(30), "the gate was never released"
        return super().embed(texts)


def _open(path: Path, embedder: HashEmbedder, **overrides: object) -> HierarchicalMemory:
    cfg = MemoryConfig(db_path=path, vector_dimension=32, cache_enabled=False, **overrides)  # type: ignore[arg-type]
    return HierarchicalMemory.create_sync(cfg, embedder=embedder)


def test_small_search_does_not_queue_behind_a_slow_one(tmp_path: Path) -> None:
    embedder = GatedEmbedder()
    hm = _open(tmp_path / "m.db", embedder)
    try:
        hm.sync.add("User likes herons", "alice")
        hm.sync.add("User likes otters", "bob")
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(hm.sync.search, "GATE herons " * 1000, "alice")
            assert embedder.entered.wait(10)
            # alice's big request is stuck on a reader thread; bob's search still completes
            assert [r.memory.content for r in hm.sync.search("otters", "bob")] == [
                "User likes otters"
            ]
            assert hm.sync.query(MemoryFilter(user_id="bob"))[0].content == "User likes otters"
            assert not slow.done()
            embedder.release.set()
            assert slow.result(10)[0].memory.content == "User likes herons"
    finally:
        embedder.release.set()
        hm.sync.close()


def test_a_write_does_not_wait_for_a_slow_read(tmp_path: Path) -> None:
    embedder = GatedEmbedder()
    hm = _open(tmp_path / "m.db", embedder)
    try:
        hm.sync.add("User lived in Porto", "alice")
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(hm.sync.search, "GATE", "alice")
            assert embedder.entered.wait(10)
            added = hm.sync.add("User moved to Lisbon", "alice")
            assert hm.sync.get(added.id, user_id="alice") is not None
            embedder.release.set()
            slow.result(10)
        assert hm.sync.search("Lisbon", "alice")[0].memory.id == added.id
    finally:
        embedder.release.set()
        hm.sync.close()


def test_async_searches_of_many_users_interleave_with_writes(tmp_path: Path) -> None:
    hm = _open(tmp_path / "m.db", HashEmbedder(32), read_threads=3)

    async def user(i: int) -> None:
        uid = f"user{i}"
        for j in range(15):
            added = await hm.add(f"User {uid} fact {j} about topic{i}x{j}", uid)
            hits = await hm.search(f"topic{i}x{j}", uid, top_k=50, mode="text")
            assert [h.memory.id for h in hits] == [added.id]  # read-your-writes, own rows only
            assert await hm.get(added.id, user_id=uid) is not None
        hits = await hm.search("fact", uid, top_k=50, mode="text")
        assert len(hits) == 15 and all(h.memory.user_id == uid for h in hits)
        semantic = await hm.search(f"User {uid} fact 3", uid, top_k=50, mode="semantic")
        assert len(semantic) == 15 and all(h.memory.user_id == uid for h in semantic)

    async def main() -> None:
        await asyncio.gather(*(user(i) for i in range(6)))
        await hm.close()

    asyncio.run(main())


def test_close_lets_reads_in_flight_finish_and_refuses_new_ones(tmp_path: Path) -> None:
    embedder = GatedEmbedder()
    hm = _open(tmp_path / "m.db", embedder)
    hm.sync.add("User likes herons", "alice")
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(hm.sync.search, "GATE herons", "alice")
        assert embedder.entered.wait(10)
        closing = pool.submit(hm.sync.close)
        with pytest.raises(ClosedError):
            for _ in range(1000):  # close() marks the memory closed before it waits
                hm.sync.search("herons", "alice")
                threading.Event().wait(0.005)
        embedder.release.set()
        assert slow.result(10)[0].memory.content == "User likes herons"
        closing.result(10)
    assert hm.closed


def test_cached_results_follow_a_write_by_another_process(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "m.db"
    hm = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=path, vector_dimension=32), embedder=HashEmbedder(32)
    )  # result cache on
    try:
        hm.sync.add("User likes herons", "alice")
        first = hm.sync.search("herons", "alice", mode="text")
        assert len(first) == 1
        assert len(hm.sync.search("herons", "alice", mode="text")) == 1  # a cache hit
        child = (
            "from headroom.memory import HierarchicalMemory, MemoryConfig\n"
            "from headroom.testing import HashEmbedder\n"
            f"m = HierarchicalMemory.create_sync(MemoryConfig(db_path={str(path)!r}, "
            "vector_dimension=32), embedder=HashEmbedder(32))\n"
            "m.sync.add('User photographs herons', 'alice')\n"
            "m.sync.close()\n"
        )
        subprocess.run([sys.executable, "-c", child], check=True, timeout=120)
        contents = {r.memory.content for r in hm.sync.search("herons", "alice", mode="text")}
        assert contents == {"User likes herons", "User photographs herons"}
    finally:
        hm.sync.close()


def test_a_cache_hit_is_answered_without_a_reader_thread(tmp_path: Path) -> None:
    hm = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=tmp_path / "m.db", vector_dimension=32), embedder=HashEmbedder(32)
    )
    try:
        hm.sync.add("User likes herons", "alice")
        first = hm.sync.search("herons", "alice")
        submitted: list[object] = []
        real_submit = hm._readers.submit

        def spy(fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
            submitted.append(fn)
            return real_submit(fn, *args, **kwargs)

        hm._readers.submit = spy  # type: ignore[method-assign]
        again = hm.sync.search("herons", "alice")
        assert [r.memory.id for r in again] == [r.memory.id for r in first] and not submitted
        again.clear()  # a copy: the cached list is not changed
        assert len(hm.sync.search("herons", "alice")) == 1 and not submitted
        hm.sync.add("User photographs herons", "alice")  # the store moved: no stale hit
        assert len(hm.sync.search("herons", "alice")) == 2 and len(submitted) == 1
    finally:
        hm.sync.close()
    with pytest.raises(ClosedError):
        hm.sync.search("herons", "alice")
