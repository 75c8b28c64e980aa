"""Fixtures for the headroom-litellm tests.

``LITELLM_LOCAL_MODEL_COST_MAP=True`` is set here, at import time, before anything imports
litellm: otherwise ``import litellm`` fetches the model cost map over the network.
"""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ.setdefault("LITELLM_TELEMETRY", "False")

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from headroom.memory import HierarchicalMemory, MemoryConfig
from headroom.testing import HashEmbedder
from headroom.testing.fake_openai import FakeOpenAIServer

REPLY = 'Sure thing. <memory>{"memories": [{"content": "User likes Rust"}]}</memory>'
"""What the fake server and mock_response answer (keep in sync with the test modules)."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "litellm_proxy: starts a real LiteLLM proxy process (about 10-30 s)"
    )


def open_memory(path: Path) -> HierarchicalMemory:
    return HierarchicalMemory.create_sync(
        MemoryConfig(db_path=path, vector_dimension=64), embedder=HashEmbedder(64)
    )


@pytest.fixture
def hm(tmp_path: Path) -> Iterator[HierarchicalMemory]:
    memory = open_memory(tmp_path / "m.db")
    yield memory
    memory.sync.close()


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(lambda request: REPLY, chunk_size=3) as fake:
        yield fake


@pytest.fixture(autouse=True)
def _reset_litellm_callbacks() -> Iterator[None]:
    import litellm

    yield
    litellm.logging_callback_manager._reset_all_callbacks()


def _contents(memory: HierarchicalMemory, user_id: str | None = None) -> list[str]:
    from headroom.memory import MemoryFilter

    return sorted(m.content for m in memory.sync.query(MemoryFilter(user_id=user_id)))


@pytest.fixture
def contents() -> Callable[..., list[str]]:
    """``contents(memory, user_id=None)``: the sorted contents of the stored current memories."""
    return _contents


@pytest.fixture
def memory_factory() -> Callable[[Path], HierarchicalMemory]:
    return open_memory
