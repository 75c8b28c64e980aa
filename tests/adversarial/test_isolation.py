"""No path crosses users (issue #11, fault 7): imports never link across users, history and
delete-with-history stay inside the owner's chain, and every core read path (query, search in
every mode, text_search, get, get_history, count, stats, export, the result cache, the wrapper's
and the small API's reads) returns only the asking user's memories."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import openai
import pytest

from headroom import with_memory
from headroom.cli.main import main as cli_main
from headroom.memory import (
    AccessDeniedError,
    HierarchicalMemory,
    Memory,
    MemoryConfig,
    MemoryFilter,
    ValidationError,
)
from headroom.memory.models import Memory as Record
from headroom.testing import HashEmbedder

USERS = ("alice", "bob")
pytestmark = pytest.mark.contract  # SQLite and PostgreSQL (tests/conftest.py)


@pytest.fixture
def hm(store_url: Path | str) -> Iterator[HierarchicalMemory]:
    memory = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=store_url, vector_dimension=64), embedder=HashEmbedder(64)
    )
    yield memory
    memory.sync.close()


def test_import_rejects_a_link_to_another_users_memory(hm: HierarchicalMemory) -> None:
    a = hm.sync.add("Alice works at Google", "alice")
    hostile = Record(id="b-1", content="Bob works at Acme", user_id="bob", supersedes=a.id)
    with pytest.raises(ValidationError, match=r"b-1.*another user"):
        hm.sync.import_memories([hostile])
    chained = [Record(id="b-0", content="v0", user_id="alice", superseded_by="b-2"),
               Record(id="b-2", content="v1", user_id="bob", supersedes="b-0")]  # fmt: skip
    with pytest.raises(ValidationError, match="another user"):
        hm.sync.import_memories(chained)
    assert hm.sync.count(MemoryFilter(user_id="bob")) == 0  # nothing half-imported
    assert hm.sync.get_history(a.id, user_id="alice") == [a]
    ok = Record(id="b-3", content="Bob works at Acme", user_id="bob")
    assert hm.sync.import_memories([ok, replace(ok, id="b-4", supersedes="b-3")]) == 2


def test_a_cross_user_link_already_stored_is_never_followed(hm: HierarchicalMemory) -> None:
    a = hm.sync.add("Alice works at Google", "alice")
    # A database written before the import check: bob's record claims to supersede alice's.
    b = Record(id="legacy-b", content="Bob works at Acme", user_id="bob", supersedes=a.id)
    hm._engine.store.insert([b], hm._engine._embed([b.content]))
    assert [m.id for m in hm.sync.get_history("legacy-b", user_id="bob")] == ["legacy-b"]
    assert hm.sync.delete("legacy-b", user_id="bob", include_history=True)
    assert hm.sync.get(a.id, user_id="alice") is not None  # alice's memory survives


def test_owner_checked_writes(hm: HierarchicalMemory) -> None:
    a = hm.sync.add("Alice works at Google", "alice")
    for call in (
        lambda: hm.sync.update(a.id, user_id="bob", content="hijacked"),
        lambda: hm.sync.supersede(a.id, "hijacked", user_id="bob"),
        lambda: hm.sync.delete(a.id, user_id="bob"),
        lambda: hm.sync.get_history(a.id, user_id="bob"),
    ):
        with pytest.raises(AccessDeniedError):
            call()
    assert hm.sync.get(a.id).content == "Alice works at Google"


def test_cli_commands_pass_the_owner(
    hm: HierarchicalMemory, capsys: pytest.CaptureFixture[str]
) -> None:
    a = hm.sync.add("Alice works at Google", "alice")
    b = Record(id="legacy-b", content="Bob works at Acme", user_id="bob", supersedes=a.id)
    hm._engine.store.insert([b], hm._engine._embed([b.content]))
    db = str(hm.config.db_path)
    hm.sync.close()
    base = ["--db", db, "--embedder", "hash"]
    assert cli_main(["memory", "show", a.id, "--user", "bob", *base]) == 2
    assert "another user" in capsys.readouterr().err
    assert cli_main(["memory", "history", "legacy-b", "--json", *base]) == 0
    assert [m["id"] for m in json.loads(capsys.readouterr().out)] == ["legacy-b"]
    assert cli_main(["memory", "delete", "legacy-b", "--history", *base]) == 0
    assert "deleted 1 version " in capsys.readouterr().out
    assert cli_main(["memory", "show", a.id, "--user", "alice", *base]) == 0


def _populate(hm: HierarchicalMemory) -> dict[str, list[Any]]:
    ids: dict[str, list[Any]] = {u: [] for u in USERS}
    for user in USERS:
        for i, (session, agent) in enumerate([(None, None), ("s1", None), ("s1", "a1")]):
            m = hm.sync.add(f"shared topic coffee item {i} of {user}", user, session, agent,
                            metadata={"k": "v"}, entity_refs=["coffee"])  # fmt: skip
            ids[user].append(m)
        old = ids[user][0]
        ids[user].append(hm.sync.supersede(old.id, f"shared topic coffee updated of {user}",
                                           user_id=user))  # fmt: skip
    return ids


def test_every_read_path_returns_only_the_asking_users_memories(
    hm: HierarchicalMemory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = _populate(hm)
    all_ids = {u: {m.id for m in ms} for u, ms in ids.items()}
    checks = 0

    def only(user: str, found: Any) -> None:
        nonlocal checks
        got = {getattr(x, "id", x) for x in found}
        assert got and got <= all_ids[user], (user, got - all_ids[user])
        checks += 1

    client = openai.OpenAI(api_key="test", base_url="http://127.0.0.1:9/v1")
    for user in USERS:
        other = "bob" if user == "alice" else "alice"
        for req in [(None, None), ("s1", None), ("s1", "a1")]:
            for mode in ("hybrid", "semantic", "text"):
                for repeat in range(2):  # the second call is served by the result cache
                    only(user, hm.sync.search("shared topic coffee", user, *req, top_k=50,
                                              mode=mode, include_superseded=bool(repeat)))  # fmt: skip
                    only(user, asyncio.run(hm.search("coffee", user, *req, top_k=50, mode=mode)))
            only(user, hm.sync.text_search("coffee", user, *req, top_k=50))
            only(user, hm.sync.query(MemoryFilter(user_id=user, session_id=req[0],
                                                  agent_id=req[1], include_superseded=True)))  # fmt: skip
        for f in (MemoryFilter(user_id=user, metadata={"k": "v"}),
                  MemoryFilter(user_id=user, entity_refs=["coffee"]),
                  MemoryFilter(user_id=user, ids=[m.id for ms in ids.values() for m in ms])):  # fmt: skip
            only(user, hm.sync.query(f))
            assert hm.sync.count(f) == len(hm.sync.query(f))
        for m in ids[user]:
            only(user, [hm.sync.get(m.id, user_id=user)])
            only(user, hm.sync.get_history(m.id, user_id=user))
            with pytest.raises(AccessDeniedError):
                hm.sync.get(m.id, user_id=other)
        assert hm.sync.stats(user)["total"] == 3 and hm.sync.stats(user)["superseded"] == 1
        wrapper = with_memory(client, user_id=user, memory=hm)
        only(user, wrapper.memory.search("coffee", top_k=50))
        only(user, wrapper.memory.get_all(include_superseded=True))
        assert wrapper.memory.stats()["total"] == 3
        for m in ids[other]:
            with pytest.raises(AccessDeniedError):
                wrapper.memory.get(m.id)
        easy = Memory(memory=hm)
        only(user, asyncio.run(easy.search("coffee", user_id=user, top_k=50)))
        only(user, asyncio.run(easy.get_all(user_id=user, include_superseded=True)))
    db = str(hm.config.db_path)
    hm.sync.close()
    for user in USERS:
        assert cli_main(["memory", "export", "--user", user, "--db", db, "--embedder", "hash"]) == 0
        lines = capsys.readouterr().out.splitlines()
        only(user, [json.loads(line)["id"] for line in lines])
        assert len(lines) == 4
        assert cli_main(["memory", "search", "coffee", "--user", user, "--json", "--db", db,
                         "--embedder", "hash"]) == 0  # fmt: skip
        only(user, [r["memory"]["id"] for r in json.loads(capsys.readouterr().out)])
    assert checks >= 100
