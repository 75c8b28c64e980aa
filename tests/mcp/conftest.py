"""Fixtures for ``headroom mcp``: servers over a real SQLite file, the SDK's client helpers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp")

from mcp import Client
from mcp.types import CallToolResult, Implementation

from headroom.mcp import McpOptions, build_server
from headroom.memory import HierarchicalMemory, MemoryConfig
from headroom.testing import HashEmbedder


def _connect(server: Any, agent: str = "claude") -> Client:
    """The SDK's client, connected in-process (memory transport), named like a coding agent."""
    return Client(server, client_info=Implementation(name=agent, version="1.0"))


def _ok(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def _error_text(result: CallToolResult) -> str:
    assert result.is_error, result.structured_content
    return " ".join(getattr(block, "text", "") for block in result.content)


@pytest.fixture
def connect() -> Any:
    return _connect


@pytest.fixture
def ok() -> Any:
    return _ok


@pytest.fixture
def error_text() -> Any:
    return _error_text


@pytest.fixture
def shared_hm(tmp_path: Path) -> Iterator[HierarchicalMemory]:
    """One memory (real SQLite + FAISS, hash embedder) several servers can share."""
    memory = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=tmp_path / "shared.db", vector_dimension=64), embedder=HashEmbedder(64)
    )
    yield memory
    memory.sync.close()


@pytest.fixture
def options(tmp_path: Path) -> McpOptions:
    return McpOptions(db=str(tmp_path / "memory.db"), embedder="hash", user="alice")


@pytest.fixture
def server(options: McpOptions) -> Any:
    """A server whose lifespan opens (and closes) its own memory from ``options.db``."""
    return build_server(options)
