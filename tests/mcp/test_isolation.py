"""One user's tool calls can never read, change or supersede another user's memories."""

from __future__ import annotations

import uuid
from typing import Any

from headroom.mcp import McpOptions, build_server
from headroom.memory import HierarchicalMemory, MemoryFilter


def _server(hm: HierarchicalMemory, user: str) -> Any:
    return build_server(McpOptions(db="unused.db", embedder="hash", user=user), memory=hm)


async def test_a_user_cannot_reach_another_users_memory(
    shared_hm: HierarchicalMemory, connect: Any, ok: Any, error_text: Any
) -> None:
    alice, bob = _server(shared_hm, "alice"), _server(shared_hm, "bob")
    async with connect(alice, "claude") as a:
        secret = ok(await a.call_tool("remember", {"content": "Alice's deploy key is in vault"}))
    sid = secret["memory"]["id"]
    unknown = str(uuid.uuid4())

    async with connect(bob, "claude") as b:
        # Reads: nothing of alice's, whatever the query or filter.
        hits = ok(await b.call_tool("recall", {"query": "Alice's deploy key is in vault"}))
        assert hits["results"] == []
        listed = ok(await b.call_tool("list_memories", {"include_superseded": True}))
        assert listed["total"] == 0
        page = await b.read_resource("headroom://memories")
        assert "vault" not in page.contents[0].text  # type: ignore[union-attr]
        # Guessing alice's id answers exactly like an unknown id (no existence oracle).
        attempts: list[tuple[str, dict[str, Any]]] = [
            ("history", {}),
            ("forget", {}),
            ("forget", {"include_history": True}),
            ("update", {"content": "Bob owns this now"}),
            ("update", {"content": "typo", "keep_history": False}),
            ("update", {"importance": 0.1}),
        ]
        for tool, args in attempts:
            mine = error_text(await b.call_tool(tool, {"id": sid, **args}))
            other = error_text(await b.call_tool(tool, {"id": unknown, **args}))
            assert mine == other.replace(unknown, sid), (tool, mine, other)
            assert "no memory with id" in mine and "another user" not in mine
        stolen = error_text(
            await b.call_tool("remember", {"content": "Bob's key", "supersedes": sid})
        )
        assert "no memory with id" in stolen
        # A user argument is not part of any tool: passing one changes nothing.
        sneaky = ok(
            await b.call_tool(
                "recall", {"query": "deploy key vault", "user_id": "alice", "user": "alice"}
            )
        )
        assert sneaky["results"] == []
        # Wildcards and lookalikes of ids are just unknown ids.
        for guess in ["%", "*", sid.upper(), sid[:8], f"{sid} ", "' OR '1'='1"]:
            assert "no memory with id" in error_text(await b.call_tool("history", {"id": guess}))

    # Alice's memory is untouched, and bob's attempts stored nothing for alice.
    stored = await shared_hm.query(MemoryFilter(user_id="alice", include_superseded=True))
    assert [(m.id, m.content, m.is_current) for m in stored] == [
        (sid, "Alice's deploy key is in vault", True)
    ]
    assert await shared_hm.query(MemoryFilter(user_id="bob")) == []


async def test_each_user_sees_only_their_own_facts(
    shared_hm: HierarchicalMemory, connect: Any, ok: Any
) -> None:
    for user in ("alice", "bob"):
        async with connect(_server(shared_hm, user), "codex") as client:
            ok(await client.call_tool("remember", {"content": f"Project of {user} uses uv"}))
    for user, other in (("alice", "bob"), ("bob", "alice")):
        async with connect(_server(shared_hm, user), "gemini-cli") as client:
            hits = ok(await client.call_tool("recall", {"query": "project uses uv", "top_k": 10}))
            contents = [h["memory"]["content"] for h in hits["results"]]
            assert contents == [f"Project of {user} uses uv"], contents
            merged = ok(
                await client.call_tool("remember", {"content": f"Project of {other} uses uv"})
            )
            # Near-duplicate detection never merges into another user's memory.
            assert merged["action"] == "stored"
