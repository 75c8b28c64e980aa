"""Cross-agent memory over MCP: what Claude Code learns, Codex recalls (README, "MCP server").

Two real ``headroom mcp`` processes on one database, as two coding agents would start them, each
driven by the MCP SDK's stdio client under the agent's name. Offline (default local embedder).

Run: python examples/mcp_cross_agent.py   (needs headroom-core[mcp]; creates team.db here)
"""

import asyncio
import os
import sys

from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.types import Implementation


def agent(name: str) -> Client:
    """``headroom mcp --db team.db --user team``, connected as the coding agent ``name``."""
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "headroom.cli", "mcp", "--db", "team.db", "--user", "team"],
        env=dict(os.environ),
    )
    return Client(server, client_info=Implementation(name=name, version="1.0"))


async def main() -> None:
    async with agent("claude") as claude:
        result = await claude.call_tool("remember", {"content": "Project uses uv, not pip"})
        fact = result.structured_content["memory"]
        print("claude stored:", fact["content"], "id", fact["id"])

    async with agent("codex") as codex:  # another process, another session
        result = await codex.call_tool("recall", {"query": "package manager"})
        top = result.structured_content["results"][0]["memory"]
        print(f"codex recalled: {top['content']!r} (stored by {top['agent']})")

        result = await codex.call_tool("remember", {"content": "The project uses uv, not pip"})
        again = result.structured_content
        print("codex restated it:", again["action"], "agents", again["memory"]["agents"])

        oversized = await codex.call_tool("remember", {"content": "x" * 20_000})
        print("oversized:", oversized.is_error, getattr(oversized.content[0], "text", ""))

        listed = (await codex.call_tool("list_memories", {})).structured_content
        print("memories stored:", listed["total"])

    assert top["id"] == fact["id"] and top["agent"] == "claude"
    assert again["action"] == "merged" and again["memory"]["agents"] == ["claude", "codex"]
    assert oversized.is_error and listed["total"] == 1


if __name__ == "__main__":
    asyncio.run(main())
