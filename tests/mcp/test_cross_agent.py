"""The seeds' cross-agent story with two real clients and the real (default) embedder.

"claude" remembers "Project uses uv, not pip"; "codex", in another session (its own server, as two
agents each start their own ``headroom mcp``), recalls it for "package manager", sees that claude
stored it, and restating it merges instead of storing it twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from headroom.mcp import McpOptions, build_server
from headroom.memory import HierarchicalMemory, MemoryConfig, MemoryFilter

pytestmark = pytest.mark.real_embedder


async def test_claude_remembers_codex_recalls_and_merges(
    tmp_path: Path, real_embedder: Any, connect: Any, ok: Any
) -> None:
    hm = await HierarchicalMemory.create(
        MemoryConfig(db_path=tmp_path / "team.db"), embedder=real_embedder
    )
    try:
        options = McpOptions(db=str(tmp_path / "team.db"), user="team")
        claude_server, codex_server = build_server(options, hm), build_server(options, hm)

        async with connect(claude_server, "claude") as claude:
            stored = ok(await claude.call_tool("remember", {"content": "Project uses uv, not pip"}))
            # (MiniLM puts "package manager" closer to "The staging database is PostgreSQL 16"
            # than to the uv fact: cosine 0.17 vs 0.12; the seeds' example has no such neighbour.)
            for other in ["The user prefers tabs over spaces", "Always run tests with -x"]:
                ok(await claude.call_tool("remember", {"content": other}))
        fact = stored["memory"]

        async with connect(codex_server, "codex") as codex:
            hits = ok(await codex.call_tool("recall", {"query": "package manager", "top_k": 3}))
            top = hits["results"][0]["memory"]
            assert top["id"] == fact["id"] and top["content"] == "Project uses uv, not pip"
            assert top["agent"] == "claude"  # who stored it
            mine = ok(await codex.call_tool("remember", {"content": "Commit messages are short"}))
            assert mine["memory"]["session"] != fact["session"]  # another session
            merged = ok(
                await codex.call_tool("remember", {"content": "The project uses uv, not pip"})
            )
        assert merged["action"] == "merged"
        assert merged["memory"]["id"] == fact["id"]
        assert merged["memory"]["content"] == "Project uses uv, not pip"
        assert merged["memory"]["agents"] == ["claude", "codex"]

        uv = [m for m in await hm.query(MemoryFilter(user_id="team")) if "uv" in m.content]
        assert len(uv) == 1  # stored once
    finally:
        await hm.close()


async def test_default_embedder_opened_by_the_lifespan(
    tmp_path: Path, connect: Any, ok: Any
) -> None:
    """No memory passed in: the lifespan opens --db with the default local embedder itself."""
    server = build_server(McpOptions(db=str(tmp_path / "own.db"), user="solo"))
    async with connect(server, "claude") as client:
        ok(await client.call_tool("remember", {"content": "Project uses uv, not pip"}))
        ok(await client.call_tool("remember", {"content": "The staging database is PostgreSQL 16"}))
        hits = ok(await client.call_tool("recall", {"query": "uv or pip?"}))
        again = ok(await client.call_tool("remember", {"content": "project uses uv not pip"}))
    assert hits["results"][0]["memory"]["content"] == "Project uses uv, not pip"
    assert 0.0 < hits["results"][0]["similarity"] < 1.0
    assert again["action"] == "merged"
