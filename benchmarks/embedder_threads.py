"""Embedder latency and throughput vs intra-op threads, idle and under CPU contention.

Measures single-query p50/p95 and batch-32 throughput of the torch (sentence-transformers) and
ONNX (int8 MiniLM) embedders with threads=1 and threads=2, first on the (nominally) idle
machine, then while a second process spins a busy loop. Prints a table and writes
``benchmarks/results/embedder_threads.json``.

    python benchmarks/embedder_threads.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # script, not library: never touch the hub

from headroom.memory.adapters.embedders.onnx import OnnxEmbedder
from headroom.memory.adapters.embedders.sentence_transformer import SentenceTransformerEmbedder
from headroom.memory.ports import Embedder

RESULTS = Path(__file__).resolve().parent / "results" / "embedder_threads.json"
BUSY_LIMIT_S = 150.0  # the load generator stops by itself after this, whatever happens

_WORDS = [
    "the",
    "user",
    "prefers",
    "dark",
    "mode",
    "and",
    "short",
    "answers",
    "about",
    "python",
    "memory",
    "search",
    "latency",
    "vector",
    "index",
    "offline",
    "model",
    "weights",
    "meeting",
    "tomorrow",
    "project",
    "deadline",
    "coffee",
    "berlin",
    "weather",
    "rainy",
    "favourite",
    "language",
    "database",
    "backup",
    "quarterly",
    "revenue",
    "travel",
    "plans",
]


def sentences(n: int, seed: int = 0) -> list[str]:
    """~15-word sentences, deterministic."""
    out = []
    for i in range(n):
        k = (seed * 7919 + i * 104729) % len(_WORDS)
        words = [_WORDS[(k + j * (i % 5 + 1)) % len(_WORDS)] for j in range(15)]
        out.append(" ".join(words).capitalize() + ".")
    return out


def busy_loop(stop: Any, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    x = 0
    while time.monotonic() < deadline and not stop.is_set():
        for i in range(200_000):
            x ^= i


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[idx]


def measure(emb: Embedder, *, queries: int, batches: int, cap_s: float) -> dict[str, Any]:
    texts = sentences(queries + 32 * batches, seed=1)
    emb.embed(texts[:4])  # warm-up (and lazy load)
    lat: list[float] = []
    start = time.perf_counter()
    for text in texts[:queries]:
        t0 = time.perf_counter()
        emb.embed([text])
        lat.append((time.perf_counter() - t0) * 1000)
        if time.perf_counter() - start > cap_s:
            break
    done, elapsed = 0, 0.0
    for b in range(batches):
        batch = texts[queries + 32 * b : queries + 32 * (b + 1)]
        t0 = time.perf_counter()
        emb.embed(batch)
        elapsed += time.perf_counter() - t0
        done += len(batch)
        if elapsed > cap_s:
            break
    return {
        "single_p50_ms": round(statistics.median(lat), 2),
        "single_p95_ms": round(percentile(lat, 95), 2),
        "single_n": len(lat),
        "batch32_per_s": round(done / elapsed, 1),
        "batch32_n": done,
    }


def run(quick: bool) -> dict[str, Any]:
    queries, batches, cap_s = (40, 3, 6.0) if quick else (200, 10, 20.0)
    embedders: dict[str, Embedder] = {}
    t0 = time.perf_counter()
    for threads in (1, 2):
        embedders[f"torch t={threads}"] = SentenceTransformerEmbedder(threads=threads)
        embedders[f"onnx-int8 t={threads}"] = OnnxEmbedder(threads=threads)
    for emb in embedders.values():
        emb.embed(["load"])
    load_s = time.perf_counter() - t0

    rows: list[dict[str, Any]] = []
    for condition in ("idle", "busy"):
        stop = None
        proc = None
        if condition == "busy":
            ctx = mp.get_context("spawn")
            stop = ctx.Event()
            proc = ctx.Process(target=busy_loop, args=(stop, BUSY_LIMIT_S), daemon=True)
            proc.start()
            time.sleep(1.0)
        try:
            for name, emb in embedders.items():
                loadavg = os.getloadavg()[0]
                res = measure(emb, queries=queries, batches=batches, cap_s=cap_s)
                rows.append(
                    {"embedder": name, "condition": condition, "loadavg_1m": loadavg, **res}
                )
                print(_fmt(rows[-1]), flush=True)
        finally:
            if proc is not None and stop is not None:
                stop.set()
                proc.join(timeout=5)
                if proc.is_alive():
                    proc.terminate()
    for emb in embedders.values():
        emb.close()
    import onnxruntime
    import sentence_transformers
    import torch

    return {
        "mode": "quick" if quick else "full",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "versions": {
            "torch": torch.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
        "model_load_s_all_four": round(load_s, 2),
        "busy_load": "one spawned process spinning a pure-Python loop",
        "rows": rows,
    }


HEADER = (
    f"{'embedder':<16} {'cond':<5} {'load1m':>6} {'p50 ms':>8} {'p95 ms':>8} {'n':>4} {'b32/s':>8}"
)


def _fmt(r: dict[str, Any]) -> str:
    return (
        f"{r['embedder']:<16} {r['condition']:<5} {r['loadavg_1m']:>6.2f} {r['single_p50_ms']:>8.2f} "
        f"{r['single_p95_ms']:>8.2f} {r['single_n']:>4} {r['batch32_per_s']:>8.1f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer iterations (~1-2 min)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    print(HEADER)
    result = run(args.quick)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
