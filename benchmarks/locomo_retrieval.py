"""LoCoMo retrieval evaluation: recall@k of the evidence turns, default search vs baselines.

Stores every dialogue turn of the LoCoMo dev split as a memory through the public API (one user
per conversation, the session date as ``valid_from``, ``dia_id`` and speaker in metadata), asks
every question of categories 1-4 through ``HierarchicalMemory.search`` (user_id only, top_k=10,
the call injection uses) and reports recall@5 / recall@10 of the evidence turns per category and
overall, plus query latency p50/p95. Methods, all on the same data in the same process:

* ``hybrid`` - the default search (``mode="hybrid"``);
* ``fts5`` - SQLite FTS5 bm25 alone (``mode="text"``: Porter stemming, same indexed text);
* ``bm25`` - plain Okapi BM25 over the turn text (k1=1.5, b=0.75, lowercase words, no stemming),
  computed in this script, as the textbook keyword baseline;
* ``dense`` - cosine similarity alone (``mode="semantic"``).

The data is CC BY-NC and stays in ``../shared/data``; it is read in place, never copied.

    python benchmarks/locomo_retrieval.py [--data PATH] [--conversations N] [--quick] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # script, not library: never touch the hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from headroom.memory import HierarchicalMemory, MemoryConfig
from headroom.memory.ports import Embedder

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "locomo" / "locomo-dev.json"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "locomo_retrieval.json"
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
DATE_FORMAT = "%I:%M %p on %d %B, %Y"  # "1:56 pm on 8 May, 2023"
_SESSION = re.compile(r"^session_(\d+)$")
_DIA_ID = re.compile(r"D\s*:?\s*(\d+)\s*:\s*(\d+)")
_WORD = re.compile(r"\w+", re.UNICODE)

__all__ = [
    "Question",
    "build_memories",
    "evaluate",
    "load_samples",
    "parse_evidence",
    "parse_session_date",
    "questions_of",
    "recall_at_k",
]


@dataclass
class Question:
    sample_id: str
    question: str
    category: int
    evidence: list[str]


@dataclass
class MethodStats:
    recalls: dict[int, dict[int, list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    latencies_ms: list[float] = field(default_factory=list)


def parse_session_date(text: str) -> datetime:
    """``"1:56 pm on 8 May, 2023"`` -> an aware datetime (UTC; LoCoMo gives no zone)."""
    return datetime.strptime(" ".join(text.split()), DATE_FORMAT).replace(tzinfo=UTC)


def load_samples(
    path: Path | str = DEFAULT_DATA, conversations: int | None = None
) -> list[dict[str, Any]]:
    """The samples of a LoCoMo JSON file (the first ``conversations`` of them when given)."""
    with open(path, encoding="utf-8") as fh:
        samples: list[dict[str, Any]] = json.load(fh)
    return samples[:conversations] if conversations else samples


def sessions_of(sample: Mapping[str, Any]) -> list[tuple[int, datetime, list[dict[str, Any]]]]:
    """(session number, session date, turns) of a sample, in session order."""
    conv = sample["conversation"]
    out = []
    for key, turns in conv.items():
        m = _SESSION.match(key)
        if m and isinstance(turns, list) and turns:
            out.append((int(m.group(1)), parse_session_date(conv[f"{key}_date_time"]), turns))
    return sorted(out, key=lambda s: s[0])


def turn_content(turn: Mapping[str, Any], *, captions: bool = True) -> str:
    """``"Speaker: text"``, plus ``[shares a photo of ...]`` for image turns."""
    text = f"{turn['speaker']}: {turn['text']}"
    caption = turn.get("blip_caption")
    if captions and caption:
        text += f" [shares {caption}]"
    return text


def build_memories(sample: Mapping[str, Any], *, captions: bool = True) -> list[dict[str, Any]]:
    """``add_batch`` items for every turn of a sample: one user (the sample id) per conversation."""
    user_id = str(sample["sample_id"])
    items = []
    for number, when, turns in sessions_of(sample):
        for turn in turns:
            items.append(
                {
                    "content": turn_content(turn, captions=captions),
                    "user_id": user_id,
                    "valid_from": when,
                    "metadata": {
                        "dia_id": turn["dia_id"],
                        "speaker": turn["speaker"],
                        "session": number,
                    },
                }
            )
    return items


def parse_evidence(raw: Iterable[str]) -> list[str]:
    """Normalise evidence ids (``"D8:6; D9:17"`` -> two ids, ``"D:11:26"`` -> ``"D11:26"``)."""
    out: list[str] = []
    for item in raw:
        for m in _DIA_ID.finditer(str(item)):
            dia = f"D{m.group(1)}:{m.group(2)}"
            if dia not in out:
                out.append(dia)
    return out


def questions_of(
    sample: Mapping[str, Any], categories: Iterable[int] = CATEGORIES
) -> list[Question]:
    """The questions of the given categories whose evidence names turns of the conversation."""
    known = {turn["dia_id"] for _n, _w, turns in sessions_of(sample) for turn in turns}
    wanted = set(categories)
    out = []
    for qa in sample.get("qa", []):
        if qa.get("category") not in wanted:
            continue
        evidence = [e for e in parse_evidence(qa.get("evidence") or []) if e in known]
        if evidence:
            out.append(
                Question(
                    str(sample["sample_id"]), str(qa["question"]), int(qa["category"]), evidence
                )
            )
    return out


def recall_at_k(retrieved: Sequence[str], evidence: Sequence[str], k: int) -> float:
    """Fraction of the evidence ids found among the first ``k`` retrieved ids."""
    if not evidence:
        raise ValueError("recall needs at least one evidence id")
    top = set(retrieved[:k])
    return sum(1 for e in set(evidence) if e in top) / len(set(evidence))


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class OkapiBM25:
    """Plain Okapi BM25 (k1=1.5, b=0.75) over lowercase words: the textbook keyword baseline."""

    def __init__(self, docs: Sequence[tuple[str, str]], k1: float = 1.5, b: float = 0.75) -> None:
        self.ids = [d for d, _ in docs]
        self.k1, self.b = k1, b
        self.postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self.lengths = []
        for i, (_d, text) in enumerate(docs):
            counts = Counter(t.lower() for t in _WORD.findall(text))
            self.lengths.append(sum(counts.values()))
            for term, tf in counts.items():
                self.postings[term].append((i, tf))
        self.avgdl = (sum(self.lengths) / len(self.lengths)) if self.lengths else 1.0
        n = len(docs)
        self.idf = {
            t: math.log((n - len(p) + 0.5) / (len(p) + 0.5) + 1.0) for t, p in self.postings.items()
        }

    def search(self, query: str, k: int) -> list[str]:
        scores: dict[int, float] = defaultdict(float)
        for term in {t.lower() for t in _WORD.findall(query)}:
            for i, tf in self.postings.get(term, ()):
                norm = 1 - self.b + self.b * self.lengths[i] / self.avgdl
                scores[i] += self.idf[term] * tf * (self.k1 + 1) / (tf + self.k1 * norm)
        best = sorted(scores.items(), key=lambda x: (-x[1], x[0]))[:k]
        return [self.ids[i] for i, _s in best]


SearchFn = Callable[[Question], list[str]]


def _memory_search(hm: HierarchicalMemory, mode: str, top_k: int) -> SearchFn:
    def run(q: Question) -> list[str]:
        results = hm.sync.search(q.question, q.sample_id, top_k=top_k, mode=mode)
        return [str(r.memory.metadata.get("dia_id")) for r in results]

    return run


def _bm25_search(samples: Sequence[Mapping[str, Any]], top_k: int, captions: bool) -> SearchFn:
    indexes = {
        str(s["sample_id"]): OkapiBM25(
            [(m["metadata"]["dia_id"], m["content"]) for m in build_memories(s, captions=captions)]
        )
        for s in samples
    }
    return lambda q: indexes[q.sample_id].search(q.question, top_k)


def _stage_latency(
    hm: HierarchicalMemory, questions: Sequence[Question]
) -> dict[str, dict[str, float]]:
    """Time each ranking stage of a hybrid search separately, on the memory's worker thread."""
    from headroom.memory.core import search_filter
    from headroom.memory.ports import VectorFilter
    from headroom.memory.ranking import fuse_rankings

    engine = hm._engine  # benchmark-only peek at the stages
    cfg = engine.config
    times: dict[str, list[float]] = defaultdict(list)

    def one(q: Question) -> None:
        f = search_filter(q.sample_id)
        t0 = time.perf_counter()
        text_hits = (
            engine.text_index.search(q.question, cfg.hybrid_candidates, f)
            if engine.text_index
            else []
        )
        t1 = time.perf_counter()
        allowed = engine.store.matching_pks(f)
        t2 = time.perf_counter()
        qvec = engine._embed([q.question])[0]
        t3 = time.perf_counter()
        vec_hits = (
            engine.vector_index.search(
                qvec, cfg.hybrid_candidates, VectorFilter(allowed_ids=allowed)
            )
            if engine.vector_index
            else []
        )
        t4 = time.perf_counter()
        fuse_rankings(
            text_hits,
            vec_hits,
            text_weight=cfg.hybrid_text_weight,
            vector_weight=cfg.hybrid_vector_weight,
            rrf_k=cfg.rrf_k,
        )
        t5 = time.perf_counter()
        for name, a, b in (
            ("fts5", t0, t1),
            ("filter_pks", t1, t2),
            ("embed_query", t2, t3),
            ("vector_search", t3, t4),
            ("fusion", t4, t5),
        ):
            times[name].append((b - a) * 1000)

    for q in questions:
        hm._call_sync(one, q)
    return {
        k: {"p50_ms": round(statistics.median(v), 3), "p95_ms": round(_percentile(v, 0.95), 3)}
        for k, v in times.items()
    }


