"""with_memory end to end: persistence across processes, the real embedder, the documents' examples."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI

from headroom import with_memory
from headroom.memory import MemoryConfig
from headroom.testing import HashEmbedder
from headroom.testing.fake_openai import FakeOpenAIServer


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:  # the ScriptedAssistant
        yield srv


def user_text(server: FakeOpenAIServer) -> str:
    return str([m for m in server.requests[-1]["messages"] if m["role"] == "user"][-1]["content"])


def test_recall_from_a_separate_process(
    server: FakeOpenAIServer, hash_config: MemoryConfig
) -> None:
    client = OpenAI(base_url=server.base_url, api_key="test")
    with with_memory(
        client, "bob", session_id="morning", config=hash_config, embedder=HashEmbedder(64)
    ) as w:
        w.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "I prefer Go for performance-critical code."}],
        )
    script = textwrap.dedent(
        f"""
        from openai import OpenAI
        from headroom import with_memory
        from headroom.memory import MemoryConfig
        from headroom.testing import HashEmbedder
        cfg = MemoryConfig(db_path={str(hash_config.db_path)!r}, vector_dimension=64)
        client = with_memory(OpenAI(base_url={server.base_url!r}, api_key="test"), user_id="bob",
                             session_id="afternoon", config=cfg, embedder=HashEmbedder(64))
        r = client.chat.completions.create(model="m", messages=[
            {{"role": "user", "content": "Which language for performance-critical code in my microservice?"}}])
        print(r.choices[0].message.content)
        client.close()
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "User prefers Go for performance-critical code" in done.stdout
    assert '"User prefers Go for performance-critical code"' in user_text(server)
    assert len(server.requests) == 2


@pytest.mark.real_embedder
def test_real_embedder_end_to_end(server: FakeOpenAIServer, tmp_path: Path) -> None:
    client = with_memory(OpenAI(base_url=server.base_url, api_key="test"), "bob", session_id="morning",
                         config=MemoryConfig(db_path=tmp_path / "real.db"))  # fmt: skip
    client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "I prefer Go for performance-critical code."}],
    )
    client.memory.add("User has a cat named Tom", category="fact")
    other = with_memory(OpenAI(base_url=server.base_url, api_key="test"), "bob", session_id="afternoon",
                        memory=client.memory.hierarchical, top_k=1)  # fmt: skip
    reply = other.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "What language for my new microservice?"}]
    )
    assert "User prefers Go for performance-critical code" in user_text(server)
    assert "cat" not in user_text(server)  # top_k=1: the semantically closest memory only
    assert "Go for performance-critical code" in reply.choices[0].message.content
    assert (
        client.memory.search("programming language", top_k=1)[0].content
        == "User prefers Go for performance-critical code"
    )
    assert client.memory.stats()["total"] == 2
    client.close()


@pytest.mark.real_embedder
def test_documented_examples_as_written(
    server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Quick Start, Multi-Session, Full Conversation Flow and the direct memory operations."""
    monkeypatch.chdir(tmp_path)

    def OpenAI() -> object:
        from openai import OpenAI as RealOpenAI

        return RealOpenAI(base_url=server.base_url, api_key="test")

    # Quick Start
    client = with_memory(OpenAI(), user_id="alice")
    response = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "I prefer Python for backend work"}]
    )
    assert "<memory>" not in response.choices[0].message.content
    response = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "What language should I use?"}]
    )
    assert "Python" in response.choices[0].message.content
    client.close()
    assert Path("headroom_memory.db").exists()

    # Multi-Session Memory
    client1 = with_memory(OpenAI(), user_id="bob", session_id="morning-session")
    client1.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "I prefer Go for performance-critical code"}],
    )
    client1.close()
    client2 = with_memory(OpenAI(), user_id="bob", session_id="afternoon-session")
    response = client2.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "What language for my new microservice?"}],
    )
    assert "Go for performance-critical code" in response.choices[0].message.content
    client2.close()

    # Example: Full Conversation Flow
    client = with_memory(OpenAI(), user_id="developer_jane")
    client.chat.completions.create(
        model="gpt-4o",
        messages=[
            {
                "role": "user",
                "content": "I'm a Python developer at a fintech startup. We use PostgreSQL and FastAPI.",
            }
        ],
    )
    response = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "What database should I use for my new project?"}],
    )
    assert "PostgreSQL" in response.choices[0].message.content
    stored = [f"[{m.category.value}] {m.content}" for m in client.memory.get_all()]
    assert "[fact] User's team uses PostgreSQL and FastAPI" in stored and len(stored) == 2

    # Direct Memory Operations (and the .memory attribute of the Memory page)
    wrapper = client
    wrapper.memory.add(content="User prefers dark theme", importance=0.85)
    matches = wrapper.memory.search(query="dark theme", top_k=5)
    assert matches[0].content == "User prefers dark theme" and matches[0].importance == 0.85
    client.memory.add("User is a senior engineer", importance=0.9)
    assert wrapper.memory.stats()["total"] == 4
    deleted = wrapper.memory.clear()
    assert deleted == 4 and wrapper.memory.stats()["total"] == 0
    client.close()

    # Long-running agent sessions: MemoryConfig + with_memory with session and agent ids
    from headroom.memory.config import EmbedderBackend, StoreBackend, TextBackend, VectorBackend

    memory_cfg = MemoryConfig(
        store_backend=StoreBackend.SQLITE, db_path=Path("./my_agent_memory.db"),
        vector_backend=VectorBackend.AUTO, vector_dimension=384, vector_cache_size_kb=8192,
        text_backend=TextBackend.FTS5, embedder_backend=EmbedderBackend.LOCAL,
        embedder_model="sentence-transformers/all-MiniLM-L6-v2", cache_enabled=True,
        cache_max_size=2000, auto_bubble=True, bubble_threshold=0.75,
    )  # fmt: skip
    memory_client = with_memory(
        OpenAI(), user_id="alice", db_path="my_agent_memory.db", top_k=8,
        session_id="my-long-running-session", agent_id="code-assistant",
        embedder_backend=EmbedderBackend.LOCAL, config=memory_cfg,
    )  # fmt: skip
    memory_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "My favorite editor is Vim."}]
    )
    resp2 = memory_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "What editor do I like?"}]
    )
    assert "User's favorite editor is Vim" in resp2.choices[0].message.content
    assert Path("my_agent_memory.db").exists()
    memory_client.close()
