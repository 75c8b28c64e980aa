"""Crashes and concurrent writers (issue #11): ``kill -9`` during writes and during index saves
loses no committed memory and leaves a consistent index; 4 writer processes, 4 threads and 4
asyncio tasks lose nothing. (tests/core/test_persistence.py covers 2 writer processes and
missing/corrupt/stale index files; these are the harsher versions, kept bounded.)"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from headroom.memory import HierarchicalMemory, MemoryConfig, MemoryFilter
from headroom.testing import HashEmbedder

DIM = 32

CHILD = """
import sys
from headroom.memory import HierarchicalMemory, MemoryConfig
from headroom.testing import HashEmbedder
db, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
hm = HierarchicalMemory.create_sync(
    MemoryConfig(db_path=db, vector_dimension=32, busy_timeout_ms=60_000), embedder=HashEmbedder(32)
)
print("ready", flush=True)
i = 0
while n < 0 or i < n:
    hm.sync.add_batch([{"content": f"{tag} fact i{i} j{j}", "user_id": tag} for j in range(5)])
    print(i, flush=True)  # batch i is committed
    if n < 0 and i % 3 == 2:
        hm.sync.rebuild_index()  # writes the index file: killed during saves too
    i += 1
hm.sync.close()
"""


def _open(db: Path) -> HierarchicalMemory:
    return HierarchicalMemory.create_sync(
        MemoryConfig(db_path=db, vector_dimension=DIM), embedder=HashEmbedder(DIM)
    )


def _check_consistent(db: Path, expected: dict[str, set[str]]) -> None:
    hm = _open(db)
    try:
        stats = hm.sync.stats()
        assert stats["vector_index_size"] == hm._engine.store.vector_count()
        for user, contents in expected.items():
            stored = {m.content for m in hm.sync.query(MemoryFilter(user_id=user))}
            assert contents <= stored, sorted(contents - stored)[:5]
            for content in random.Random(0).sample(sorted(contents), min(5, len(contents))):
                top = hm.sync.search(content, user, top_k=1, mode="semantic")
                assert top and top[0].content == content
                assert hm.sync.text_search(content, user, top_k=500)
    finally:
        hm.sync.close()


def test_kill_9_during_writes_and_index_saves_loses_nothing_committed(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    rng = random.Random(11)
    committed: dict[str, set[str]] = {}
    for run in range(3):
        tag = f"run{run}"
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(db), tag, "-1"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        last = -1
        deadline = time.monotonic() + rng.uniform(0.2, 0.8)
        while time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            last = int(line)
        child.send_signal(signal.SIGKILL)
        rest = child.communicate()[0]
        for line in rest.split():  # batches reported committed before the kill
            last = max(last, int(line))
        assert child.returncode == -signal.SIGKILL
        committed[tag] = {f"{tag} fact i{i} j{j}" for i in range(last + 1) for j in range(5)}
        _check_consistent(db, committed)
    assert sum(len(v) for v in committed.values()) > 0


def test_four_writer_processes_threads_and_tasks_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "writers.db"
    n = 8  # batches of 5: 40 adds per writer
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(db), f"proc{k}", str(n)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for k in range(4)
    ]  # fmt: skip
    hm = _open(db)
    try:

        def thread_writer(tag: str) -> None:
            for i in range(40):
                hm.sync.add(f"{tag} fact i{i}", tag)

        threads = [threading.Thread(target=thread_writer, args=(f"thread{k}",)) for k in range(4)]
        for t in threads:
            t.start()

        async def tasks() -> None:
            async def task_writer(tag: str) -> None:
                for i in range(40):
                    await hm.add(f"{tag} fact i{i}", tag)

            await asyncio.gather(*(task_writer(f"task{k}") for k in range(4)))

        asyncio.run(tasks())
        for t in threads:
            t.join()
        for child in children:
            _, err = child.communicate(timeout=120)
            assert child.returncode == 0, err[-2000:]
        writers = [f"{kind}{k}" for kind in ("proc", "thread", "task") for k in range(4)]
        for tag in writers:
            assert hm.sync.count(MemoryFilter(user_id=tag)) == 40, tag
        assert hm.sync.count(MemoryFilter()) == 12 * 40
        ids = [m.id for m in hm.sync.query(MemoryFilter())]
        assert len(set(ids)) == len(ids)
        hits = hm.sync.search("proc3 fact i7 j4", "proc3", top_k=1, mode="semantic")
        assert hits[0].content == "proc3 fact i7 j4"  # other processes' writes are indexed
    finally:
        hm.sync.close()
    expected = {f"proc{k}": {f"proc{k} fact i{i} j{j}" for i in range(n) for j in range(5)}
                for k in range(4)}  # fmt: skip
    _check_consistent(db, expected)