def evaluate(
    samples: Sequence[Mapping[str, Any]],
    *,
    config: MemoryConfig | None = None,
    embedder: Embedder | None = None,
    methods: Sequence[str] = ("bm25", "fts5", "dense", "hybrid"),
    top_k: int = 10,
    ks: Sequence[int] = (5, 10),
    captions: bool = True,
    max_questions: int | None = None,
    stage_timing: bool = True,
    db: str | None = None,
) -> dict[str, Any]:
    """Index ``samples`` into a fresh memory, ask every category 1-4 question with every method.

    ``config`` defaults to ``MemoryConfig()`` (real local embedder) on a temporary database; the
    search cache is turned off so latencies are real. Returns a JSON-ready report.
    """
    questions = [q for s in samples for q in questions_of(s)][:max_questions]
    with tempfile.TemporaryDirectory(prefix="locomo-") as tmp:
        cfg = (config or MemoryConfig()).with_overrides(
            db_path=db or Path(tmp) / "locomo.db", cache_enabled=False
        )
        hm = HierarchicalMemory.create_sync(cfg, embedder=embedder)
        try:
            t0 = time.perf_counter()
            turns = 0
            for sample in samples:
                turns += len(hm.sync.add_batch(build_memories(sample, captions=captions)))
            index_s = time.perf_counter() - t0
            search_fns: dict[str, SearchFn] = {}
            for name in methods:
                if name == "bm25":
                    search_fns[name] = _bm25_search(samples, top_k, captions)
                else:
                    mode = {"fts5": "text", "dense": "semantic", "hybrid": "hybrid"}[name]
                    search_fns[name] = _memory_search(hm, mode, top_k)
            stats = {name: MethodStats() for name in methods}
            for q in questions:
                for name, fn in search_fns.items():
                    t = time.perf_counter()
                    got = fn(q)
                    stats[name].latencies_ms.append((time.perf_counter() - t) * 1000)
                    for k in ks:
                        stats[name].recalls[q.category][k].append(recall_at_k(got, q.evidence, k))
            stages = (
                _stage_latency(hm, questions[:200]) if stage_timing and "hybrid" in methods else {}
            )
            model = hm.sync.stats().get("embedder_model")
        finally:
            hm.sync.close()
    report: dict[str, Any] = {
        "dataset": {"conversations": len(samples), "turns": turns, "questions": len(questions),
                    "per_category": {CATEGORIES[c]: n for c, n in sorted(Counter(q.category for q in questions).items())}},
        "embedder_model": model,
        "index_seconds": round(index_s, 2),
        "top_k": top_k,
        "config": {k: getattr(cfg, k) for k in ("hybrid_text_weight", "hybrid_vector_weight", "hybrid_candidates", "rrf_k",
                                                "importance_weight", "recency_half_life_days")},
        "methods": {},
        "hybrid_stage_latency_ms": stages,
    }  # fmt: skip
    for name, st in stats.items():
        row: dict[str, Any] = {}
        for c in sorted(st.recalls):
            row[CATEGORIES[c]] = {
                f"R@{k}": round(statistics.fmean(st.recalls[c][k]), 4) for k in ks
            }
        row["overall"] = {
            f"R@{k}": round(statistics.fmean([r for c in st.recalls for r in st.recalls[c][k]]), 4)
            for k in ks
        }
        row["latency_ms"] = {
            "p50": round(statistics.median(st.latencies_ms), 2),
            "p95": round(_percentile(st.latencies_ms, 0.95), 2),
        }
        report["methods"][name] = row
    return report


