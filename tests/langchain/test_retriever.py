"""HeadroomRetriever: the langchain-tests standard suite, filters, per-call k, async, real embedder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_tests.integration_tests import RetrieversIntegrationTests

from headroom.memory import HierarchicalMemory, MemoryCategory, MemoryConfig
from headroom.memory.errors import ValidationError
from headroom.testing import HashEmbedder
from headroom_langchain import HeadroomMemory, HeadroomRetriever

FACTS = [
    ("User prefers Python for data science", MemoryCategory.PREFERENCE, 0.9),
    ("User likes dark roast coffee", MemoryCategory.PREFERENCE, 0.4),
    ("User works as a data engineer", MemoryCategory.FACT, 0.8),
    ("User is learning Rust", MemoryCategory.CONTEXT, 0.5),
    ("User lives in Lisbon", MemoryCategory.FACT, 0.6),
]


def populate(hm: HierarchicalMemory, user_id: str = "alice") -> None:
    hm.sync.add_batch(
        [
            {"content": c, "user_id": user_id, "category": cat, "importance": imp}
            for c, cat, imp in FACTS
        ]
    )


class TestHeadroomRetrieverStandard(RetrieversIntegrationTests):
    hm: HierarchicalMemory

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _memory(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
        cfg = MemoryConfig(db_path=tmp_path_factory.mktemp("std") / "m.db", vector_dimension=64)
        hm = HierarchicalMemory.create_sync(cfg, embedder=HashEmbedder(64))
        populate(hm)
        cls.hm = hm
        yield
        hm.sync.close()

    @property
    def retriever_constructor(self) -> type[HeadroomRetriever]:
        return HeadroomRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"memory": self.hm, "user_id": "alice"}

    @property
    def retriever_query_example(self) -> str:
        return "what does the user like?"


def test_documents_metadata_and_filters(hm: HierarchicalMemory) -> None:
    populate(hm)
    populate(hm, "bob")
    retriever = HeadroomRetriever(memory=hm, user_id="alice", k=2)
    docs = retriever.invoke("Python data science")
    assert len(docs) == 2
    top = docs[0]
    assert isinstance(top, Document) and top.page_content == "User prefers Python for data science"
    meta = top.metadata
    assert (
        meta["user_id"] == "alice"
        and meta["category"] == "preference"
        and meta["scope_level"] == "user"
    )
    assert meta["id"] == top.id and meta["importance"] == pytest.approx(0.9)
    assert {"similarity", "score", "valid_from", "valid_until", "session_id", "agent_id"} <= set(
        meta
    )
    assert meta["valid_until"] is None and "T" in meta["valid_from"]

    assert len(retriever.invoke("user", k=5)) == 5
    prefs = retriever.invoke("user", k=5, categories=["preference"])
    assert {d.metadata["category"] for d in prefs} == {"preference"} and len(prefs) == 2
    important = retriever.invoke("user", k=5, min_importance=0.75)
    assert sorted(d.page_content for d in important) == sorted([FACTS[0][0], FACTS[2][0]])
    with pytest.raises(ValidationError):
        retriever.invoke("user", kk=3)


def test_include_superseded(hm: HierarchicalMemory) -> None:
    old = hm.sync.add("User lives in Lisbon", "alice")
    hm.sync.supersede(old.id, "User lives in Porto", user_id="alice")
    retriever = HeadroomMemory(hm, user_id="alice").as_retriever(k=5)
    assert [d.page_content for d in retriever.invoke("lives")] == ["User lives in Porto"]
    both = retriever.invoke("lives", include_superseded=True)
    assert sorted(d.page_content for d in both) == ["User lives in Lisbon", "User lives in Porto"]
    lisbon = next(d for d in both if "Lisbon" in d.page_content)
    assert lisbon.metadata["valid_until"] is not None and lisbon.metadata["is_current"] is False


async def test_async_and_session_scope(hm: HierarchicalMemory) -> None:
    hm.sync.add("Session one is about invoices", "alice", "s1")
    hm.sync.add("Session two is about payroll", "alice", "s2")
    hm.sync.add("User prefers short answers", "alice")
    retriever = HeadroomRetriever(memory=hm, user_id="alice", session_id="s1", k=10)
    docs = await retriever.ainvoke("short answers about invoices or payroll")
    assert sorted(d.page_content for d in docs) == [
        "Session one is about invoices",
        "User prefers short answers",
    ]
    assert len(await retriever.ainvoke("short answers about invoices", k=1)) == 1


def test_db_path_construction(tmp_path: Path) -> None:
    cfg = MemoryConfig(vector_dimension=64)
    retriever = HeadroomRetriever(
        db_path=tmp_path / "r.db", config=cfg, embedder=HashEmbedder(64), user_id="u"
    )
    retriever.memory.sync.add("User enjoys hiking", "u")
    assert retriever.invoke("hiking")[0].page_content == "User enjoys hiking"
    retriever.close()
    assert retriever.memory.closed


@pytest.mark.real_embedder
def test_real_embedder_ranks_by_meaning(real_hm: HierarchicalMemory) -> None:
    populate(real_hm)
    retriever = HeadroomRetriever(memory=real_hm, user_id="alice", k=1, search_mode="semantic")
    assert (
        retriever.invoke("Which city is the user based in?")[0].page_content
        == "User lives in Lisbon"
    )
    assert retriever.invoke("favourite hot drink")[0].page_content == "User likes dark roast coffee"
    hybrid = HeadroomRetriever(memory=real_hm, user_id="alice", k=2)
    assert hybrid.invoke("programming language for analytics")[0].page_content == FACTS[0][0]
