"""HierarchicalMemory behaviour on a real SQLite file and FAISS, with the fast fake embedder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from headroom.memory import (
    AccessDeniedError,
    ClosedError,
    HeadroomError,
    HierarchicalMemory,
    MemoryCategory,
    MemoryConfig,
    MemoryFilter,
    MemoryNotFoundError,
    ScopeLevel,
    SupersededError,
    ValidationError,
)
from headroom.testing import HashEmbedder

S = HierarchicalMemory
# Every test here runs on SQLite and PostgreSQL (tests/conftest.py).
pytestmark = pytest.mark.contract


def contents(items: list) -> list[str]:
    return [getattr(x, "content", None) for x in items]


async def test_add_get_and_defaults(hm: S) -> None:
    m = await hm.add("User likes tea", "alice")
    assert m.scope_level is ScopeLevel.USER and m.category is MemoryCategory.FACT
    assert m.valid_from.tzinfo is not None and m.is_current
    got = await hm.get(m.id)
    assert got is not None and got.content == "User likes tea" and got.id == m.id
    assert await hm.get("no-such-id") is None


async def test_scope_is_derived_from_narrowest_id(hm: S) -> None:
    assert (await hm.add("a", "u", "s")).scope_level is ScopeLevel.SESSION
    assert (await hm.add("b", "u", "s", "ag")).scope_level is ScopeLevel.AGENT
    assert (await hm.add("c", "u", "s", "ag", "t")).scope_level is ScopeLevel.TURN
    explicit = await hm.add("d", "u", "s", "ag", scope="user")
    assert explicit.scope_level is ScopeLevel.USER and explicit.session_id == "s"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"content": "", "user_id": "u"},
        {"content": "   ", "user_id": "u"},
        {"content": "x", "user_id": ""},
        {"content": "x", "user_id": "u", "importance": 1.5},
        {"content": "x", "user_id": "u", "importance": -0.1},
        {"content": "x", "user_id": "u", "importance": float("nan")},
        {"content": "x", "user_id": "u", "category": "nonsense"},
        {"content": "x", "user_id": "u", "valid_from": datetime(2024, 1, 1)},
        {"content": "x", "user_id": "u", "metadata": {"k": object()}},
        {"content": "x", "user_id": "u", "scope": "session"},
        {"content": 5, "user_id": "u"},
    ],
)
async def test_bad_input_raises_typed_error(hm: S, kwargs: dict) -> None:
    with pytest.raises(ValidationError):
        await hm.add(**kwargs)
    assert await hm.count(MemoryFilter()) == 0


async def test_add_batch_is_all_or_nothing(hm: S) -> None:
    with pytest.raises(ValidationError, match="item 1"):
        await hm.add_batch([{"content": "ok", "user_id": "u"}, {"content": "", "user_id": "u"}])
    assert await hm.count(MemoryFilter()) == 0
    stored = await hm.add_batch([{"content": f"fact {i}", "user_id": "u"} for i in range(5)])
    assert len(stored) == 5 and await hm.count(MemoryFilter(user_id="u")) == 5
    assert len({m.id for m in stored}) == 5


async def test_valid_from_keeps_imported_dates(hm: S) -> None:
    when = datetime(2023, 5, 8, 13, 56, tzinfo=timezone(timedelta(hours=2)))
    m = await hm.add("Went hiking", "u", valid_from=when)
    assert m.valid_from == when
    got = await hm.get(m.id)
    assert got is not None and got.valid_from == when and got.valid_from.tzinfo is not None


async def test_other_users_memory_is_denied(hm: S) -> None:
    m = await hm.add("alice secret", "alice")
    with pytest.raises(AccessDeniedError):
        await hm.get(m.id, user_id="bob")
    with pytest.raises(AccessDeniedError):
        await hm.update(m.id, user_id="bob", content="hacked")
    with pytest.raises(AccessDeniedError):
        await hm.delete(m.id, user_id="bob")
    with pytest.raises(AccessDeniedError):
        await hm.supersede(m.id, "hacked", user_id="bob")
    assert (await hm.get(m.id)).content == "alice secret"  # type: ignore[union-attr]


async def test_unknown_ids_raise(hm: S) -> None:
    with pytest.raises(MemoryNotFoundError):
        await hm.update("missing", content="x")
    with pytest.raises(MemoryNotFoundError):
        await hm.supersede("missing", "x")
    with pytest.raises(MemoryNotFoundError):
        await hm.get_history("missing")
    assert await hm.delete("missing") is False
    assert issubclass(MemoryNotFoundError, HeadroomError)


async def test_supersede_chain_and_temporal_queries(hm: S) -> None:
    orig = await hm.add("User works at Google", "alice", category=MemoryCategory.FACT)
    t_before = datetime.now(UTC)
    new = await hm.supersede(old_memory_id=orig.id, new_content="User now works at Anthropic")
    assert new.supersedes == orig.id and new.is_current
    old = await hm.get(orig.id)
    assert old is not None and old.superseded_by == new.id and old.valid_until == new.valid_from
    assert not old.is_current
    assert contents(await hm.query(MemoryFilter(user_id="alice"))) == [
        "User now works at Anthropic"
    ]
    both = await hm.query(MemoryFilter(user_id="alice", include_superseded=True))
    assert sorted(contents(both)) == ["User now works at Anthropic", "User works at Google"]
    chain = await hm.get_history(new.id)
    assert contents(chain) == ["User works at Google", "User now works at Anthropic"]
    assert [m.is_current for m in chain] == [False, True]
    assert contents(await hm.get_history(orig.id)) == contents(chain)
    at_before = await hm.query(
        MemoryFilter(user_id="alice", valid_at=t_before, include_superseded=True)
    )
    assert contents(at_before) == ["User works at Google"]
    at_now = await hm.query(
        MemoryFilter(user_id="alice", valid_at=datetime.now(UTC), include_superseded=True)
    )
    assert contents(at_now) == ["User now works at Anthropic"]
    with pytest.raises(SupersededError):
        await hm.supersede(orig.id, "again")
    newest = await hm.supersede(new.id, "User works at OpenAI")
    assert len(await hm.get_history(orig.id)) == 3 and newest.supersedes == new.id


async def test_superseded_excluded_from_search_unless_asked(hm: S) -> None:
    orig = await hm.add("User works at Google", "alice")
    await hm.supersede(orig.id, "User now works at Anthropic")
    for mode in ("hybrid", "semantic", "text"):
        hits = await hm.search("works at Google", "alice", mode=mode)
        assert "User works at Google" not in contents(hits)
        hits = await hm.search("works at Google", "alice", mode=mode, include_superseded=True)
        assert "User works at Google" in contents(hits)


async def test_update_in_place_reembeds(hm: S) -> None:
    m = await hm.add("User likes cats", "u")
    updated = await hm.update(
        m.id, content="User likes dogs", importance=0.9, category="preference"
    )
    assert updated.id == m.id and updated.importance == 0.9
    assert updated.category is MemoryCategory.PREFERENCE
    hits = await hm.search("dogs", "u", mode="semantic", top_k=1)
    assert hits[0].memory.content == "User likes dogs"
    assert contents(await hm.search("cats", "u", mode="text")) == []


async def test_delete_removes_from_all_indexes(hm: S) -> None:
    m = await hm.add("User plays the violin", "u")
    assert await hm.delete(m.id) is True
    assert await hm.get(m.id) is None
    for mode in ("hybrid", "semantic", "text"):
        assert await hm.search("violin", "u", mode=mode) == []


async def test_delete_with_history(hm: S) -> None:
    a = await hm.add("v1", "u")
    b = await hm.supersede(a.id, "v2")
    assert await hm.delete(b.id, include_history=True)
    assert await hm.count(MemoryFilter(user_id="u", include_superseded=True)) == 0


async def test_scope_visibility_in_search(hm: S) -> None:
    await hm.add("pizza user level", "u")
    await hm.add("pizza session one", "u", "s1")
    await hm.add("pizza session two", "u", "s2")
    await hm.add("pizza agent a in s1", "u", "s1", "a")
    await hm.add("pizza agent b in s1", "u", "s1", "b")
    await hm.add("pizza turn t1", "u", "s1", "a", "t1")
    await hm.add("pizza other user", "v")

    async def seen(*ids: str | None) -> set[str]:
        return set(contents(await hm.search("pizza", "u", *ids, top_k=50)))

    assert await seen() == {
        "pizza user level", "pizza session one", "pizza session two", "pizza agent a in s1",
        "pizza agent b in s1", "pizza turn t1",
    }  # fmt: skip
    assert await seen("s1") == {"pizza user level", "pizza session one"}
    assert await seen("s1", "a") == {"pizza user level", "pizza session one", "pizza agent a in s1"}
    assert await seen("s1", "a", "t1") == {
        "pizza user level", "pizza session one", "pizza agent a in s1", "pizza turn t1",
    }  # fmt: skip
    assert await seen("s2", "a") == {"pizza user level", "pizza session two"}


async def test_bubbling_promotes_once_and_acts_on_promoted(store_url) -> None:  # type: ignore[no-untyped-def]
    cfg = MemoryConfig(
        db_path=store_url, vector_dimension=64, auto_bubble=True, bubble_threshold=0.75
    )
    async with await HierarchicalMemory.create(cfg, embedder=HashEmbedder(64)) as hm:
        hi = await hm.add("User is allergic to peanuts", "u", "s1", importance=0.9)
        lo = await hm.add("User is eating peanuts today", "u", "s1", importance=0.5)
        assert hi.scope_level is ScopeLevel.USER and hi.promoted_from is ScopeLevel.SESSION
        assert hi.session_id == "s1"
        assert lo.scope_level is ScopeLevel.SESSION and lo.promoted_from is None
        other_session = await hm.search("peanuts", "u", "s2", top_k=10)
        assert contents(other_session) == ["User is allergic to peanuts"]
        same_session = await hm.search("peanuts", "u", "s1", top_k=10)
        assert sorted(contents(same_session)) == sorted([hi.content, lo.content])
        newer = await hm.supersede(hi.id, "User is no longer allergic to peanuts")
        assert newer.scope_level is ScopeLevel.USER
        assert contents(await hm.search("allergic", "u", "s2", mode="text")) == [newer.content]
        await hm.delete(newer.id)
        assert await hm.search("allergic", "u", "s2", mode="text") == []


@pytest.mark.parametrize(
    "query",
    ['"', "'", 'AND OR NOT "unbalanced', "NEAR(a b)", "col:value", "*", "^start", "🙂🚀", "", "   ",
     "a" * 5000, "DROP TABLE memories; --", "\x00", "e\u0301lan"],
)  # fmt: skip
async def test_text_search_accepts_any_string(hm: S, query: str) -> None:
    await hm.add("User loves rock climbing 🙂", "u")
    for mode in ("text", "hybrid"):
        assert isinstance(await hm.search(query, "u", mode=mode), list)


async def test_text_search_finds_stemmed_terms(hm: S) -> None:
    await hm.add("User is running a marathon in April", "u")
    await hm.add("User prefers tea", "u")
    hits = await hm.text_search("runs marathons", "u")
    assert contents(hits) == ["User is running a marathon in April"]


async def test_search_filters(hm: S) -> None:
    await hm.add(
        "coffee preference", "u", category="preference", importance=0.9, metadata={"src": "chat"}
    )
    await hm.add("coffee fact", "u", category="fact", importance=0.2, metadata={"src": "import"})
    assert contents(await hm.search("coffee", "u", categories=["preference"])) == [
        "coffee preference"
    ]
    assert contents(await hm.search("coffee", "u", min_importance=0.5)) == ["coffee preference"]
    assert contents(await hm.search("coffee", "u", metadata={"src": "import"})) == ["coffee fact"]
    assert len(await hm.search("coffee", "u", top_k=1)) == 1
    assert await hm.search("coffee", "u", min_similarity=1.01) == []
    with pytest.raises(ValidationError):
        await hm.search("coffee", "")
    with pytest.raises(ValidationError):
        await hm.search("coffee", "u", top_k=0)


async def test_search_results_expose_similarity_and_memory(hm: S) -> None:
    await hm.add("User prefers functional programming", "alice", "sess-123", "code-assistant",
                 category=MemoryCategory.PREFERENCE, importance=0.9)  # fmt: skip
    results = await hm.search("functional programming", "alice", top_k=5)
    assert results and -1.0 <= results[0].similarity <= 1.0
    assert results[0].memory.content == results[0].content
    assert results[0].importance == 0.9


async def test_query_count_and_order(hm: S) -> None:
    for i in range(5):
        await hm.add(f"fact {i}", "u", importance=i / 10)
    assert await hm.count(MemoryFilter(user_id="u")) == 5
    page = await hm.query(MemoryFilter(user_id="u", limit=2, offset=1))
    assert contents(page) == ["fact 1", "fact 2"]
    top = await hm.query(MemoryFilter(user_id="u", order_by="-importance", limit=1))
    assert contents(top) == ["fact 4"]
    with pytest.raises(ValidationError):
        await hm.query(MemoryFilter(order_by="nonsense"))


async def test_clear_scope(hm: S) -> None:
    await hm.add("user level", "u", "s1", scope="user")
    await hm.add("session one", "u", "s1")
    await hm.add("agent in s1", "u", "s1", "a")
    await hm.add("session two", "u", "s2")
    await hm.add("bob", "bob")
    assert await hm.clear_scope("u", "s1") == 2
    left = contents(await hm.query(MemoryFilter(user_id="u")))
    assert sorted(left) == ["session two", "user level"]
    assert await hm.clear_scope("u") == 2
    assert await hm.count(MemoryFilter(user_id="bob")) == 1


async def test_stats(hm: S) -> None:
    a = await hm.add("a", "u", category="preference")
    await hm.add("b", "u", "s1")
    await hm.add("c", "v")
    await hm.supersede(a.id, "a2")
    stats = await hm.stats("u")
    assert stats["total"] == 2 and stats["superseded"] == 1
    assert stats["categories"] == {"preference": 1, "fact": 1}
    assert stats["scope_levels"]["user"] == 1 and stats["scope_levels"]["session"] == 1
    assert stats["db_size_bytes"] > 0
    assert (await hm.stats())["total"] == 3


async def test_cache_hands_out_copies_and_invalidates(hm: S) -> None:
    m = await hm.add("User likes jazz", "u")
    first = await hm.get(m.id)
    assert first is not None
    first.content = "mutated by caller"
    first.metadata["x"] = 1
    again = await hm.get(m.id)
    assert again is not None and again.content == "User likes jazz" and again.metadata == {}
    hits = await hm.search("jazz", "u")
    hits[0].memory.content = "mutated"
    assert (await hm.search("jazz", "u"))[0].content == "User likes jazz"
    await hm.update(m.id, content="User likes blues")
    assert (await hm.get(m.id)).content == "User likes blues"  # type: ignore[union-attr]
    assert contents(await hm.search("blues", "u", mode="text")) == ["User likes blues"]


async def test_closed_memory_raises(hash_config: MemoryConfig) -> None:
    memory = await HierarchicalMemory.create(hash_config, embedder=HashEmbedder(64))
    await memory.close()
    await memory.close()  # idempotent
    with pytest.raises(ClosedError):
        await memory.add("x", "u")


def test_sync_facade_inside_running_loop(hm: S) -> None:
    import asyncio

    async def inside() -> list[str]:
        hm.sync.add("User likes chess", "u")
        return contents(hm.sync.search("chess", "u"))

    assert asyncio.run(inside()) == ["User likes chess"]
