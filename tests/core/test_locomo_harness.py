"""The LoCoMo retrieval harness (benchmarks/locomo_retrieval.py) on a small synthetic conversation."""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from headroom.memory import HierarchicalMemory, MemoryConfig
from headroom.testing import HashEmbedder

HARNESS = Path(__file__).resolve().parents[2] / "benchmarks" / "locomo_retrieval.py"


@pytest.fixture(scope="module")
def lr() -> ModuleType:
    spec = importlib.util.spec_from_file_location("locomo_retrieval", HARNESS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["locomo_retrieval"] = module
    spec.loader.exec_module(module)
    return module


def synthetic_sample() -> dict[str, Any]:
    """Two sessions in the LoCoMo schema (written here; not the real data)."""
    return {
        "sample_id": "conv-x",
        "conversation": {
            "speaker_a": "Ana",
            "speaker_b": "Ben",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [
                {
                    "speaker": "Ana",
                    "dia_id": "D1:1",
                    "text": "I adopted a grey kitten called Pixel.",
                },
                {
                    "speaker": "Ben",
                    "dia_id": "D1:2",
                    "text": "Lovely! I started learning the violin.",
                },
                {
                    "speaker": "Ana",
                    "dia_id": "D1:3",
                    "text": "Look at this.",
                    "blip_caption": "a photo of a lighthouse at sunset",
                },
            ],
            "session_2_date_time": "10:04 am on 21 June, 2023",
            "session_2": [
                {
                    "speaker": "Ben",
                    "dia_id": "D2:1",
                    "text": "My violin recital went great in Lisbon.",
                },
                {
                    "speaker": "Ana",
                    "dia_id": "D2:2",
                    "text": "Pixel the kitten now climbs the curtains.",
                },
            ],
        },
        "qa": [
            {
                "question": "What is the name of Ana's kitten?",
                "answer": "Pixel",
                "evidence": ["D1:1"],
                "category": 4,
            },
            {
                "question": "Where was Ben's violin recital?",
                "answer": "Lisbon",
                "evidence": ["D2:1"],
                "category": 1,
            },
            {
                "question": "What does the kitten Pixel do, and what instrument does Ben learn?",
                "answer": "climbs; violin",
                "evidence": ["D2:2; D1:2"],
                "category": 1,
            },
            {
                "question": "When did Ben start the violin?",
                "answer": "May 2023",
                "evidence": ["D:1:2"],
                "category": 2,
            },
            {"question": "Unanswerable?", "answer": "", "evidence": ["D1:1"], "category": 5},
            {"question": "No evidence here", "answer": "x", "evidence": [], "category": 3},
            {"question": "Unknown turn", "answer": "x", "evidence": ["D9:9"], "category": 3},
        ],
    }


def test_parse_session_date(lr: ModuleType) -> None:
    assert lr.parse_session_date("1:56 pm on 8 May, 2023") == datetime(
        2023, 5, 8, 13, 56, tzinfo=UTC
    )
    assert lr.parse_session_date("12:09 am on 13 September,  2023") == datetime(
        2023, 9, 13, 0, 9, tzinfo=UTC
    )
    with pytest.raises(ValueError):
        lr.parse_session_date("8 May 2023")


def test_load_samples_reads_and_limits(lr: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "mini.json"
    second = synthetic_sample() | {"sample_id": "conv-y"}
    path.write_text(json.dumps([synthetic_sample(), second]), encoding="utf-8")
    assert [s["sample_id"] for s in lr.load_samples(path)] == ["conv-x", "conv-y"]
    assert [s["sample_id"] for s in lr.load_samples(path, 1)] == ["conv-x"]


def test_build_memories(lr: ModuleType) -> None:
    items = lr.build_memories(synthetic_sample())
    assert [i["metadata"]["dia_id"] for i in items] == ["D1:1", "D1:2", "D1:3", "D2:1", "D2:2"]
    assert {i["user_id"] for i in items} == {"conv-x"}
    assert items[0]["content"] == "Ana: I adopted a grey kitten called Pixel."
    assert items[0]["metadata"]["speaker"] == "Ana"
    assert items[2]["content"] == "Ana: Look at this. [shares a photo of a lighthouse at sunset]"
    assert "lighthouse" not in lr.build_memories(synthetic_sample(), captions=False)[2]["content"]
    assert items[0]["valid_from"] == datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    assert items[3]["valid_from"] == datetime(2023, 6, 21, 10, 4, tzinfo=UTC)


def test_questions_normalise_evidence_and_skip_the_rest(lr: ModuleType) -> None:
    qs = lr.questions_of(synthetic_sample())
    assert [(q.category, q.evidence) for q in qs] == [
        (4, ["D1:1"]),
        (1, ["D2:1"]),
        (1, ["D2:2", "D1:2"]),
        (2, ["D1:2"]),
    ]
    assert lr.parse_evidence(["D8:6; D9:17", "D:11:26", "D"]) == ["D8:6", "D9:17", "D11:26"]


def test_recall_at_k_hand_checked(lr: ModuleType) -> None:
    retrieved = ["D1:1", "D2:1", "D1:3", "D2:2", "D1:2", "D3:1"]
    assert lr.recall_at_k(retrieved, ["D2:1"], 5) == 1.0
    assert lr.recall_at_k(retrieved, ["D3:1"], 5) == 0.0
    assert lr.recall_at_k(retrieved, ["D3:1"], 10) == 1.0
    assert lr.recall_at_k(retrieved, ["D2:2", "D3:1"], 5) == 0.5
    assert lr.recall_at_k(retrieved, ["D2:2", "D2:2", "D9:9"], 10) == 0.5
    assert lr.recall_at_k([], ["D1:1"], 10) == 0.0
    with pytest.raises(ValueError):
        lr.recall_at_k(retrieved, [], 5)


def test_okapi_bm25_ranks_the_matching_turn_first(lr: ModuleType) -> None:
    index = lr.OkapiBM25(
        [("a", "grey kitten Pixel"), ("b", "violin recital Lisbon"), ("c", "the the the")]
    )
    assert index.search("Where was the violin recital?", 2)[0] == "b"
    assert index.search("nothing matches", 3) == []


def test_memories_round_trip_through_the_public_api(lr: ModuleType, tmp_path: Path) -> None:
    hm = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=tmp_path / "m.db", vector_dimension=64), embedder=HashEmbedder(64)
    )
    try:
        hm.sync.add_batch(lr.build_memories(synthetic_sample()))
        results = hm.sync.search("Where was Ben's violin recital in Lisbon?", "conv-x", top_k=10)
        assert results[0].memory.metadata["dia_id"] == "D2:1"
        assert results[0].memory.valid_from == datetime(2023, 6, 21, 10, 4, tzinfo=UTC)
    finally:
        hm.sync.close()


