"""The product documents' examples that need no LLM, run as written on the real embedder."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.real_embedder


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the examples use relative db paths such as "my_memory.db"


async def test_temporal_versioning_example() -> None:
    from headroom.memory import HierarchicalMemory, MemoryCategory, MemoryFilter

    memory = await HierarchicalMemory.create()
    orig = await memory.add(
        content="User works at Google", user_id="alice", category=MemoryCategory.FACT
    )
    new = await memory.supersede(old_memory_id=orig.id, new_content="User now works at Anthropic")
    current = await memory.query(MemoryFilter(user_id="alice", include_superseded=False))
    assert [m.content for m in current] == ["User now works at Anthropic"]
    history = await memory.query(MemoryFilter(user_id="alice", include_superseded=True))
    assert {m.content for m in history} == {"User works at Google", "User now works at Anthropic"}
    chain = await memory.get_history(new.id)
    assert [(m.content, m.is_current) for m in chain] == [
        ("User works at Google", False),
        ("User now works at Anthropic", True),
    ]
    assert chain[0].valid_until is not None and chain[1].valid_until is None
    await memory.close()
    assert await asyncio.to_thread(os.path.exists, "headroom_memory.db")


async def test_advanced_usage_example() -> None:
    from headroom.memory import EmbedderBackend, HierarchicalMemory, MemoryCategory, MemoryConfig
    from headroom.memory.ports import MemoryFilter, VectorFilter

    assert VectorFilter is not None
    config = MemoryConfig(
        db_path="my_memory.db",
        embedder_backend=EmbedderBackend.LOCAL,
        vector_dimension=384,
        cache_max_size=2000,
    )
    memory = await HierarchicalMemory.create(config)
    mem = await memory.add(
        content="User prefers functional programming",
        user_id="alice",
        session_id="sess-123",
        agent_id="code-assistant",
        category=MemoryCategory.PREFERENCE,
        importance=0.9,
        entity_refs=["functional-programming", "coding-style"],
        metadata={"source": "conversation", "confidence": 0.95},
    )
    results = await memory.search(
        query="programming paradigm preferences",
        user_id="alice",
        top_k=5,
        min_similarity=0.5,
        categories=[MemoryCategory.PREFERENCE],
    )
    assert [r.memory.id for r in results] == [mem.id]
    assert results[0].similarity >= 0.5
    text_results = await memory.text_search(query="functional", user_id="alice")
    assert [r.memory.id for r in text_results] == [mem.id]
    memories = await memory.query(
        MemoryFilter(
            user_id="alice",
            categories=[MemoryCategory.PREFERENCE, MemoryCategory.FACT],
            min_importance=0.7,
            limit=10,
        )
    )
    assert [m.id for m in memories] == [mem.id]
    await memory.remember("Likes coffee", user_id="alice", importance=0.6)
    relevant = await memory.recall("beverage preferences", user_id="alice")
    assert relevant[0].content == "Likes coffee"
    await memory.close()


async def test_memory_easy_api_and_cross_agent_example() -> None:
    from headroom.memory import Memory

    memory = Memory()
    await memory.save("User prefers dark mode and uses Python", user_id="alice")
    results = await memory.search("What programming language?", user_id="alice")
    assert results[0].content == "User prefers dark mode and uses Python"
    assert isinstance(results[0].score, float)

    await memory.save("Project uses uv, not pip", user_id="team", agent_id="claude")
    results = await memory.search("package manager", user_id="team", agent_id="codex")
    assert [r.content for r in results] == ["Project uses uv, not pip"]
    # Duplicates are deduplicated, with agent provenance tracked.
    again = await memory.save("Project uses uv, not pip", user_id="team", agent_id="codex")
    assert again.metadata["agents"] == ["claude", "codex"]
    assert len(await memory.get_all(user_id="team")) == 1
    assert await memory.search("package manager", user_id="bob") == []
    assert await memory.clear(user_id="team") == 1
    await memory.close()


def test_config_examples_construct() -> None:
    from headroom.memory import EmbedderBackend, MemoryConfig, VectorBackend
    from headroom.memory.config import StoreBackend, TextBackend

    MemoryConfig(
        store_backend=StoreBackend.SQLITE,
        db_path=Path("./my_agent_memory.db"),
        vector_backend=VectorBackend.AUTO,
        vector_dimension=384,
        vector_cache_size_kb=8192,
        text_backend=TextBackend.FTS5,
        embedder_backend=EmbedderBackend.LOCAL,
        embedder_model="sentence-transformers/all-MiniLM-L6-v2",
        cache_enabled=True,
        cache_max_size=2000,
        auto_bubble=True,
        bubble_threshold=0.75,
    )
    MemoryConfig(
        embedder_backend=EmbedderBackend.OPENAI,
        openai_api_key="sk-...",
        embedder_model="text-embedding-3-small",
    )
    MemoryConfig(
        embedder_backend=EmbedderBackend.OLLAMA,
        ollama_base_url="http://localhost:11434",
        embedder_model="nomic-embed-text",
    )
    MemoryConfig(
        db_path="memory.db", vector_backend=VectorBackend.AUTO, vector_dimension=384,
        hnsw_ef_construction=200, hnsw_m=16, hnsw_ef_search=50, cache_enabled=True,
        cache_max_size=1000, embedder_backend=EmbedderBackend.ONNX, embedder_model="BAAI/bge-small-en-v1.5",
    )  # fmt: skip
    assert os.getcwd()
