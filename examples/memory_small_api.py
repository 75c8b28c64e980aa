"""The small API: ``Memory`` (README "The small API: Memory"). No LLM involved.

Run: python examples/memory_small_api.py   (offline; creates memory.db in the working directory)
"""

import asyncio

from headroom.memory import Memory


async def main() -> None:
    async with Memory(db_path="memory.db") as memory:  # embedded default, opened on first use
        await memory.save("Project uses uv, not pip", user_id="team", agent_id="claude")
        hits = await memory.search("package manager", user_id="team", agent_id="codex")
        print([(h.memory.content, round(h.similarity, 3)) for h in hits])
        assert hits and hits[0].memory.content == "Project uses uv, not pip"  # a user-level fact

        assert await memory.search("package manager", user_id="someone-else") == []
        await memory.clear(user_id="team")
        assert await memory.get_all(user_id="team") == []


if __name__ == "__main__":
    asyncio.run(main())