def test_evaluate_reports_every_method(lr: ModuleType, tmp_path: Path) -> None:
    report = lr.evaluate(
        [synthetic_sample()],
        config=MemoryConfig(db_path=tmp_path / "unused.db", vector_dimension=64),
        embedder=HashEmbedder(64),
    )
    assert report["dataset"]["turns"] == 5
    assert report["dataset"]["questions"] == 4
    assert set(report["methods"]) == {"bm25", "fts5", "dense", "hybrid"}
    for row in report["methods"].values():
        assert 0.0 <= row["overall"]["R@5"] <= row["overall"]["R@10"] <= 1.0
        assert row["latency_ms"]["p50"] <= row["latency_ms"]["p95"]
    # Five turns and top_k=10: every method that ranks every turn has recall@10 of 1. FTS5 ranks
    # only rows matching a query term, and drops terms found in half the rows or more (here the
    # speakers' names, which the context and entity refs repeat), so it may miss one.
    assert all(report["methods"][m]["overall"]["R@10"] == 1.0 for m in ("bm25", "dense", "hybrid"))
    assert report["methods"]["fts5"]["overall"]["R@10"] >= 0.75
    assert report["methods"]["fts5"]["single-hop"]["R@5"] == 1.0
    assert set(report["hybrid_stage_latency_ms"]) >= {
        "fts5",
        "embed_query",
        "vector_search",
        "fusion",
    }
    assert "Retrieval" not in lr.format_table(report) and "| hybrid |" in lr.format_table(report)
    assert not (tmp_path / "unused.db").exists()  # each run uses its own temporary database


