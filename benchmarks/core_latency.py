"""Core engine latency: add (single, batch), semantic / text / hybrid search and cache hits.

Usage: python benchmarks/core_latency.py [--quick] [--sizes 1000 10000 100000]

The store, FTS5 and FAISS work is measured with a fast hashing embedder (384-d) so that 100k
memories can be built in seconds; the real embedder's cost (all-MiniLM-L6-v2, 1 thread) is
measured separately and must be added to search and add latencies for the end-to-end figure.
"""

from __future__ import annotations

import argparse
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
USERS = 10


def sentence(rng: random.Random) -> str:
    """A stored fact: like extracted memories, every one starts with "User"."""
    return "User " + question(rng)


def question(rng: random.Random) -> str:
    return " ".join(rng.choices(WORDS, WEIGHTS, k=rng.randint(6, 14)))


def build(hm: HierarchicalMemory, size: int, rng: random.Random) -> float:
    start = time.perf_counter()
    for offset in range(0, size, 2000):
        batch = [
            {"content": sentence(rng), "user_id": f"user{(offset + i) % USERS}",
             "session_id": f"s{(offset + i) % 50}", "scope": "user"}
            for i in range(min(2000, size - offset))
        ]  # fmt: skip
        hm.sync.add_batch(batch)
    return time.perf_counter() - start


def bench_size(size: int, repeat: int) -> dict[str, object]:
    rng = random.Random(size)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = MemoryConfig(db_path=Path(tmp) / "bench.db", cache_max_size=10_000)
        hm = HierarchicalMemory.create_sync(cfg, embedder=HashEmbedder(384))
        build_s = build(hm, size, rng)
        queries = [question(rng) for _ in range(repeat)]
        it = iter(range(10**9))

        def query() -> str:
            return queries[next(it) % len(queries)] + f" q{next(it)}"  # unique: no cache hits

        res: dict[str, object] = {"size": size, "build_s": round(build_s, 2)}
        res["add_single"] = time_calls(lambda: hm.sync.add(sentence(rng), "user0"), repeat)
        batch = [{"content": sentence(rng), "user_id": "user1"} for _ in range(100)]
        res["add_batch_100"] = time_calls(lambda: hm.sync.add_batch(batch), max(5, repeat // 20))
        for mode in ("semantic", "text", "hybrid"):
            res[f"search_{mode}"] = time_calls(
                lambda mode=mode: hm.sync.search(
                    query(), f"user{rng.randrange(USERS)}", top_k=10, mode=mode
                ),
                repeat,
            )
        fixed = queries[0]
        hm.sync.search(fixed, "user3", top_k=10)
        res["search_cache_hit"] = time_calls(
            lambda: hm.sync.search(fixed, "user3", top_k=10), repeat
        )
        res["search_session_scoped"] = time_calls(
            lambda: hm.sync.search(query(), "user2", "s7", top_k=10), repeat
        )
        hm.sync.close()
        return res


def bench_embedder(repeat: int) -> dict[str, object]:
    from headroom.memory.adapters.embedders.sentence_transformer import SentenceTransformerEmbedder

    emb = SentenceTransformerEmbedder(threads=1)
    rng = random.Random(1)
    start = time.perf_counter()
    emb.embed(["warm up"])
    load_s = time.perf_counter() - start
    single = time_calls(lambda: emb.embed([sentence(rng)]), repeat)
    batch = [sentence(rng) for _ in range(32)]
    batch32 = time_calls(lambda: emb.embed(batch), max(5, repeat // 20))
    return {
        "model": emb.model_name,
        "load_s": round(load_s, 2),
        "single_query": single,
        "batch_32": batch32,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k and 10k only, fewer repeats")
    parser.add_argument("--sizes", type=int, nargs="*")
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--no-embedder", action="store_true", help="skip the real embedder timing")
    args = parser.parse_args()
    sizes = args.sizes or ([1000, 10_000] if args.quick else [1000, 10_000, 100_000])
    repeat = 60 if args.quick else args.repeat
    results = [bench_size(size, repeat) for size in sizes]
    ops = ["add_single", "add_batch_100", "search_semantic", "search_text", "search_hybrid",
           "search_session_scoped", "search_cache_hit"]  # fmt: skip
    rows = []
    for r in results:
        for op in ops:
            s = r[op]
            assert isinstance(s, dict)
            rows.append([r["size"], op, s["p50_ms"], s["p95_ms"]])
    print("Engine latency (store + FTS5 + FAISS; hashing embedder, so excluding model time)")
    print_table(["memories", "operation", "p50 ms", "p95 ms"], rows)
    payload: dict[str, object] = {"engine": results}
    if not args.no_embedder:
        emb = bench_embedder(repeat)
        payload["embedder"] = emb
        print("\nReal embedder (add to add/search for end-to-end):")
        single, b32 = emb["single_query"], emb["batch_32"]
        assert isinstance(single, dict) and isinstance(b32, dict)
        print_table(
            ["model", "load s", "query p50 ms", "query p95 ms", "batch32 p50 ms"],
            [[emb["model"], emb["load_s"], single["p50_ms"], single["p95_ms"], b32["p50_ms"]]],
        )
    write_json("core_latency.json", payload)


if __name__ == "__main__":
    summarize([])  # keep the helper import used for linters
    main()
