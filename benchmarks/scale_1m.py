"""Scale to 1M memories: build rate, per-user search, RSS, close/save cost, file sizes, reopen.

Usage: python benchmarks/scale_1m.py [--quick] [--size 1000000] [--users 1000] [--repeat 100]
                                     [--dir DIR [--reuse]]

``--size`` memories over ``--users`` users (``--quick``: 20k over 100) with the hashing embedder
(384-d, engine cost only), built with ``add_batch`` of 5,000 like ``core_latency.py``; the HNSW
build that ``VectorBackend.AUTO`` starts at ``hnsw_min_entries`` is waited for. Every phase runs
in a fresh process so its peak RSS (``ru_maxrss``) is its own:

* build: build rate, close() after the build (the full index save);
* reopen: open time and peak RSS while opening, first search, a user's first hybrid search (it
  builds the user's in-memory bm25 postings), the time to warm every user, then per-user hybrid /
  semantic / text search p50/p95 (random users, unique queries: no cache hits), steady RSS (every
  user's postings held), close() after this read-only session (and whether it wrote any file);
* add: open, add 100 memories one by one, close() (what a small session costs to save);
* reopen after the add: open time, peak RSS, first search.

``--dir DIR`` keeps the database there; ``--reuse`` skips the build and measures the other phases
on an existing database (e.g. one built by an older version). Prints a table and writes
``benchmarks/results/scale_1m.json`` (``scale_1m_quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table, summarize, write_json

BATCH = 5000
HNSW_MIN = int(os.environ.get("SCALE_HNSW_MIN", "200000"))  # the default; --quick: 5,000


def rss_mb() -> float:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def files_of(db: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in sorted(db.parent.iterdir()):
        if p.is_file() and p.name.startswith(db.name):
            out[p.name] = {
                "mb": round(p.stat().st_size / 2**20, 1),
                "mtime_ns": p.stat().st_mtime_ns,
            }
    return out


def _open(db: Path) -> Any:
    from headroom.memory import HierarchicalMemory, MemoryConfig
    from headroom.testing import HashEmbedder

    cfg = MemoryConfig(db_path=db, cache_max_size=0, hnsw_min_entries=HNSW_MIN)
    return HierarchicalMemory.create_sync(cfg, embedder=HashEmbedder(384))


def _wait_for_index(hm: Any) -> None:
    index = hm._engine.vector_index  # benchmark only: wait for the background HNSW build
    wait = getattr(index, "wait_for_build", None)
    if wait is not None:
        wait()


def _timed(fn: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, round(time.perf_counter() - start, 3)


def phase_build(db: Path, size: int, users: int) -> dict[str, Any]:
    from core_latency import sentence

    rng = random.Random(size)
    hm = _open(db)
    start = time.perf_counter()
    for offset in range(0, size, BATCH):
        batch = [
            {"content": sentence(rng), "user_id": f"user{(offset + i) % users}",
             "session_id": f"s{(offset + i) % 50}", "scope": "user"}
            for i in range(min(BATCH, size - offset))
        ]  # fmt: skip
        hm.sync.add_batch(batch)
    adds_s = time.perf_counter() - start
    _wait_for_index(hm)
    build_s = time.perf_counter() - start
    hm.sync.search("warm up", "user0", mode="semantic")  # the engine catches up after the swap
    rss = rss_mb()
    _, close_s = _timed(hm.sync.close)
    return {"adds_s": round(adds_s, 1), "build_s": round(build_s, 1),
            "build_per_s": round(size / build_s), "rss_after_build_mb": rss,
            "close_after_build_s": close_s, "peak_rss_mb": peak_rss_mb()}  # fmt: skip


def phase_reopen(db: Path, users: int, repeat: int) -> dict[str, Any]:
    from core_latency import question

    rng = random.Random(repeat + users)
    counter = iter(range(10**9))
    before = files_of(db)
    hm, open_s = _timed(lambda: _open(db))
    peak_open = peak_rss_mb()
    _, first_s = _timed(lambda: hm.sync.search(question(rng), "user0", top_k=10))
    res: dict[str, Any] = {"open_s": open_s, "peak_rss_open_mb": peak_open,
                           "first_search_ms": round(first_s * 1000, 1)}  # fmt: skip
    # A user's first search builds the user's in-memory bm25 postings: timed on its own for
    # users not searched yet, then every user is warmed (as in a running app; the RSS after it
    # holds every user's postings) before the per-user rows.
    cold = [f"user{u}" for u in range(1, min(users, repeat + 1))]
    res["search_hybrid_first_of_user"] = summarize([
        _timed(lambda u=u: hm.sync.search(question(rng) + f" q{next(counter)}", u, top_k=10))[1]
        * 1000 for u in cold
    ])  # fmt: skip
    warm_started = time.perf_counter()
    for u in range(users):
        hm.sync.search(question(rng) + f" q{next(counter)}", f"user{u}", top_k=10)
    res["warm_all_users_s"] = round(time.perf_counter() - warm_started, 1)
    for mode in ("hybrid", "semantic", "text"):
        samples = []
        for _ in range(repeat):
            q, user = question(rng) + f" q{next(counter)}", f"user{rng.randrange(users)}"
            t = time.perf_counter()
            hm.sync.search(q, user, top_k=10, mode=mode)
            samples.append((time.perf_counter() - t) * 1000)
        res[f"search_{mode}"] = summarize(samples)
    res["steady_rss_mb"] = rss_mb()
    _, res["close_read_only_s"] = _timed(hm.sync.close)
    after = files_of(db)
    index_files = {n for n in before.keys() | after.keys() if ".faiss" in n}
    res["close_read_only_wrote"] = sorted(n for n in index_files if before.get(n) != after.get(n))
    res["peak_rss_mb"] = peak_rss_mb()
    return res


def phase_add(db: Path, users: int) -> dict[str, Any]:
    from core_latency import sentence

    rng = random.Random(7)
    hm, open_s = _timed(lambda: _open(db))
    samples = []
    for i in range(100):
        t = time.perf_counter()
        hm.sync.add(sentence(rng), f"user{i % users}")
        samples.append((time.perf_counter() - t) * 1000)
    rss = rss_mb()
    _, close_s = _timed(hm.sync.close)
    return {"open_s": open_s, "add_one": summarize(samples), "close_after_100_adds_s": close_s,
            "rss_after_adds_mb": rss, "peak_rss_mb": peak_rss_mb()}  # fmt: skip


PHASES = {"build", "reopen", "add"}


def run_phase(name: str, db: Path, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--phase", name, "--dir", str(db.parent), "--size",
           str(args.size), "--users", str(args.users), "--repeat", str(args.repeat)]  # fmt: skip
    if args.quick:
        cmd.append("--quick")
    print(f"[{time.strftime('%H:%M:%S')}] phase {name} ...", flush=True)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["files_mb"] = {n: f["mb"] for n, f in files_of(db).items()}
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {json.dumps(result)}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k memories over 100 users")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--dir", type=Path, help="keep the database in this directory")
    parser.add_argument("--reuse", action="store_true", help="skip the build (needs --dir)")
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.size, args.users, args.repeat = 20_000, 100, 30
        os.environ["SCALE_HNSW_MIN"] = "5000"  # exercise the HNSW path (children inherit it)
    if args.phase:  # a child process: print one JSON line
        db = args.dir / "bench.db"
        if args.phase == "build":
            res = phase_build(db, args.size, args.users)
        elif args.phase == "reopen":
            res = phase_reopen(db, args.users, args.repeat)
        else:
            res = phase_add(db, args.users)
        print(json.dumps(res))
        return
    if args.reuse and not args.dir:
        parser.error("--reuse needs --dir")
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.dir or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        db = directory / "bench.db"
        phases: dict[str, Any] = {}
        if not args.reuse:
            phases["build"] = run_phase("build", db, args)
        phases["reopen"] = run_phase("reopen", db, args)
        phases["reopen_again"] = run_phase("reopen", db, args)  # after a read-only session
        # two small sessions: the first may convert an index file of an older format
        for n in ("", "_again"):
            phases[f"add{n}"] = run_phase("add", db, args)
            phases[f"reopen_after_add{n}"] = run_phase("reopen", db, args)
    report(args, load, phases)


def report(args: argparse.Namespace, load: tuple[float, ...], phases: dict[str, Any]) -> None:
    rows: list[list[Any]] = []
    b = phases.get("build")
    if b:
        rows += [["build (add_batch of 5,000 + HNSW build), memories/s", b["build_per_s"]],
                 ["RSS after the build, MB", b["rss_after_build_mb"]],
                 ["close() after the build, s", b["close_after_build_s"]]]  # fmt: skip
    r = phases["reopen"]
    first = r["search_hybrid_first_of_user"]
    rows += [["a user's first hybrid search (builds its postings) p50 / p95 ms",
              f"{first['p50_ms']} / {first['p95_ms']}"],
             ["warm every user (one search each), s", r["warm_all_users_s"]]]  # fmt: skip
    for mode in ("hybrid", "semantic", "text"):
        s = r[f"search_{mode}"]
        rows.append([f"per-user {mode} search p50 / p95 ms", f"{s['p50_ms']} / {s['p95_ms']}"])
    rows += [["steady RSS (reopened, every user's postings held), MB", r["steady_rss_mb"]]]
    labels = {"reopen": "reopen", "reopen_again": "reopen after a read-only session",
              "add": "open, add 100 one by one", "reopen_after_add": "reopen after adding 100",
              "add_again": "again: add 100", "reopen_after_add_again": "again: reopen after adding 100"}  # fmt: skip
    for key, label in labels.items():
        p = phases.get(key)
        if p is None:
            continue
        if key.startswith("add"):
            add = p["add_one"]
            rows += [[f"{label}: add one p50 / p95 ms", f"{add['p50_ms']} / {add['p95_ms']}"],
                     [f"{label}: close() s", p["close_after_100_adds_s"]],
                     [f"{label}: RSS after the adds / peak RSS MB",
                      f"{p.get('rss_after_adds_mb')} / {p.get('peak_rss_mb')}"]]  # fmt: skip
        else:
            rows += [[f"{label}: open s / peak RSS MB / first search ms",
                      f"{p['open_s']} / {p['peak_rss_open_mb']} / {p['first_search_ms']}"],
                     [f"{label}: close() s, index files written",
                      f"{p['close_read_only_s']}, {p['close_read_only_wrote'] or 'none'}"]]  # fmt: skip
    last = phases.get("reopen_after_add_again") or phases["reopen_after_add"]
    for name, mb in last["files_mb"].items():
        rows.append([f"file {name}, MB", mb])
    print(f"\n{args.size:,} memories over {args.users:,} users (hashing embedder); load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start")  # fmt: skip
    print_table(["measure", "value"], rows)
    name = "scale_1m_quick.json" if args.quick else "scale_1m.json"
    write_json(name, {"size": args.size, "users": args.users, "load_average": load, **phases})


if __name__ == "__main__":
    main()