def test_build_memories_context_and_entities(lr: ModuleType) -> None:
    items = lr.build_memories(synthetic_sample())
    assert "context" not in items[0] and "context" not in items[3]  # first turn of each session
    assert items[1]["context"] == "Ana: I adopted a grey kitten called Pixel."
    assert items[1]["entity_refs"] == ["Ben"]
    both = lr.build_memories(synthetic_sample(), context="neighbours")
    assert both[1]["context"].splitlines() == [items[0]["content"], items[2]["content"]]
    assert both[2]["context"] == items[1]["content"]  # last turn: previous only
    plain = lr.build_memories(synthetic_sample(), context="none", entities=False)
    assert all("context" not in i and "entity_refs" not in i for i in plain)
    with pytest.raises(ValueError):
        lr.build_memories(synthetic_sample(), context="sideways")


def test_evaluate_runs_ablations_and_leave_one_out(lr: ModuleType, tmp_path: Path) -> None:
    second = json.loads(json.dumps(synthetic_sample())) | {"sample_id": "conv-y"}
    report = lr.evaluate(
        [synthetic_sample(), second],
        config=MemoryConfig(db_path=tmp_path / "unused.db", vector_dimension=64),
        embedder=HashEmbedder(64),
        methods=("hybrid",),
        ablations={lr.BEFORE: lr.Ablation("none", False, {"entity_boost": 0.0})},
        loo_grid={"entity_boost": (0.0, 1.0), "rrf_k": (10,)},
        top_k=2,
        stage_timing=False,
    )
    assert set(report["methods"]) == {"hybrid", lr.BEFORE}
    assert set(report["latency_vs_before_ms"]) == {"now", "before", "delta_p50"}
    loo = report["leave_one_out"]
    assert [f["held_out"] for f in loo["folds"]] == ["conv-x", "conv-y"]
    assert all(f["chosen"]["entity_boost"] in (0.0, 1.0) for f in loo["folds"])
    assert 0.0 <= loo["overall"]["R@5"] <= 1.0 and 0.0 <= loo["overall"]["R@10"] <= 1.0
    assert report["dataset"]["questions"] == 8


def test_cached_embedder_returns_the_inner_vectors(lr: ModuleType, tmp_path: Path) -> None:
    inner = HashEmbedder(64)
    cached = lr.CachedEmbedder(inner, tmp_path)
    first = cached.embed(["a kitten", "a violin", "a kitten"])
    assert (first == inner.embed(["a kitten", "a violin", "a kitten"])).all()
    cached.save()
    again = lr.CachedEmbedder(HashEmbedder(64), tmp_path)
    assert set(again.cache) == {"a kitten", "a violin"}
    assert (again.embed(["a violin"]) == first[1:2]).all()


def test_query_embedding_latency_times_one_question_per_call(lr: ModuleType) -> None:
    calls: list[int] = []

    class Counting(HashEmbedder):
        def embed(self, texts: Any) -> Any:
            calls.append(len(texts))
            return super().embed(texts)

    out = lr.query_embedding_latency(Counting(), [f"question {i}" for i in range(7)], n=5)
    assert out["n"] == 5 and 0 <= out["p50_ms"] <= out["p95_ms"]
    assert calls == [1] * 6  # one warm-up, then one text per call


def test_model_size_bytes_of_a_local_folder(lr: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "m" / "sub").mkdir(parents=True)
    (tmp_path / "m" / "a.bin").write_bytes(b"x" * 10)
    (tmp_path / "m" / "sub" / "b.json").write_bytes(b"y" * 5)
    assert lr.model_size_bytes(str(tmp_path / "m"), "local") == 15
    assert lr.model_size_bytes(str(tmp_path / "missing"), "local") is None
