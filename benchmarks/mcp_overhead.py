"""What MCP adds to a memory call: remember / recall directly, in-process over the SDK's memory
transport, and through a real ``headroom mcp`` stdio subprocess.

Usage: python benchmarks/mcp_overhead.py [--quick]

All three paths use the same database size and the fast hashing embedder (64-d), so the
difference is the protocol: JSON-RPC framing, argument validation, structured output and, for
stdio, the pipe to another process. Every recall query is unique, so no path is served from the
engine's search cache. Reported as p50/p95 and the ratio to the direct call.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table, summarize, write_json
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.types import Implementation

from headroom.mcp import Identity, McpOptions, MemoryTools, build_server, open_memory

WORDS = "uv pip poetry ruff mypy pytest docker postgres redis kafka tabs spaces rust go".split()


def fact(i: int) -> str:
    return f"Fact {i}: the project uses {WORDS[i % len(WORDS)]} and {WORDS[(i * 7) % len(WORDS)]}"


async def timed(fn: Callable[[int], Awaitable[Any]], repeat: int) -> dict[str, float]:
    samples = []
    for i in range(repeat):
        start = time.perf_counter()
        await fn(i)
        samples.append((time.perf_counter() - start) * 1000)
    return summarize(samples)


async def measure_client(client: Client, repeat: int, offset: int) -> dict[str, dict[str, float]]:
    async def remember(i: int) -> None:
        result = await client.call_tool("remember", {"content": fact(offset + i)})
        assert not result.is_error, result.content

    async def recall(i: int) -> None:
        result = await client.call_tool(
            "recall", {"query": f"does it use {WORDS[i % 14]} (call {i})"}
        )
        assert not result.is_error, result.content

    return {"remember": await timed(remember, repeat), "recall": await timed(recall, repeat)}


async def main(quick: bool) -> None:
    size, repeat = (200, 30) if quick else (2000, 200)
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "bench.db")
        options = McpOptions(db=db, embedder="hash", user="team", dedup_threshold=1.01)
        hm = await open_memory(options)
        await hm.add_batch([{"content": fact(i), "user_id": "team"} for i in range(size)])
        tools = MemoryTools(hm, dedup_threshold=1.01)
        who = Identity(user_id="team", agent_id="bench", session_id="s")

        async def remember(i: int) -> None:
            await tools.remember(who, fact(size + i))

        async def recall(i: int) -> None:
            await tools.recall(who, f"does it use {WORDS[i % 14]} (call {i})")

        results = {"direct": {"remember": await timed(remember, repeat),
                              "recall": await timed(recall, repeat)}}  # fmt: skip
        server = build_server(options, memory=hm)
        async with Client(server, client_info=Implementation(name="bench", version="1")) as c:
            results["in-process MCP"] = await measure_client(c, repeat, size + repeat)
        await hm.close()
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "headroom.cli", "mcp", "--db", db, "--embedder", "hash", "--user", "team",
                  "--dedup-threshold", "1.01"],
            env=dict(os.environ),
        )  # fmt: skip
        async with Client(params, client_info=Implementation(name="bench", version="1")) as c:
            results["stdio MCP"] = await measure_client(c, repeat, size + 2 * repeat)

    rows = []
    for path, ops in results.items():
        for op, stats in ops.items():
            ratio = stats["p50_ms"] / results["direct"][op]["p50_ms"]
            rows.append([path, op, stats["p50_ms"], stats["p95_ms"], f"{ratio:.1f}x"])
    print(f"MCP overhead ({size} memories, {repeat} calls each, hash embedder)\n")
    print_table(["path", "tool", "p50 ms", "p95 ms", "p50 vs direct"], rows)
    write_json("mcp_overhead.json", {"size": size, "repeat": repeat, "results": results})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small database, few calls")
    asyncio.run(main(parser.parse_args().quick))
