"""Core engine latency: per-user and store-wide search, adds, cache hits, interference, linearity.

Usage: python benchmarks/core_latency.py [--quick] [--size 100000] [--users 100] [--repeat 200]

Engine cost *excluding the query embedding*: the store, FTS5 and FAISS work runs with a hashing
embedder (384-d, ~0.05 ms per text) so 100k memories build in seconds; the real embedder's cost
(ONNX int8 MiniLM, 1 thread) is measured separately and adds to every search and add.

Two databases of ``--size`` memories: ``--users`` users of equal size (a user with size/users
memories among everybody's: the per-user rows), and one user holding all of them (store-wide).
Every stored fact starts with "User" (like extracted memories), so that term is in every row.
Rows:
* a user's first hybrid search (it builds the user's in-memory bm25 postings), then, with every
  user warm, hybrid / text / semantic search p50/p95 (unique queries: no cache hits), cache hit, add one,
  batch add rate (hashing embedder; the real embedder's batch rate is in its own table);
* query-size linearity: text search with a 1 KB, 10 KB and 125 KB query;
* interference: a small search issued while another caller's 125 KB search runs on the same
  memory (reads run on their own threads), compared with the same small search alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table, summarize, time_calls, write_json

from headroom.memory import HierarchicalMemory, MemoryConfig
from headroom.testing import HashEmbedder

BASE_WORDS = (
    "python go rust java coffee tea hiking climbing music jazz piano guitar paris tokyo berlin "
    "dog cat garden kitchen project deadline meeting doctor dentist birthday wedding football "
    "tennis marathon novel movie series sister brother mother father friend colleague manager "
    "startup bank fintech database postgres redis kafka docker kubernetes vacation beach mountain"
).split()
# A Zipf-like vocabulary: a few frequent words and a long tail, like real conversation text.
WORDS = BASE_WORDS + [f"{w}{i}" for i in range(40) for w in BASE_WORDS]
WEIGHTS = [1.0 / (rank + 1) for rank in range(len(WORDS))]


def sentence(rng: random.Random) -> str:
    """A stored fact: like extracted memories, every one starts with "User"."""
    return "User " + question(rng)


def question(rng: random.Random) -> str:
    return " ".join(rng.choices(WORDS, WEIGHTS, k=rng.randint(6, 14)))


def big_text(rng: random.Random, size: int) -> str:
    words: list[str] = []
    length = 0
    while length < size:
        w = rng.choice(WORDS) + str(rng.randrange(100_000))
        words.append(w)
        length += len(w) + 1
    return "user " + " ".join(words)


def build(hm: HierarchicalMemory, size: int, users: int, rng: random.Random) -> float:
    start = time.perf_counter()
    for offset in range(0, size, 5000):
        batch = [
            {"content": sentence(rng), "user_id": f"user{(offset + i) % users}",
             "session_id": f"s{(offset + i) % 50}", "scope": "user"}
            for i in range(min(5000, size - offset))
        ]  # fmt: skip
        hm.sync.add_batch(batch)
    return time.perf_counter() - start


def interference(
    hm: HierarchicalMemory, user: str, rng: random.Random, n: int
) -> dict[str, object]:
    """A small search issued while another caller's 125 KB search runs on the same memory."""
    huge = big_text(rng, 125_000)
    alone: list[float] = []
    behind: list[float] = []
    big: list[float] = []

    async def run() -> None:
        for _ in range(n):
            q = question(rng) + f" q{rng.random()}"
            t = time.perf_counter()
            await hm.search(q, user, top_k=10)
            alone.append((time.perf_counter() - t) * 1000)
            q2 = question(rng) + f" q{rng.random()}"
            t0 = time.perf_counter()
            big_task = asyncio.ensure_future(
                hm.search(huge + f" x{rng.random()}", "user1", top_k=10)
            )
            await asyncio.sleep(0)  # the big request reaches the worker first
            t = time.perf_counter()
            await hm.search(q2, user, top_k=10)
            behind.append((time.perf_counter() - t) * 1000)
            await big_task
            big.append((time.perf_counter() - t0) * 1000)

    asyncio.run(run())
    return {"small_alone": summarize(alone), "small_behind_125kb": summarize(behind),
            "big_125kb": summarize(big)}  # fmt: skip


