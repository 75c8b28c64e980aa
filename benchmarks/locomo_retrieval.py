"""LoCoMo retrieval evaluation: recall@k of the evidence turns, default search vs baselines.

Stores every dialogue turn of the LoCoMo dev split as a memory through the public API (one user
per conversation, the session date as ``valid_from``, ``dia_id`` and speaker in metadata, the
previous turn as ``context=`` and the speaker as entity ref: see :func:`build_memories`), asks
every question of categories 1-4 through ``HierarchicalMemory.search`` (user_id only, top_k=10,
the call injection uses) and reports recall@5 / recall@10 of the evidence turns per category and
overall, plus query latency p50/p95. Methods, all on the same data in the same process:

* ``hybrid`` - the default search (``mode="hybrid"``, default ``MemoryConfig``);
* ``fts5`` - SQLite FTS5 bm25 alone (``mode="text"``: Porter stemming, same indexed text);
* ``bm25`` - plain Okapi BM25 over the turn text (k1=1.5, b=0.75, lowercase words, no stemming),
  computed in this script, as the textbook keyword baseline;
* ``dense`` - cosine similarity alone (``mode="semantic"``);
* every entry of ``ABLATIONS`` - one change at a time (storage without context or entity refs,
  each ranking setting), including the search as it was before contextual indexing and query
  analysis; its latency is compared with the default's, interleaved question by question;
* leave-one-conversation-out over ``LOO_GRID``: the grid point best on 4 conversations is
  reported on the 5th, for each of the 5.

``--embed-cache DIR`` keeps turn/question vectors on disk between runs (keyed by embedder class,
model and text), so with it the latencies exclude the query embedding. The data is CC BY-NC and
stays in ``../shared/data``; it is read in place, never copied.

    python benchmarks/locomo_retrieval.py [--embedder onnx|local] [--embed-cache DIR]
        [--context previous|neighbours|none] [--no-ablations] [--no-loo] [--quick] [--out PATH]
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
DEFAULT_DATA = next(
    (p / "shared" / "data" / "locomo" / "locomo-dev.json" for p in (ROOT.parent, ROOT.parent.parent)
     if (p / "shared" / "data" / "locomo" / "locomo-dev.json").exists()),
    ROOT.parent / "shared" / "data" / "locomo" / "locomo-dev.json",
)  # fmt: skip
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


CONTEXTS = ("none", "previous", "neighbours")


def build_memories(
    sample: Mapping[str, Any],
    *,
    captions: bool = True,
    context: str = "previous",
    entities: bool = True,
) -> list[dict[str, Any]]:
    """``add_batch`` items for every turn of a sample: one user (the sample id) per conversation.

    The way the README recommends storing a conversation: ``context`` (indexed, never shown) is
    the previous turn of the same session (``"previous"``), both neighbours (``"neighbours"``, only
    possible when a whole session is stored at once) or nothing (``"none"``); with ``entities``
    the speaker is the turn's entity ref, so questions naming them find their turns.
    """
    if context not in CONTEXTS:
        raise ValueError(f"context must be one of {CONTEXTS}")
    user_id = str(sample["sample_id"])
    items = []
    for number, when, turns in sessions_of(sample):
        texts = [turn_content(turn, captions=captions) for turn in turns]
        for i, turn in enumerate(turns):
            item: dict[str, Any] = {
                "content": texts[i],
                "user_id": user_id,
                "valid_from": when,
                "metadata": {
                    "dia_id": turn["dia_id"],
                    "speaker": turn["speaker"],
                    "session": number,
                },
            }
            around = []
            if context != "none" and i > 0:
                around.append(texts[i - 1])
            if context == "neighbours" and i + 1 < len(texts):
                around.append(texts[i + 1])
            if around:
                item["context"] = "\n".join(around)
            if entities:
                item["entity_refs"] = [str(turn["speaker"])]
            items.append(item)
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


class CachedEmbedder:
    """Wraps an embedder with an on-disk cache keyed by model and text (benchmark runs only).

    Ablation runs re-embed the same 2,760 turns and 760 questions; caching them under ``/tmp``
    makes every run after the first cost only the search itself. Vectors are those of the
    wrapped embedder, bit for bit.
    """

    def __init__(self, inner: Embedder, cache_dir: Path | str, backend: str = "") -> None:
        import hashlib

        self.inner = inner
        self.backend = backend
        # the backend too: the factory may hand every backend out behind one wrapper class
        key = f"{backend}:{type(inner).__module__}.{type(inner).__qualname__}:{inner.model_name}"
        tag = hashlib.sha1(key.encode()).hexdigest()[:12]
        self.path = Path(cache_dir) / f"emb-{tag}.pkl"
        self.cache: dict[str, Any] = {}
        self.dirty = False
        if self.path.exists():
            import pickle

            with open(self.path, "rb") as fh:
                self.cache = pickle.load(fh)

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    def embed(self, texts: Sequence[str]) -> Any:
        import numpy as np

        todo = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if todo:
            for text, vec in zip(todo, self.inner.embed(todo), strict=True):
                self.cache[text] = np.asarray(vec, dtype=np.float32)
            self.dirty = True
        return np.stack([self.cache[t] for t in texts]).astype(np.float32)

    def save(self) -> None:
        if self.dirty:
            import pickle

            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "wb") as fh:
                pickle.dump(self.cache, fh)
            tmp.replace(self.path)
            self.dirty = False

    def close(self) -> None:
        self.save()
        self.inner.close()


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
    from headroom.memory.models import SearchResult
    from headroom.memory.ports import VectorFilter
    from headroom.memory.query_analysis import boost_named_entities
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
        fused = fuse_rankings(
            text_hits,
            vec_hits,
            text_weight=cfg.hybrid_text_weight,
            vector_weight=cfg.hybrid_vector_weight,
            rrf_k=cfg.rrf_k,
        )
        t5 = time.perf_counter()
        top = fused[:30]
        memories = engine.store.get_by_pks([c.pk for c in top])
        results = [SearchResult(memories[c.pk], 0.0, c.score) for c in top if c.pk in memories]
        t6 = time.perf_counter()
        boost_named_entities(
            q.question, results, entity_boost=cfg.entity_boost, date_boost=cfg.date_boost
        )
        t7 = time.perf_counter()
        for name, a, b in (
            ("fts5", t0, t1),
            ("filter_pks", t1, t2),
            ("embed_query", t2, t3),
            ("vector_search", t3, t4),
            ("fusion", t4, t5),
            ("fetch_rows", t5, t6),
            ("query_analysis", t6, t7),
        ):
            times[name].append((b - a) * 1000)

    for q in questions:
        hm._call_sync(one, q)
    return {
        k: {"p50_ms": round(statistics.median(v), 3), "p95_ms": round(_percentile(v, 0.95), 3)}
        for k, v in times.items()
    }


@dataclass
class Ablation:
    """A hybrid-search variant: how turns are stored and which ranking settings differ."""

    context: str = "previous"
    entities: bool = True
    overrides: dict[str, Any] = field(default_factory=dict)


# Every idea measured, one change at a time against the shipped default ("hybrid").
BEFORE = "hybrid, as before (no context, no entity refs, no boosts, k=10)"
ABLATIONS: dict[str, Ablation] = {
    BEFORE: Ablation("none", False, {"entity_boost": 0.0, "date_boost": 0.0, "rrf_k": 10}),
    "+ speaker entity refs + boosts (no context)": Ablation("none", True),
    "+ previous-turn context only (no boosts)": Ablation("previous", True, {"entity_boost": 0.0, "date_boost": 0.0}),
    "no entity boost": Ablation(overrides={"entity_boost": 0.0}),
    "no date boost": Ablation(overrides={"date_boost": 0.0}),
    "neighbours as context (previous and next turn)": Ablation("neighbours", True),
    "entity boost 0.5": Ablation(overrides={"entity_boost": 0.5}),
    "entity boost 2.0": Ablation(overrides={"entity_boost": 2.0}),
    "date boost 1.0": Ablation(overrides={"date_boost": 1.0}),
    "vector weight 0.3": Ablation(overrides={"hybrid_vector_weight": 0.3}),
    "vector weight 0.7": Ablation(overrides={"hybrid_vector_weight": 0.7}),
    "RRF k=10": Ablation(overrides={"rrf_k": 10}),
    "RRF k=20": Ablation(overrides={"rrf_k": 20}),
}  # fmt: skip

# Leave-one-conversation-out grid (the fusion constant and the two query-analysis boosts).
LOO_GRID: dict[str, Sequence[Any]] = {
    "entity_boost": (0.0, 0.5, 1.0, 2.0),
    "date_boost": (0.0, 0.5, 1.0),
    "rrf_k": (5, 10, 20),
}


def _summary(st: MethodStats, ks: Sequence[int]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for c in sorted(st.recalls):
        row[CATEGORIES[c]] = {f"R@{k}": round(statistics.fmean(st.recalls[c][k]), 4) for k in ks}
    row["overall"] = {
        f"R@{k}": round(statistics.fmean([r for c in st.recalls for r in st.recalls[c][k]]), 4)
        for k in ks
    }
    row["latency_ms"] = {
        "p50": round(statistics.median(st.latencies_ms), 2),
        "p95": round(_percentile(st.latencies_ms, 0.95), 2),
    }
    return row


def _run(
    fn: SearchFn, questions: Sequence[Question], ks: Sequence[int]
) -> tuple[MethodStats, list[list[str]]]:
    st = MethodStats()
    got_all = []
    for q in questions:
        t = time.perf_counter()
        got = fn(q)
        st.latencies_ms.append((time.perf_counter() - t) * 1000)
        got_all.append(got)
        for k in ks:
            st.recalls[q.category][k].append(recall_at_k(got, q.evidence, k))
    return st, got_all


def leave_one_out(
    hm: HierarchicalMemory,
    questions: Sequence[Question],
    grid: Mapping[str, Sequence[Any]],
    top_k: int,
) -> dict[str, Any]:
    """Pick the grid point best on 4 conversations (mean R@10), report it on the 5th; repeat."""
    import itertools

    engine = hm._engine  # benchmark-only: swap ranking settings on one index
    base = engine.config
    keys = list(grid)
    points = [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*grid.values())]
    per_point: list[dict[str, list[float]]] = []
    try:
        for point in points:
            engine.config = base.with_overrides(**point)
            _st, got = _run(_memory_search(hm, "hybrid", top_k), questions, (10,))
            per_point.append(
                {
                    f"R@{k}": [
                        recall_at_k(g, q.evidence, k) for g, q in zip(got, questions, strict=True)
                    ]
                    for k in (5, 10)
                }
            )
    finally:
        engine.config = base
    convs = sorted({q.sample_id for q in questions})
    held: dict[int, list[float]] = {5: [], 10: []}
    folds = []
    for conv in convs:
        train = [i for i, q in enumerate(questions) if q.sample_id != conv]
        test = [i for i, q in enumerate(questions) if q.sample_id == conv]
        best = max(
            range(len(points)),
            key=lambda p: (statistics.fmean(per_point[p]["R@10"][i] for i in train), -p),
        )
        for k in (5, 10):
            held[k].extend(per_point[best][f"R@{k}"][i] for i in test)
        folds.append(
            {
                "held_out": conv,
                "chosen": points[best],
                "held_out_R@10": round(
                    statistics.fmean(per_point[best]["R@10"][i] for i in test), 4
                ),
            }
        )
    all_idx = range(len(questions))
    best_all = max(
        range(len(points)),
        key=lambda p: (statistics.fmean(per_point[p]["R@10"][i] for i in all_idx), -p),
    )
    return {
        "grid": {k: list(v) for k, v in grid.items()},
        "folds": folds,
        "overall": {f"R@{k}": round(statistics.fmean(held[k]), 4) for k in (5, 10)},
        "best_on_all_dev": {"point": points[best_all], "R@10": round(statistics.fmean(per_point[best_all]["R@10"]), 4)},
    }  # fmt: skip


def evaluate(
    samples: Sequence[Mapping[str, Any]],
    *,
    config: MemoryConfig | None = None,
    embedder: Embedder | None = None,
    methods: Sequence[str] = ("bm25", "fts5", "dense", "hybrid"),
    ablations: Mapping[str, Ablation] | None = None,
    loo_grid: Mapping[str, Sequence[Any]] | None = None,
    top_k: int = 10,
    ks: Sequence[int] = (5, 10),
    captions: bool = True,
    max_questions: int | None = None,
    stage_timing: bool = True,
    storage: tuple[str, bool] = ("previous", True),
    db: str | None = None,
) -> dict[str, Any]:
    """Index ``samples`` into a fresh memory, ask every category 1-4 question with every method.

    Turns are stored as :func:`build_memories` does by default (previous turn as ``context``,
    speaker as entity ref); each ablation with a different storage gets its own index.
    ``config`` defaults to ``MemoryConfig()`` (real local embedder) on a temporary database; the
    search cache is turned off so latencies are real. Returns a JSON-ready report.
    """
    questions = [q for s in samples for q in questions_of(s)][:max_questions]
    ablations = dict(ablations or {})
    storages = {storage} | {(a.context, a.entities) for a in ablations.values()}
    stats: dict[str, MethodStats] = {}
    stages: dict[str, Any] = {}
    loo: dict[str, Any] | None = None
    model = None
    index_s = 0.0
    turns = 0
    compare: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="locomo-") as tmp:
        base_cfg = (config or MemoryConfig()).with_overrides(cache_enabled=False)
        if embedder is None:
            from headroom.memory.factory import create_embedder

            embedder = create_embedder(base_cfg)
        default = storage
        if db:  # one database: only the ablations stored like the default run there
            ablations = {n: a for n, a in ablations.items() if (a.context, a.entities) == default}
            storages = {default}
        memories: dict[tuple[str, bool], HierarchicalMemory] = {}
        try:
            for n, storage in enumerate(sorted(storages, key=lambda s: s != default)):
                cfg = base_cfg.with_overrides(db_path=db or Path(tmp) / f"locomo-{n}.db")
                hm = memories[storage] = HierarchicalMemory.create_sync(
                    cfg, embedder=_Unclosed(embedder)
                )
                t0 = time.perf_counter()
                count = 0
                for sample in samples:
                    items = build_memories(
                        sample, captions=captions, context=storage[0], entities=storage[1]
                    )
                    count += len(hm.sync.add_batch(items))
                if storage == default:
                    index_s, turns = time.perf_counter() - t0, count
                    model = hm.sync.stats().get("embedder_model")
            hm = memories[default]
            for name in methods:
                if name == "bm25":
                    fn = _bm25_search(samples, top_k, captions)
                else:
                    mode = {"fts5": "text", "dense": "semantic", "hybrid": "hybrid"}[name]
                    fn = _memory_search(hm, mode, top_k)
                stats[name] = _run(fn, questions, ks)[0]
            if stage_timing and "hybrid" in methods:
                stages = _stage_latency(hm, questions[:200])
            for name, ab in ablations.items():
                stats[name] = _with_config(
                    memories[(ab.context, ab.entities)],
                    ab.overrides,
                    lambda m: _run(_memory_search(m, "hybrid", top_k), questions, ks)[0],
                )
            if BEFORE in ablations and "hybrid" in methods:
                compare = _compare_latency(
                    hm,
                    memories[(ablations[BEFORE].context, ablations[BEFORE].entities)],
                    ablations[BEFORE].overrides,
                    questions[:300],
                    top_k,
                )
            if loo_grid:
                loo = leave_one_out(hm, questions, loo_grid, top_k)
        finally:
            for m in memories.values():
                m.sync.close()
            embedder.close()
    report: dict[str, Any] = {
        "dataset": {"conversations": len(samples), "turns": turns, "questions": len(questions),
                    "per_category": {CATEGORIES[c]: n for c, n in sorted(Counter(q.category for q in questions).items())}},
        "embedder_model": model,
        "embedder": getattr(embedder, "backend", "") or type(embedder).__name__,
        "index_seconds": round(index_s, 2),
        "top_k": top_k,
        "config": {k: getattr(base_cfg, k) for k in ("hybrid_text_weight", "hybrid_vector_weight", "hybrid_candidates",
                                                     "rrf_k", "entity_boost", "date_boost", "importance_weight", "recency_half_life_days")},
        "methods": {name: _summary(st, ks) for name, st in stats.items()},
        "hybrid_stage_latency_ms": stages,
        "latency_vs_before_ms": compare,
    }  # fmt: skip
    if loo is not None:
        report["leave_one_out"] = loo
    return report


def _with_config(
    hm: HierarchicalMemory, overrides: Mapping[str, Any], fn: Callable[[HierarchicalMemory], Any]
) -> Any:
    engine = hm._engine  # benchmark-only: swap ranking settings on one index
    base = engine.config
    engine.config = base.with_overrides(**overrides)
    try:
        return fn(hm)
    finally:
        engine.config = base


def _compare_latency(
    hm: HierarchicalMemory,
    before: HierarchicalMemory,
    overrides: Mapping[str, Any],
    questions: Sequence[Question],
    top_k: int,
) -> dict[str, Any]:
    """Default search vs the search as before, interleaved question by question (same load)."""
    now_ms: list[float] = []
    before_ms: list[float] = []
    engine = before._engine
    base = engine.config
    engine.config = base.with_overrides(**overrides)
    try:
        for q in questions:
            for memory, out in ((hm, now_ms), (before, before_ms)):
                t = time.perf_counter()
                memory.sync.search(q.question, q.sample_id, top_k=top_k, mode="hybrid")
                out.append((time.perf_counter() - t) * 1000)
    finally:
        engine.config = base
    row = lambda v: {"p50": round(statistics.median(v), 2), "p95": round(_percentile(v, 0.95), 2)}  # noqa: E731
    deltas = [a - b for a, b in zip(now_ms, before_ms, strict=True)]
    return {
        "now": row(now_ms),
        "before": row(before_ms),
        "delta_p50": round(statistics.median(deltas), 2),
    }


class _Unclosed:
    """Shares one embedder between several memories: their close() leaves it open."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    def embed(self, texts: Sequence[str]) -> Any:
        return self.inner.embed(texts)

    def close(self) -> None:
        pass


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


