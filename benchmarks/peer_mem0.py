"""Headroom and Mem0 side by side, in one run, with the same all-MiniLM-L6-v2 weights, offline.

Usage: python benchmarks/peer_mem0.py [--quick] [--sizes 1000 10000] [--users 1 100]
    [--queries 100] [--timed-adds 200] [--no-locomo] [--setup-only]

Mem0 runs in its own virtualenv, ``benchmarks/.venv-mem0`` (created on first use: ``mem0ai``
from PyPI; torch, sentence-transformers and faiss are reused from the running environment through
a ``.pth`` file instead of being downloaded again). Mem0 is configured fully offline: the
``huggingface`` embedder pointed at the packaged all-MiniLM-L6-v2 folder, the ``faiss`` vector
store, ``add(infer=False)`` (no LLM), search with the user filter, telemetry off. Headroom runs
with its default ``MemoryConfig`` (ONNX int8 MiniLM), search cache off.

Every measurement runs in a fresh process per side (``_headroom_worker.py``, ``_mem0_worker.py``),
the two sides alternating which goes first, on the same facts and queries (``core_latency``'s
generator). For each size and user count: the store is filled with all but the last
``--timed-adds`` facts (Headroom: ``add_batch`` of 1,000, timed as its batch throughput; Mem0, which
has no batch call: ``add`` with two shortcuts that keep its payloads, see ``_mem0_worker.fill``),
then ``--timed-adds`` single adds (add p50; Mem0's sequential rate is its batch throughput), then
one search per user (its first: Headroom builds the user's in-memory structures then), then
``--queries`` searches over the users in turn (p50/p95, and minus the same query's embedding), peak RSS of the process,
disk, and a second fresh process that opens the store and answers one search (seconds from
before the library's import to the first result). LoCoMo dev (``locomo_retrieval``'s split and
recall): every turn stored in both, one user per conversation, every category 1-4 question asked
through each one's search with that user, top 10. Ratios are Mem0 / Headroom (> 1: Headroom
better), throughput Headroom / Mem0.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table, summarize, write_json
from core_latency import question, sentence

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-mem0"
MEM0_VERSION = "2.2.1"
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MEM0_TELEMETRY": "False",
           "OPENAI_API_KEY": "sk-offline-unused", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": "1"}  # fmt: skip
TIMEOUT_S = 3600


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


def worker(side: str, mode: str, cfg: dict[str, Any], mem0_python: Path) -> dict[str, Any]:
    """Run one side's ``mode`` in a fresh process; its JSON plus the process's wall seconds."""
    python, script = (
        (mem0_python, HERE / "_mem0_worker.py")
        if side == "mem0"
        else (Path(sys.executable), HERE / "_headroom_worker.py")
    )
    from headroom.memory.adapters.embedders.model_files import find_minilm_path

    cfg = {**cfg, "model_path": str(find_minilm_path())}
    Path(cfg["dir"]).mkdir(parents=True, exist_ok=True)
    cfg_file = Path(cfg["dir"]).parent / f"{side}-{mode}.json"
    cfg_file.write_text(json.dumps(cfg), encoding="utf-8")
    env = {**os.environ, **OFFLINE, "MEM0_DIR": str(Path(cfg["dir"]).parent / "mem0-home")}
    t = time.perf_counter()
    out = subprocess.run([str(python), str(script), mode, str(cfg_file)], check=False,
                         capture_output=True, text=True, env=env, cwd=cfg["dir"],
                         timeout=TIMEOUT_S)  # fmt: skip
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"the {side} {mode} run failed:\n{out.stderr[-3000:]}")
    data: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    data["process_wall_s"] = round(wall, 2)
    return data


def disk_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6, 1)


def one_side(side: str, base: Path, cfg: dict[str, Any], mem0_python: Path) -> dict[str, Any]:
    cfg = {**cfg, "dir": str(base / side)}
    raw = worker(side, "workload", cfg, mem0_python)
    beyond = [s - e for s, e in zip(raw["search"], raw["embed"], strict=True)]
    cold = worker(side, "cold", cfg, mem0_python)
    return {
        "add_one": summarize(raw["add_one"]),
        "batch_per_s": round(raw.get("batch_per_s", raw.get("sequential_per_s", 0.0)), 1),
        "first_search_per_user": summarize(raw["first_search"]),
        "search": summarize(raw["search"]),
        "search_beyond_embedding": summarize(beyond),
        "query_embedding": summarize(raw["embed"]),
        "results_returned_mean": round(statistics.fmean(raw["returned"]), 2),
        "peak_rss_mb": round(raw["peak_rss_mb"]),
        "disk_mb": disk_mb(Path(cfg["dir"])),
        "cold_first_result_s": round(cold["first_result_s"], 2),
        "cold_process_wall_s": cold["process_wall_s"],
        "cold_peak_rss_mb": round(cold["peak_rss_mb"]),
        "workload_process_wall_s": raw["process_wall_s"],
        "mem0_fill_s": round(raw["fill_s"], 1) if "fill_s" in raw else None,
    }


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else ""


def compare_rows(size: int, users: int, h: dict[str, Any], m: dict[str, Any]) -> list[list[Any]]:
    def p(d: dict[str, Any], key: str) -> float:
        return float(d[key]["p50_ms"])

    rows = [
        ["search p50 ms (p95)", f"{p(h, 'search'):.1f} ({h['search']['p95_ms']:.1f})",
         f"{p(m, 'search'):.1f} ({m['search']['p95_ms']:.1f})", ratio(p(m, "search"), p(h, "search"))],
        ["search beyond embedding p50 ms", f"{p(h, 'search_beyond_embedding'):.1f}",
         f"{p(m, 'search_beyond_embedding'):.1f}",
         ratio(p(m, "search_beyond_embedding"), p(h, "search_beyond_embedding"))],
        ["first search of a user p50 ms", f"{p(h, 'first_search_per_user'):.1f}",
         f"{p(m, 'first_search_per_user'):.1f}",
         ratio(p(m, "first_search_per_user"), p(h, "first_search_per_user"))],
        ["results returned (of 10), mean", h["results_returned_mean"], m["results_returned_mean"], ""],
        ["add one p50 ms", f"{p(h, 'add_one'):.1f}", f"{p(m, 'add_one'):.1f}",
         ratio(p(m, "add_one"), p(h, "add_one"))],
        ["batch add memories/s", h["batch_per_s"], m["batch_per_s"],
         ratio(h["batch_per_s"], m["batch_per_s"])],
        ["peak RSS MB", h["peak_rss_mb"], m["peak_rss_mb"], ratio(m["peak_rss_mb"], h["peak_rss_mb"])],
        ["disk MB", h["disk_mb"], m["disk_mb"], ratio(m["disk_mb"], h["disk_mb"])],
        ["cold open to first result s", h["cold_first_result_s"], m["cold_first_result_s"],
         ratio(m["cold_first_result_s"], h["cold_first_result_s"])],
    ]  # fmt: skip
    return [[size, users, *r] for r in rows]


def locomo_recall(retrieved: list[list[str]], questions: list[Any]) -> dict[str, Any]:
    """Mean recall@5/@10 per category and overall, as ``locomo_retrieval._summary`` computes it."""
    from locomo_retrieval import CATEGORIES, recall_at_k

    out: dict[str, Any] = {}
    for cat in sorted({q.category for q in questions}):
        pairs = [(g, q) for g, q in zip(retrieved, questions, strict=True) if q.category == cat]
        out[CATEGORIES[cat]] = {
            f"R@{k}": round(statistics.fmean(recall_at_k(g, q.evidence, k) for g, q in pairs), 4)
            for k in (5, 10)
        }
    out["overall"] = {
        f"R@{k}": round(statistics.fmean(recall_at_k(g, q.evidence, k) for g, q in
                                         zip(retrieved, questions, strict=True)), 4)
        for k in (5, 10)
    }  # fmt: skip
    return out


def run_locomo(base: Path, mem0_python: Path, quick: bool) -> dict[str, Any]:
    from locomo_retrieval import DEFAULT_DATA, build_memories, load_samples, questions_of

    samples = load_samples(DEFAULT_DATA)
    questions = [q for s in samples for q in questions_of(s)]
    turns = [(m["user_id"], m["content"], m["metadata"]["dia_id"])
             for s in samples for m in build_memories(s, context="none", entities=False)]  # fmt: skip
    cfg = {"data": str(DEFAULT_DATA), "top_k": 10, "wide_k": len(turns), "turns": turns,
           "questions": [(q.sample_id, q.question) for q in questions]}  # fmt: skip
    h = worker("headroom", "locomo", {**cfg, "dir": str(base / "headroom")}, mem0_python)
    m = worker("mem0", "locomo", {**cfg, "dir": str(base / "mem0")}, mem0_python)
    return {
        "dataset": {"file": str(DEFAULT_DATA), "conversations": len(samples),
                    "turns": len(turns), "questions": len(questions)},
        "headroom_recommended_storage": locomo_recall(h["retrieved"]["recommended"], questions),
        "headroom_plain_turns": locomo_recall(h["retrieved"]["plain"], questions),
        "mem0": locomo_recall(m["retrieved"], questions),
        "mem0_wide_top_k": locomo_recall(m["retrieved_wide"], questions),
        "mem0_results_returned_mean": round(statistics.fmean(len(g) for g in m["retrieved"]), 2),
        "peak_rss_mb": {"headroom": round(h["peak_rss_mb"]), "mem0": round(m["peak_rss_mb"])},
        "process_wall_s": {"headroom": h["process_wall_s"], "mem0": m["process_wall_s"]},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 300 memories, 20 queries, 20 timed adds, no LoCoMo")  # fmt: skip
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10_000])
    parser.add_argument("--users", type=int, nargs="*", default=[1, 100])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--timed-adds", type=int, default=200)
    parser.add_argument("--no-locomo", action="store_true")
    parser.add_argument("--setup-only", action="store_true")
    args = parser.parse_args()
    mem0_python = ensure_venv()
    if args.setup_only:
        return
    if args.quick:
        args.sizes, args.queries, args.timed_adds, args.no_locomo = [300], 20, 20, True
    load = os.getloadavg()
    started = time.time()
    rows, results = [], []
    with tempfile.TemporaryDirectory(prefix="peer-mem0-") as tmp:
        n = 0
        for size in args.sizes:
            for users in args.users:
                rng = random.Random(size * 1000 + users)
                cfg = {"facts": [sentence(rng) for _ in range(size)], "users": users,
                       "queries": [question(rng) for _ in range(args.queries)],
                       "warmup": question(rng),
                       "timed_adds": min(args.timed_adds, size // 2)}  # fmt: skip
                base = Path(tmp) / f"{size}-{users}"
                order = ("headroom", "mem0") if n % 2 == 0 else ("mem0", "headroom")
                n += 1
                res: dict[str, Any] = {"size": size, "users": users, "order": order}
                for side in order:
                    res[side] = one_side(side, base, cfg, mem0_python)
                    print(f"  {size} memories, {users} users, {side}: done", flush=True)
                results.append(res)
                rows += compare_rows(size, users, res["headroom"], res["mem0"])
        locomo = None if args.no_locomo else run_locomo(Path(tmp) / "locomo", mem0_python, False)
    print(f"\nHeadroom (ONNX int8 MiniLM) vs Mem0 {MEM0_VERSION} (huggingface embedder, same MiniLM "
          f"files); load average {load[0]:.2f} at start, {time.time() - started:.0f} s")  # fmt: skip
    print_table(["memories", "users", "metric", "headroom", "mem0", "ratio"], rows)
    if locomo:
        print(f"\nLoCoMo dev ({locomo['dataset']['questions']} questions), overall R@5 / R@10:")
        for key, label in (("headroom_recommended_storage", "Headroom, recommended storage"),
                           ("headroom_plain_turns", "Headroom, plain turns (as Mem0)"),
                           ("mem0", "Mem0, search top_k=10"),
                           ("mem0_wide_top_k", "Mem0, top_k=all turns, first 10")):  # fmt: skip
            o = locomo[key]["overall"]
            print(f"  {label:36} {o['R@5']:.3f} / {o['R@10']:.3f}")
    payload = {"load_average": load, "args": vars(args), "mem0_version": MEM0_VERSION,
               "results": results, "locomo": locomo}  # fmt: skip
    write_json("peer_mem0_quick.json" if args.quick else "peer_mem0.json", payload)


if __name__ == "__main__":
    main()
