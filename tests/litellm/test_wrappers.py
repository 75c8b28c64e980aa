"""headroom_litellm.completion / acompletion over mock_response and a local fake server."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import headroom_litellm as hl
from headroom.inline.injection import INSTRUCTION_MARKER
from headroom.memory import HierarchicalMemory
from headroom.testing.fake_openai import FakeOpenAIServer

REPLY = 'Sure thing. <memory>{"memories": [{"content": "User likes Rust"}]}</memory>'
VISIBLE = "Sure thing."
Contents = Callable[..., list[str]]
PROVIDERS = [
    "openai/gpt-4o-mini",
    "anthropic/claude-3-5-haiku-latest",
    "gemini/gemini-1.5-flash",
    "groq/llama-3.1-8b-instant",
    "ollama/llama3.2",
]
ASK: list[Any] = [{"role": "user", "content": "I like Rust, remember that."}]


def injected(request: dict[str, Any]) -> str:
    return json.dumps(request.get("messages"))


def _text(chunks: list[object]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks)  # type: ignore[attr-defined]


@pytest.mark.parametrize("model", PROVIDERS)
def test_sync_completion_strips_and_stores(
    model: str, hm: HierarchicalMemory, contents: Contents
) -> None:
    response = hl.completion(
        model=model, messages=ASK, mock_response=REPLY, user_id="alice", memory=hm
    )
    assert response.choices[0].message.content == VISIBLE
    assert contents(hm, "alice") == ["User likes Rust"]


@pytest.mark.parametrize("model", PROVIDERS)
async def test_async_completion_strips_and_stores(
    model: str, hm: HierarchicalMemory, contents: Contents
) -> None:
    response = await hl.acompletion(
        model=model, messages=ASK, mock_response=REPLY, user_id="alice", memory=hm
    )
    assert response.choices[0].message.content == VISIBLE
    assert contents(hm, "alice") == ["User likes Rust"]


@pytest.mark.parametrize("model", PROVIDERS)
def test_sync_stream_strips_split_tags(
    model: str, hm: HierarchicalMemory, contents: Contents
) -> None:
    # litellm cuts mock streams into 3-character chunks, so the tags are split across chunks
    stream = hl.completion(
        model=model, messages=ASK, mock_response=REPLY, stream=True, user_id="alice", memory=hm
    )
    assert isinstance(stream, hl.HeadroomStream)
    chunks = list(stream)
    assert len(chunks) > 10
    assert _text(chunks) == VISIBLE
    assert all("<" not in (c.choices[0].delta.content or "") for c in chunks)
    assert contents(hm, "alice") == ["User likes Rust"]


@pytest.mark.parametrize("model", PROVIDERS)
async def test_async_stream_strips_split_tags(
    model: str, hm: HierarchicalMemory, contents: Contents
) -> None:
    stream = await hl.acompletion(
        model=model, messages=ASK, mock_response=REPLY, stream=True, user_id="alice", memory=hm
    )
    chunks = [chunk async for chunk in stream]
    assert _text(chunks) == VISIBLE
    assert contents(hm, "alice") == ["User likes Rust"]


def test_positional_model_and_messages(hm: HierarchicalMemory, contents: Contents) -> None:
    response = hl.completion("openai/gpt-4o", ASK, mock_response=REPLY, user_id="alice", memory=hm)
    assert response.choices[0].message.content == VISIBLE
    assert contents(hm, "alice") == ["User likes Rust"]


def test_memory_injected_on_next_request(hm: HierarchicalMemory, server: FakeOpenAIServer) -> None:
    common: dict[str, Any] = {
        "model": "openai/fake-model",
        "api_base": server.base_url,
        "api_key": "sk-test",
    }
    first = hl.completion(messages=ASK, user_id="alice", memory=hm, **common)
    assert first.choices[0].message.content == VISIBLE
    assert INSTRUCTION_MARKER in injected(server.requests[0])
    assert "User likes Rust" not in injected(server.requests[0])
    hl.completion(
        messages=[{"role": "user", "content": "Which language do I like?"}],
        user_id="alice",
        memory=hm,
        **common,
    )
    sent = server.requests[1]["messages"]
    assert "<headroom_context>" in sent[-1]["content"] and "User likes Rust" in sent[-1]["content"]
    assert sum(INSTRUCTION_MARKER in (m.get("content") or "") for m in sent) == 1
    # another user sees nothing of alice's
    hl.completion(
        messages=[{"role": "user", "content": "Which language do I like?"}],
        user_id="bob",
        memory=hm,
        **common,
    )
    assert "User likes Rust" not in injected(server.requests[2])


@pytest.mark.parametrize("cut", [1, 7, 12, 13, 14, 18, 20, 30, 60, 70, 73, 74])
async def test_server_stream_split_at_positions(
    cut: int, hm: HierarchicalMemory, server: FakeOpenAIServer, contents: Contents
) -> None:
    server.chunk_size = None
    server.split_points = [cut, cut + 1]
    common: dict[str, Any] = {
        "model": "openai/fake-model",
        "api_base": server.base_url,
        "api_key": "sk-test",
    }
    stream = hl.completion(messages=ASK, stream=True, user_id="alice", memory=hm, **common)
    assert _text(list(stream)) == VISIBLE
    astream = await hl.acompletion(messages=ASK, stream=True, user_id="carol", memory=hm, **common)
    assert _text([c async for c in astream]) == VISIBLE
    assert contents(hm, "alice") == contents(hm, "carol") == ["User likes Rust"]


def test_db_path_memories_are_cached_and_closed(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    memory_factory: Callable[[Path], HierarchicalMemory],
) -> None:
    import headroom_litellm.wrappers as wrappers

    opened: list[HierarchicalMemory] = []
    real_create_sync = HierarchicalMemory.create_sync

    def fake_create_sync(config: object, **_: object) -> HierarchicalMemory:
        monkeypatch.setattr(HierarchicalMemory, "create_sync", real_create_sync)
        memory = memory_factory(tmp_path / f"real-{len(opened)}.db")
        monkeypatch.setattr(HierarchicalMemory, "create_sync", staticmethod(fake_create_sync))
        opened.append(memory)
        return memory

    registry = hl.MemoryRegistry(max_databases=1)
    monkeypatch.setattr(wrappers, "_REGISTRY", registry)
    monkeypatch.setattr(HierarchicalMemory, "create_sync", staticmethod(fake_create_sync))
    for _ in range(3):
        out = hl.completion(
            model="openai/x",
            messages=ASK,
            mock_response=REPLY,
            user_id="alice",
            db_path=tmp_path / "a.db",
        )
        assert out.choices[0].message.content == VISIBLE
    assert len(opened) == 1
    hl.completion(
        model="openai/x",
        messages=ASK,
        mock_response=REPLY,
        user_id="alice",
        db_path=tmp_path / "b.db",
    )
    assert len(opened) == 2 and opened[0].closed  # bounded: the least recently used was closed
    assert registry.open_databases() == [str((tmp_path / "b.db").resolve())]
    registry.close_all()
    assert opened[1].closed and registry.open_databases() == []
