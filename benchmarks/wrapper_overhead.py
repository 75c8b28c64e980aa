"""End-to-end cost of ``with_memory``: a call through the wrapper minus the same call on a plain
client, against the local fake OpenAI server, with the real ONNX embedder, N stored memories.

Usage: python benchmarks/wrapper_overhead.py [--quick] [--size 100000] [--users 100]

The store is filled through the engine with real ONNX vectors. To build 100k memories in minutes
on 2 cores, each stored text is one of 2,000 distinct generated facts plus a unique tag
(``#1234``), and the build-time embedder embeds the fact without its tag once (cached): the
vectors are real MiniLM vectors, 50 memories share each. Questions are unique (no cache hits), the
reply carries no ``<memory>`` block (no write), and plain and wrapped calls are interleaved.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table, summarize, write_json
from core_latency import question

from headroom.memory import HierarchicalMemory, MemoryConfig
from headroom.memory.adapters.embedders.onnx import OnnxEmbedder
from headroom.testing import FakeOpenAIServer

SUBJECTS = ["likes", "works on", "visited", "plays", "is learning", "bought", "hates", "cooks"]


class TaggedCachingEmbedder:
    """Build-time embedder: the real ONNX model, one call per distinct text before ``#``."""

    def __init__(self, inner: OnnxEmbedder) -> None:
        self.inner = inner
        self.cache: dict[str, np.ndarray] = {}

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        keys = [t.split(" #", 1)[0] for t in texts]
        missing = sorted({k for k in keys if k not in self.cache})
        if missing:
            for key, vec in zip(missing, self.inner.embed(missing), strict=True):
                self.cache[key] = vec
        return np.stack([self.cache[k] for k in keys])

    def close(self) -> None:
        pass


def build(db: Path, size: int, users: int, rng: random.Random) -> float:
    facts = [f"User {rng.choice(SUBJECTS)} {question(rng)}" for _ in range(2000)]
    emb = TaggedCachingEmbedder(OnnxEmbedder(threads=1))
    hm = HierarchicalMemory.create_sync(MemoryConfig(db_path=db), embedder=emb)
    start = time.perf_counter()
    for offset in range(0, size, 5000):
        hm.sync.add_batch([
            {"content": f"{facts[(offset + i) % len(facts)]} #{offset + i}",
             "user_id": f"user{(offset + i) % users}", "scope": "user"}
            for i in range(min(5000, size - offset))
        ])  # fmt: skip
    hm.sync.close()
    return time.perf_counter() - start


def measure(db: Path, users: int, repeat: int, rng: random.Random) -> dict[str, object]:
    from openai import OpenAI

    from headroom.openai import with_memory

    with FakeOpenAIServer(lambda request: "Noted.") as server:
        plain = OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        hm = HierarchicalMemory.create_sync(MemoryConfig(db_path=db))
        wrapped = with_memory(plain, user_id="user7", memory=hm)
        for client in (plain, wrapped):  # warm up: connections, model load
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hello"}]
            )
        plain_ms, wrapped_ms = [], []
        for i in range(repeat):
            msgs = [{"role": "user", "content": f"What about {question(rng)}? ({i})"}]
            for client, out in ((plain, plain_ms), (wrapped, wrapped_ms)):
                t = time.perf_counter()
                client.chat.completions.create(model="m", messages=msgs)
                out.append((time.perf_counter() - t) * 1000)
        injected = "Relevant memories" in str(server.requests[-1]) or len(
            str(server.requests[-1])
        ) > len(str(server.requests[-2]))
        hm.sync.close()
    diffs = [w - p for w, p in zip(wrapped_ms, plain_ms, strict=True)]
    return {"plain": summarize(plain_ms), "wrapped": summarize(wrapped_ms),
            "overhead": summarize(diffs), "injected": injected, "users": users}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k memories, 30 calls")
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=100)
    args = parser.parse_args()
    size, repeat = (10_000, 30) if args.quick else (args.size, args.repeat)
    load = os.getloadavg()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "wrapper.db"
        build_s = build(db, size, args.users, rng)
        res = measure(db, args.users, repeat, rng)
    res.update(size=size, build_s=round(build_s, 1), load_average=load)
    print(f"with_memory overhead, {size:,} memories ({size // args.users:,} for the user), ONNX "
          f"embedder, fake server; load average {load[0]:.2f} at start")  # fmt: skip
    rows = [[name, res[name]["p50_ms"], res[name]["p95_ms"]]  # type: ignore[index]
            for name in ("plain", "wrapped", "overhead")]  # fmt: skip
    print_table(["call", "p50 ms", "p95 ms"], rows)
    write_json("wrapper_overhead.json", res)


if __name__ == "__main__":
    main()
