"""How ``headroom mcp`` opens the memory and picks the user from its options."""

from __future__ import annotations

import asyncio
from pathlib import Path

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
