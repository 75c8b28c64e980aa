"""What the owner token buys: one user's FTS5 query with and without it, in one run.

Usage: python benchmarks/fts_owner.py [--size 30000] [--users 100] [--queries 30]

Same database, same informative terms (df-pruned, capped), raw SQLite: ``owner : "<user>" AND
search_text : (terms)`` ranked by bm25 vs ``search_text : (terms)`` ranked over every user's rows
(the previous layout's cost before the user filter could apply), plus the engine's text, semantic
and hybrid search for the same user (hashing embedder: excluding the query embedding).
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table, summarize, write_json
from core_latency import build, question

from headroom.memory import HierarchicalMemory, MemoryConfig
from headroom.memory.adapters.sqlite.fts5 import owner_token, query_words
from headroom.memory.ports import search_filter
from headroom.testing import HashEmbedder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=30_000)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="10k memories")
    args = parser.parse_args()
    if args.quick:
        args.size = 10_000
    load = os.getloadavg()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "fts.db"
        hm = HierarchicalMemory.create_sync(
            MemoryConfig(db_path=db, cache_enabled=False), embedder=HashEmbedder(384)
        )
        build(hm, args.size, args.users, rng)
        engine = hm._engine
        queries = [question(rng) for _ in range(args.queries)]
        f = search_filter("user3")
        with engine.store.engine.connect() as conn:
            terms = [engine.text_index._informative(conn, query_words(q)) for q in queries]  # type: ignore[union-attr]
        con = sqlite3.connect(db)
        owner = owner_token("user3")
        sql = "SELECT rowid FROM memory_fts WHERE memory_fts MATCH ? ORDER BY rank LIMIT 100"

        def raw(with_owner: bool) -> dict[str, float]:
            out = []
            for ts in terms:
                match = "search_text : (" + " OR ".join(f'"{t}"' for t in ts) + ")"
                if with_owner:
                    match = f'owner : "{owner}" AND {match}'
                t = time.perf_counter()
                con.execute(sql, (match,)).fetchall()
                out.append((time.perf_counter() - t) * 1000)
            return summarize(out)

        def engine_mode(mode: str) -> dict[str, float]:
            out = []
            for q in queries:
                t = time.perf_counter()
                engine.search(q, f, top_k=10, min_similarity=0.0, mode=mode)
                out.append((time.perf_counter() - t) * 1000)
            return summarize(out)

        res = {"fts5_with_owner": raw(True), "fts5_all_users": raw(False)}
        for mode in ("text", "semantic", "hybrid"):
            res[f"engine_{mode}"] = engine_mode(mode)
        con.close()
        hm.sync.close()
    print(f"{args.size:,} memories, {args.users} users, {args.queries} queries; load average "
          f"{load[0]:.2f} at start")  # fmt: skip
    print_table(["query", "p50 ms", "p95 ms"],
                [[k, v["p50_ms"], v["p95_ms"]] for k, v in res.items()])  # fmt: skip
    ratio = res["fts5_all_users"]["p50_ms"] / max(res["fts5_with_owner"]["p50_ms"], 1e-9)
    print(f"owner token: {ratio:.1f}x cheaper FTS5 query for one user")
    write_json("fts_owner.json", {"load_average": load, "size": args.size, "users": args.users,
                                  "results": res, "owner_speedup": ratio})  # fmt: skip


if __name__ == "__main__":
    main()