def bench_db(size: int, users: int, repeat: int) -> dict[str, object]:
    rng = random.Random(size + users)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = MemoryConfig(db_path=Path(tmp) / "bench.db", cache_max_size=10_000)
        hm = HierarchicalMemory.create_sync(cfg, embedder=HashEmbedder(384))
        build_s = build(hm, size, users, rng)
        counter = iter(range(10**9))

        def query() -> str:  # unique: no cache hits
            return question(rng) + f" q{next(counter)}"

        def user() -> str:
            return f"user{rng.randrange(users)}"

        res: dict[str, object] = {"size": size, "users": users, "build_s": round(build_s, 2),
                                  "batch_add_per_s": round(size / build_s)}  # fmt: skip
        # A user's first search builds the user's in-memory bm25 postings: timed on its own,
        # then every user is warm (as in a running app) for the rows below.
        cold = [f"user{u}" for u in range(min(users, repeat))]
        res["search_hybrid_first_of_user"] = time_calls(
            lambda: hm.sync.search(query(), cold.pop(), top_k=10), len(cold)
        )
        for u in range(users):
            hm.sync.search(query(), f"user{u}", top_k=10)
        for mode in ("hybrid", "text", "semantic"):
            hm.sync.search(query(), user(), mode=mode)  # warm the per-connection helpers
            res[f"search_{mode}"] = time_calls(
                lambda mode=mode: hm.sync.search(query(), user(), top_k=10, mode=mode), repeat
            )
        from headroom.memory.ports import search_filter

        engine = hm._engine  # the engine alone: no reader-thread hop, no argument checks
        res["search_hybrid_engine_only"] = time_calls(
            lambda: engine.search(
                query(), search_filter(user()), top_k=10, min_similarity=0.0, mode="hybrid"
            ),
            repeat,
        )
        res["search_session_scoped"] = time_calls(
            lambda: hm.sync.search(query(), user(), "s7", top_k=10), repeat
        )
        fixed = question(rng)
        hm.sync.search(fixed, "user0", top_k=10)
        res["search_cache_hit"] = time_calls(lambda: hm.sync.search(fixed, "user0"), repeat)
        for kb in (1, 10, 125):
            text = big_text(rng, kb * 1000)
            res[f"text_query_{kb}kb"] = time_calls(
                lambda text=text: hm.sync.search(text + f" q{next(counter)}", "user0", mode="text"),
                max(10, repeat // 10),
            )
        res["interference"] = interference(hm, "user0", rng, max(10, repeat // 10))
        res["add_single"] = time_calls(lambda: hm.sync.add(sentence(rng), "user0"), repeat)
        batch = [{"content": sentence(rng), "user_id": "user1"} for _ in range(1000)]
        started = time.perf_counter()
        hm.sync.add_batch(batch)
        res["add_batch_1000_per_s"] = round(1000 / (time.perf_counter() - started))
        hm.sync.close()
        return res


def bench_embedder(repeat: int) -> dict[str, object]:
    from headroom.memory.adapters.embedders.onnx import OnnxEmbedder

    emb = OnnxEmbedder(threads=1)
    rng = random.Random(1)
    start = time.perf_counter()
    emb.embed(["warm up"])
    load_s = time.perf_counter() - start
    single = time_calls(lambda: emb.embed([sentence(rng)]), repeat)
    batch = [sentence(rng) for _ in range(256)]
    started = time.perf_counter()
    emb.embed(batch)
    rate = 256 / (time.perf_counter() - started)
    return {"model": f"onnx int8 {emb.model_name}", "load_s": round(load_s, 2),
            "single_query": single, "batch_per_s": round(rate)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k memories, fewer repeats")
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--no-store-wide", action="store_true", help="skip the one-user database")
    parser.add_argument("--no-embedder", action="store_true", help="skip the real embedder timing")
    args = parser.parse_args()
    size = 10_000 if args.quick else args.size
    repeat = 40 if args.quick else args.repeat
    load = os.getloadavg()
    dbs = [bench_db(size, args.users, repeat)]
    if not args.no_store_wide:
        dbs.append(bench_db(size, 1, repeat))
    ops = ["search_hybrid_first_of_user", "search_hybrid", "search_hybrid_engine_only", "search_text", "search_semantic", "search_session_scoped",
           "search_cache_hit", "add_single", "text_query_1kb", "text_query_10kb",
           "text_query_125kb"]  # fmt: skip
    rows = []
    for r in dbs:
        label = f"{r['size'] // r['users']:,} of {r['size']:,}"  # type: ignore[operator]
        for op in ops:
            s = r[op]
            assert isinstance(s, dict)
            rows.append([label, op, s["p50_ms"], s["p95_ms"]])
        inter = r["interference"]
        assert isinstance(inter, dict)
        for name in ("small_alone", "small_behind_125kb", "big_125kb"):
            rows.append(
                [label, f"interference: {name}", inter[name]["p50_ms"], inter[name]["p95_ms"]]
            )
        rows.append([label, "batch add (build) memories/s", r["batch_add_per_s"], ""])
        rows.append([label, "add_batch of 1000, memories/s", r["add_batch_1000_per_s"], ""])
    print(f"Engine latency excluding the query embedding (hashing embedder); load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start")  # fmt: skip
    print_table(["user's memories of total", "operation", "p50 ms", "p95 ms"], rows)
    payload: dict[str, object] = {"load_average": load, "engine": dbs}
    if not args.no_embedder:
        emb = bench_embedder(repeat)
        payload["embedder"] = emb
        single = emb["single_query"]
        assert isinstance(single, dict)
        print("\nReal embedder (add to every search and add for end-to-end):")
        print_table(
            ["model", "load s", "query p50 ms", "query p95 ms", "batch texts/s"],
            [[emb["model"], emb["load_s"], single["p50_ms"], single["p95_ms"], emb["batch_per_s"]]],
        )
    write_json("core_latency.json", payload)


if __name__ == "__main__":
    main()
