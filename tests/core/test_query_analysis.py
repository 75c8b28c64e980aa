"""Query analysis (entity boost) and contextual indexing (``context=``), on synthetic data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from headroom.memory import HierarchicalMemory, MemoryConfig
from headroom.memory.adapters.sqlite.store import context_of_search_text
from headroom.memory.errors import ConfigurationError, ValidationError
from headroom.memory.models import Memory, SearchResult
from headroom.memory.query_analysis import (
    MAX_CONTEXT_CHARS,
    analyse_query,
    boost_named_entities,
    check_context,
    entity_matches,
)
from headroom.testing import HashEmbedder


def result(content: str, score: float, refs: list[str] | None = None) -> SearchResult:
    memory = Memory(id=content, content=content, user_id="u", entity_refs=refs or [])
    return SearchResult(memory, 0.0, score)


def test_query_names_entities_word_for_word_case_insensitive() -> None:
    analysis = analyse_query("What did Caroline's sister do in New York?")
    assert analysis.names("caroline")
    assert analysis.names("New York")
    assert not analysis.names("York City")  # every word of the ref must be in the query
    assert not analysis.names("Carol")  # whole words only
    assert not analysis.names("")  # an empty ref names nothing
    assert entity_matches(analysis, ["Bob", "Caroline"])
    assert not entity_matches(analysis, ["Bob"])
    assert not entity_matches(analysis, [])


def test_boost_reorders_only_memories_the_query_names() -> None:
    results = [result("a", 0.10, ["Bob"]), result("b", 0.08, ["Ana"]), result("c", 0.07)]
    out = boost_named_entities("What did Ana adopt?", results, entity_boost=0.5)
    assert [r.id for r in out] == ["b", "a", "c"]
    assert out[0].score == pytest.approx(0.12)
    assert out[1].score == pytest.approx(0.10) and out[2].score == pytest.approx(0.07)


def test_zero_boost_or_no_names_keeps_order_and_scores() -> None:
    results = [result("a", 0.3, ["Bob"]), result("b", 0.2, ["Ana"]), result("c", 0.1)]
    assert [r.id for r in boost_named_entities("Ana?", results, entity_boost=0.0)] == list("abc")
    out = boost_named_entities("what about the kitten", results, entity_boost=2.0)
    assert [(r.id, r.score) for r in out] == [("a", 0.3), ("b", 0.2), ("c", 0.1)]
    assert boost_named_entities("Ana", [], entity_boost=1.0) == []


def test_negative_scores_are_never_boosted_further_down() -> None:
    out = boost_named_entities("Ana", [result("a", -0.2, ["Ana"])], entity_boost=1.0)
    assert out[0].score == -0.2


def test_check_context() -> None:
    assert check_context(None) is None
    assert check_context("   ") is None
    assert check_context("  Ben: where from?  ") == "Ben: where from?"
    with pytest.raises(ValidationError, match="string"):
        check_context(42)
    with pytest.raises(ValidationError, match="NUL"):
        check_context("a\x00b")
    with pytest.raises(ValidationError, match="longer"):
        check_context("x" * (MAX_CONTEXT_CHARS + 1))


def test_context_of_search_text() -> None:
    assert context_of_search_text("content\n8 May 2023") is None
    assert context_of_search_text("content\n8 May 2023\n\u241eBen: where from?") == (
        "Ben: where from?"
    )


def test_negative_entity_boost_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="date_boost"):
        MemoryConfig(db_path=tmp_path / "x.db", date_boost=-1.0)
    with pytest.raises(ConfigurationError, match="entity_boost"):
        MemoryConfig(db_path=tmp_path / "x.db", entity_boost="high")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="entity_boost"):
        MemoryConfig(db_path=tmp_path / "x.db", entity_boost=-0.1)


@pytest.fixture
def mem(tmp_path: Path) -> Iterator[HierarchicalMemory]:
    memory = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=tmp_path / "m.db", vector_dimension=64, cache_enabled=False),
        embedder=HashEmbedder(64),
    )
    yield memory
    memory.sync.close()


def test_context_is_indexed_but_never_shown(mem: HierarchicalMemory) -> None:
    answer, other = mem.sync.add_batch(
        [
            {"content": "Ana: Sweden, years ago.", "user_id": "u",
             "context": "Ben: Where did you move from originally?"},
            {"content": "Ben: I like tea.", "user_id": "u"},
        ]
    )  # fmt: skip
    found = mem.sync.search("moved from originally", "u", mode="text")
    assert [r.id for r in found] == [answer.id]
    assert found[0].content == "Ana: Sweden, years ago."
    assert found[0].memory.context is None  # read back: the context is not a shown field
    assert "originally" not in str(found[0].memory.to_dict())
    assert mem.sync.search("originally", "someone-else", mode="text") == []
    # an update (metadata or content) keeps the indexed context
    mem.sync.update(answer.id, user_id="u", importance=0.9)
    mem.sync.update(answer.id, user_id="u", content="Ana: From Sweden, four years ago.")
    found = mem.sync.search("moved from originally", "u", mode="text")
    assert [r.content for r in found] == ["Ana: From Sweden, four years ago."]
    assert other.id not in {r.id for r in found}


def test_add_accepts_context_and_rejects_bad_context(mem: HierarchicalMemory) -> None:
    mem.sync.add("Ana: yes, twice.", "u", context="Ben: Have you been to Lisbon?")
    assert [r.content for r in mem.sync.search("Lisbon", "u", mode="text")] == ["Ana: yes, twice."]
    with pytest.raises(ValidationError, match="context"):
        mem.sync.add_batch([{"content": "x", "user_id": "u", "context": ["not", "text"]}])


def test_hybrid_search_ranks_the_named_speakers_memory_first(tmp_path: Path) -> None:
    def top(boost: float) -> str:
        cfg = MemoryConfig(
            db_path=tmp_path / f"b{boost}.db", vector_dimension=64, entity_boost=boost
        )
        mem = HierarchicalMemory.create_sync(cfg, embedder=HashEmbedder(64))
        try:
            mem.sync.add_batch(
                [
                    {"content": "Bob: hiking trip, hiking trail, hiking.",
                     "user_id": "u", "entity_refs": ["Bob"]},
                    {"content": "Ana: we went on a long walk with many friends, also some hiking "
                                "and a picnic by the lake, then home by bus.",
                     "user_id": "u", "entity_refs": ["Ana"]},
                ]
            )  # fmt: skip
            return mem.sync.search("Where did Ana go hiking?", "u", top_k=2)[0].content
        finally:
            mem.sync.close()

    assert top(0.0).startswith("Bob")  # the fused ranking alone prefers Bob's turn
    assert top(1.0).startswith("Ana")  # naming Ana brings her turn first


def test_query_dates_month_and_year() -> None:
    from datetime import UTC, datetime

    def mem(y: int, m: int) -> Memory:
        return Memory(id="x", content="x", user_id="u", valid_from=datetime(y, m, 3, tzinfo=UTC))

    june = analyse_query("When did Ana go camping in June?")
    assert june.months == {6} and not june.years
    assert june.dates(mem(2023, 6)) and june.dates(mem(2021, 6)) and not june.dates(mem(2023, 7))
    both = analyse_query("What happened in Oct 2023?")
    assert both.dates(mem(2023, 10)) and not both.dates(mem(2022, 10))
    year = analyse_query("trips in 2022")
    assert year.years == {2022} and year.dates(mem(2022, 1)) and not year.dates(mem(2023, 1))
    assert not analyse_query("you may march on").dates(mem(2023, 5))  # lowercase: plain words
    assert not analyse_query("no dates here").dates(mem(2023, 5))


def test_date_boost_reorders_by_valid_from() -> None:
    from datetime import UTC, datetime

    a = result("a", 0.10)
    b = result("b", 0.08)
    b.memory.valid_from = datetime(2023, 6, 9, tzinfo=UTC)
    a.memory.valid_from = datetime(2023, 5, 9, tzinfo=UTC)
    out = boost_named_entities("camping in June", [a, b], entity_boost=0.0, date_boost=0.5)
    assert [r.id for r in out] == ["b", "a"] and out[0].score == pytest.approx(0.12)
    c, d = result("c", 0.10), result("d", 0.08)
    d.memory.valid_from = datetime(2023, 6, 9, tzinfo=UTC)
    out = boost_named_entities("camping", [c, d], entity_boost=0.0, date_boost=0.5)
    assert [(r.id, r.score) for r in out] == [("c", 0.10), ("d", 0.08)]  # no date named


@pytest.mark.contract
def test_context_is_kept_by_update_on_every_store(hm: HierarchicalMemory) -> None:
    answer = hm.sync.add("Ana: Sweden, years ago.", "u", context="Ben: where from originally?")
    hm.sync.add_batch(
        [{"content": f"Ben: filler turn number {i}", "user_id": "u"} for i in range(6)]
    )
    assert [r.id for r in hm.sync.search("originally", "u", mode="text")] == [answer.id]
    hm.sync.update(answer.id, user_id="u", content="Ana: From Sweden, four years ago.")
    found = hm.sync.search("originally", "u", mode="text")
    assert [r.content for r in found] == ["Ana: From Sweden, four years ago."]