def format_table(report: Mapping[str, Any]) -> str:
    cats = [*CATEGORIES.values(), "overall"]
    head = "| method | " + " | ".join(f"{c} R@5 / R@10" for c in cats) + " | p50 ms | p95 ms |"
    lines = [head, "|" + "---|" * (len(cats) + 3)]
    for name, row in report["methods"].items():
        cells = [f"{row[c]['R@5']:.3f} / {row[c]['R@10']:.3f}" if c in row else "-" for c in cats]
        lines.append(
            f"| {name} | "
            + " | ".join(cells)
            + f" | {row['latency_ms']['p50']} | {row['latency_ms']['p95']} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--conversations", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="1 conversation, first 100 questions")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--no-captions", action="store_true", help="leave image captions out of the content"
    )
    parser.add_argument(
        "--db", help="an empty PostgreSQL database URL (default: a temp SQLite file)"
    )
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"dataset not found: {args.data}", file=sys.stderr)
        return 2
    samples = load_samples(
        args.data, 1 if args.quick and not args.conversations else args.conversations
    )
    report = evaluate(
        samples,
        captions=not args.no_captions,
        max_questions=100 if args.quick else None,
        db=args.db,
    )
    report["split"] = args.data.name
    print(
        f"{report['dataset']}  index {report['index_seconds']} s  model {report['embedder_model']}"
    )
    print(format_table(report))
    print("hybrid stage latency (ms):", json.dumps(report["hybrid_stage_latency_ms"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