def query_embedding_latency(
    embedder: Embedder, texts: Sequence[str], n: int = 100
) -> dict[str, Any]:
    """p50/p95 ms of embedding one question per call (the search path), after one warm-up call."""
    sample = list(texts)[:n]
    embedder.embed(sample[:1])
    times = []
    for text in sample:
        start = time.perf_counter()
        embedder.embed([text])
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {
        "n": len(times),
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
    }


def model_size_bytes(model: str, backend: str = "") -> int | None:
    """Bytes on disk of the model: the int8 .onnx file for ONNX MiniLM, else the local folder."""
    from headroom.memory.adapters.embedders import model_files

    if backend == "onnx" and model_files.is_minilm(model):
        onnx = model_files.find_minilm_int8_onnx()
        return Path(onnx).stat().st_size if onnx is not None else None
    path = Path(model_files.resolve_local_model(model))
    if not path.exists():
        return None
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


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
        "--embedder",
        choices=("default", "onnx", "local"),
        default="default",
        help="embedder backend (default: MemoryConfig's)",
    )
    parser.add_argument(
        "--embed-cache",
        type=Path,
        default=None,
        metavar="DIR",
        help="cache turn/question vectors on disk (model+text keyed) between runs",
    )
    parser.add_argument(
        "--embedder-model",
        default=None,
        metavar="NAME_OR_DIR",
        help="embedder_model override, e.g. a local sentence-transformers folder (--embedder local)",
    )
    parser.add_argument("--no-ablations", action="store_true")
    parser.add_argument(
        "--context",
        choices=CONTEXTS,
        default="previous",
        help="context stored with each turn for the main methods and leave-one-out",
    )
    parser.add_argument("--no-loo", action="store_true", help="skip leave-one-conversation-out")
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
    config = MemoryConfig()
    if args.embedder != "default":
        config = config.with_overrides(embedder_backend=args.embedder)
    if args.embedder_model:
        config = config.with_overrides(embedder_model=args.embedder_model)
    embedder: Embedder | None = None
    query_embed: dict[str, Any] = {}
    if args.embed_cache:
        from headroom.memory.factory import create_embedder

        backend = str(getattr(config.embedder_backend, "value", config.embedder_backend))
        inner = create_embedder(config)
        config = config.with_overrides(vector_dimension=inner.dimension)
        query_embed = query_embedding_latency(
            inner, [q.question for s in samples for q in questions_of(s)]
        )
        query_embed["model_bytes"] = model_size_bytes(config.embedder_model, backend)
        embedder = CachedEmbedder(inner, args.embed_cache, backend)
    report = evaluate(
        samples,
        config=config,
        embedder=embedder,
        ablations=None if args.no_ablations else ABLATIONS,
        loo_grid=None if args.no_loo or len(samples) < 2 else LOO_GRID,
        captions=not args.no_captions,
        max_questions=100 if args.quick else None,
        storage=(args.context, True),
        db=args.db,
    )
    if isinstance(embedder, CachedEmbedder):
        embedder.save()
    report["split"] = args.data.name
    if query_embed:
        report["query_embedding"] = query_embed
        print("query embedding (1 question per call, uncached):", json.dumps(query_embed))
    report["context"] = args.context
    print(
        f"{report['dataset']}  index {report['index_seconds']} s  "
        f"model {report['embedder_model']} ({report['embedder']})"
    )
    print(format_table(report))
    print("hybrid stage latency (ms):", json.dumps(report["hybrid_stage_latency_ms"]))
    if report.get("latency_vs_before_ms"):
        print("hybrid now vs as before (ms):", json.dumps(report["latency_vs_before_ms"]))
    if "leave_one_out" in report:
        loo = report["leave_one_out"]
        print("leave-one-conversation-out:", json.dumps(loo["overall"]))
        for fold in loo["folds"]:
            print("  ", json.dumps(fold))
        print("  best on all dev:", json.dumps(loo["best_on_all_dev"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
