"""How ``headroom mcp`` opens the memory and picks the user from its options."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from headroom.cli.mcp import _default_user
from headroom.mcp import McpOptions, open_memory
from headroom.memory import HeadroomError, MemoryConfig


async def test_db_path_is_opened_with_the_chosen_embedder(tmp_path: Path) -> None:
    hm = await open_memory(McpOptions(db=str(tmp_path / "m.db"), embedder="hash"))
    try:
        assert isinstance(hm.config, MemoryConfig)
        assert Path(hm.config.db_path) == tmp_path / "m.db"
        assert hm.config.vector_dimension == 64
    finally:
        await hm.close()
    assert (tmp_path / "m.db").is_file()


def test_a_database_url_goes_through_the_shared_opening_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``postgresql://`` is handed to headroom.memory.opening.config_for like every entry point
    does: where that backend exists it connects (here: nothing listens), else a clear error;
    never a SQLite file named after the URL."""
    monkeypatch.chdir(tmp_path)
    url = "postgresql://headroom@127.0.0.1:9/nothing-listens-here"
    with pytest.raises(HeadroomError):
        asyncio.run(open_memory(McpOptions(db=url, embedder="hash")))
    assert list(tmp_path.iterdir()) == []


def test_default_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADROOM_USER", "team")
    assert _default_user() == "team"
    monkeypatch.delenv("HEADROOM_USER")
    assert _default_user()  # the login name, or "default"


async def test_two_servers_open_on_one_database_see_each_others_writes(
    tmp_path: Path, connect: Any, ok: Any
) -> None:
    """Two agents each running their own ``headroom mcp`` on one --db, connected at once."""
    from headroom.mcp import build_server

    db = str(tmp_path / "shared.db")
    claude_server = build_server(McpOptions(db=db, embedder="hash", user="team"))
    codex_server = build_server(McpOptions(db=db, embedder="hash", user="team"))
    async with connect(claude_server, "claude") as claude, connect(codex_server, "codex") as codex:
        assert ok(await codex.call_tool("list_memories", {}))["total"] == 0
        stored = ok(await claude.call_tool("remember", {"content": "Project uses uv, not pip"}))
        hits = ok(await codex.call_tool("recall", {"query": "uv or pip"}))
        assert hits["results"][0]["memory"]["id"] == stored["memory"]["id"]
        merged = ok(await codex.call_tool("remember", {"content": "project uses uv, not pip"}))
        assert merged["action"] == "merged"
        again = ok(await claude.call_tool("recall", {"query": "uv or pip"}))
        assert again["results"][0]["memory"]["agents"] == ["claude", "codex"]
