"""The engine tour from the README: add, supersede, point-in-time query, history, search.

Run: python examples/engine_tour.py   (offline; creates memory.db in the working directory)
"""

import asyncio
from datetime import UTC, datetime, timedelta

from headroom.memory import HierarchicalMemory, MemoryCategory, MemoryConfig, MemoryFilter


async def main() -> None:
    memory = await HierarchicalMemory.create(MemoryConfig(db_path="memory.db"))
    try:
        orig = await memory.add(
            content="User works at Google",
            user_id="alice",
            category=MemoryCategory.FACT,
            valid_from=datetime.now(UTC) - timedelta(days=30),
        )
        t = datetime.now(UTC) - timedelta(days=1)  # a moment when Google was still current
        new = await memory.supersede(
            old_memory_id=orig.id, new_content="User now works at Anthropic"
        )
        current = await memory.query(MemoryFilter(user_id="alice"))  # current facts only
        as_of_t = await memory.query(
            MemoryFilter(user_id="alice", valid_at=t, include_superseded=True)
        )
        history = await memory.get_history(new.id)  # oldest first
        results = await memory.search("where does the user work", user_id="alice", top_k=5)

        print("current:", [m.content for m in current])
        print("as of yesterday:", [m.content for m in as_of_t])
        print("history:", [m.content for m in history])
        print("best match:", results[0].memory.content, round(results[0].similarity, 3))
        assert [m.content for m in current] == ["User now works at Anthropic"]
        assert [m.content for m in as_of_t] == ["User works at Google"]
        assert [m.id for m in history] == [orig.id, new.id]
        assert results[0].memory.id == new.id
    finally:
        await memory.close()


if __name__ == "__main__":
    asyncio.run(main())
