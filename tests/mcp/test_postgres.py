"""``headroom mcp --db postgresql://...``: the same server on the PostgreSQL backend.

Uses the suite's ``postgres_server`` fixture (a real PostgreSQL + pgvector) where the PostgreSQL
backend exists; skipped in a tree without it.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.types import Implementation


@pytest.fixture
def schema_url(request: pytest.FixtureRequest) -> Iterator[str]:
    try:
        server = request.getfixturevalue("postgres_server")
    except pytest.FixtureLookupError:
        pytest.skip("no PostgreSQL backend in this tree (postgres_server fixture missing)")
    import psycopg

    schema = f"mcp_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")  # type: ignore[arg-type]
    sep = "&" if "?" in server else "?"
    yield f"{server}{sep}options=-csearch_path%3D{schema}%2Cpublic"
    with psycopg.connect(server, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")  # type: ignore[arg-type]


def _stdio(url: str, agent: str) -> Client:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "headroom.cli", "mcp", "--db", url, "--embedder", "hash", "--user", "team"],
        env=env,
    )
    return Client(params, client_info=Implementation(name=agent, version="1.0"))


async def test_stdio_servers_share_a_postgresql_memory(schema_url: str, ok: Any) -> None:
    async with _stdio(schema_url, "claude") as claude:
        stored = ok(await claude.call_tool("remember", {"content": "Project uses uv, not pip"}))
    async with _stdio(schema_url, "codex") as codex:
        hits = ok(await codex.call_tool("recall", {"query": "uv or pip"}))
        assert hits["results"][0]["memory"]["id"] == stored["memory"]["id"]
        assert hits["results"][0]["memory"]["agent"] == "claude"
        merged = ok(await codex.call_tool("remember", {"content": "project uses uv, not pip"}))
        assert merged["action"] == "merged"
        assert ok(await codex.call_tool("list_memories", {}))["total"] == 1
