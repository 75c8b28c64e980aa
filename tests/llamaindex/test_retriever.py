"""HeadroomRetriever: memories as NodeWithScore, with the core's filters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from llama_index.core.schema import MetadataMode, QueryBundle

from headroom.memory import HierarchicalMemory, MemoryConfig
from headroom_llamaindex import HeadroomRetriever
from headroom_llamaindex import __all__ as public_names


def test_public_api() -> None:
    assert sorted(public_names) == [
        "ChatStoreIndexError",
        "HeadroomChatStore",
        "HeadroomDBChatStore",
        "HeadroomLLM",
        "HeadroomMemory",
        "HeadroomMemoryBlock",
        "HeadroomRetriever",
        "headroom_memory_blocks_template",
        "search_result_to_node",
    ]


def seed(hm: HierarchicalMemory) -> dict[str, str]:
    ids = {}
    ids["tea"] = hm.sync.add(
        "User drinks green tea every morning", "alice", category="preference", importance=0.9
    ).id
    ids["coffee"] = hm.sync.add(
        "User drinks coffee at work", "alice", category="fact", importance=0.2
    ).id
    ids["session"] = hm.sync.add(
        "User drinks tea in this session", "alice", "s1", category="context"
    ).id
    ids["bob"] = hm.sync.add("Bob drinks tea", "bob").id
    return ids


def test_nodes_carry_ids_metadata_and_similarity(hm: HierarchicalMemory) -> None:
    ids = seed(hm)
    nodes = HeadroomRetriever(memory=hm, user_id="alice", top_k=10).retrieve(
        "which green tea does the user drink in the morning"
    )
    assert {n.node.node_id for n in nodes} == {ids["tea"], ids["coffee"], ids["session"]}
    top = nodes[0]
    assert top.node.node_id == ids["tea"]
    meta = top.node.metadata
    assert meta["category"] == "preference" and meta["importance"] == 0.9
    assert meta["scope_level"] == "user" and meta["user_id"] == "alice"
    assert top.score is not None and meta["similarity"] == top.score and -1.0 <= top.score <= 1.0
    assert meta["valid_from"] and meta["valid_until"] is None and "rank_score" in meta
    llm_text = top.node.get_content(metadata_mode=MetadataMode.LLM)
    assert "preference" in llm_text and ids["tea"] not in llm_text


def test_filters_match_the_core(hm: HierarchicalMemory) -> None:
    ids = seed(hm)

    def found(**kwargs: object) -> set[str]:
        retriever = HeadroomRetriever(memory=hm, user_id="alice", top_k=10, **kwargs)  # type: ignore[arg-type]
        return {n.node.node_id for n in retriever.retrieve("tea coffee drinks")}

    assert found(session_id="s2") == {ids["tea"], ids["coffee"]}
    assert found(session_id="s1") == {ids["tea"], ids["coffee"], ids["session"]}
    assert found(categories=["preference"]) == {ids["tea"]}
    assert found(min_importance=0.5) == {ids["tea"], ids["session"]}
    new = hm.sync.supersede(ids["coffee"], "User quit coffee")
    assert ids["coffee"] not in found()
    assert {ids["coffee"], new.id} <= found(include_superseded=True)
    assert HeadroomRetriever(memory=hm, user_id="alice").retrieve("   ") == []


async def test_aretrieve(hm: HierarchicalMemory) -> None:
    ids = seed(hm)
    retriever = HeadroomRetriever(memory=hm, user_id="alice", categories=["preference"])
    nodes = await retriever.aretrieve(QueryBundle("green tea"))
    assert [n.node.node_id for n in nodes] == [ids["tea"]]


def test_owns_a_memory_opened_from_db_path(tmp_path: Path) -> None:
    from headroom.testing import HashEmbedder

    config = MemoryConfig(db_path=tmp_path / "own.db", vector_dimension=64)
    retriever = HeadroomRetriever(config=config, embedder=HashEmbedder(64), user_id="alice")
    retriever.memory.sync.add("User likes chess", "alice")
    assert retriever.retrieve("chess")[0].node.get_content() == "User likes chess"
    retriever.close()
    assert retriever.memory.closed


@pytest.fixture(scope="module")
def real_hm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HierarchicalMemory]:
    memory = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=tmp_path_factory.mktemp("real") / "m.db")
    )
    yield memory
    memory.sync.close()


@pytest.mark.real_embedder
def test_real_embedder_ranks_by_meaning(real_hm: HierarchicalMemory) -> None:
    real_hm.sync.add("The user is allergic to peanuts", "alice", category="fact")
    real_hm.sync.add("The user's favourite sport is tennis", "alice", category="preference")
    real_hm.sync.add("The user works as a nurse in a hospital", "alice")
    retriever = HeadroomRetriever(memory=real_hm, user_id="alice", top_k=3, mode="semantic")
    nodes = retriever.retrieve("What foods should I avoid cooking for them?")
    assert nodes[0].node.get_content() == "The user is allergic to peanuts"
    assert nodes[0].score is not None and nodes[0].score > nodes[-1].score  # type: ignore[operator]
    sport = retriever.retrieve("Which games do they enjoy playing?")
    assert sport[0].node.get_content() == "The user's favourite sport is tennis"
