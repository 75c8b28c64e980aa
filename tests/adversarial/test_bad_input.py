"""Bad input over every public entry point: a typed HeadroomError naming the argument, or a
documented normalisation. Never a raw TypeError / OverflowError / UnicodeEncodeError / database
error (issue #11, fault 1 and 2)."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openai
import pytest

from headroom import with_memory
from headroom.cli.main import main as cli_main
from headroom.inline import InlineMemory
from headroom.inline.extraction import StreamingMemoryStripper, split_memory_block
from headroom.memory import (
    HeadroomError,
    HierarchicalMemory,
    Memory,
    MemoryConfig,
    MemoryFilter,
)
from headroom.memory.models import Memory as Record
from headroom.testing import HashEmbedder

SUR = "u\ud800"  # a lone surrogate: not valid Unicode, cannot be encoded
NAIVE = datetime(2024, 1, 1)
NAN = float("nan")
DEEP: dict[str, Any] = {}
_cur = DEEP
for _ in range(100):
    _cur["k"] = {}
    _cur = _cur["k"]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    db = tmp_path_factory.mktemp("bad") / "m.db"
    hm = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=db, vector_dimension=64), embedder=HashEmbedder(64)
    )
    alice = hm.sync.add("Alice likes green tea", "alice", metadata={"k": 1})
    bob = hm.sync.add("Bob likes coffee", "bob")
    client = openai.OpenAI(api_key="test", base_url="http://127.0.0.1:9/v1")
    wrapper = with_memory(client, user_id="alice", memory=hm)
    easy = Memory(memory=hm)
    try:
        yield {"hm": hm, "db": db, "alice": alice, "bob": bob, "w": wrapper, "easy": easy}
    finally:
        hm.sync.close()


def arun(coro: Any) -> Any:
    return asyncio.run(coro)


Case = tuple[str, Callable[[dict[str, Any]], Any], str]
CASES: list[Case] = []


def case(name: str, expect: str) -> Callable[[Callable[[dict[str, Any]], Any]], None]:
    """Register a case; ``expect`` is the argument name the error message must contain."""

    def register(fn: Callable[[dict[str, Any]], Any]) -> None:
        CASES.append((name, fn, expect))

    return register


def both(name: str, expect: str, call: Callable[[Any, dict[str, Any]], Any]) -> None:
    """The same call through the async API (awaited) and through ``.sync``."""
    CASES.append((f"async-{name}", lambda e: arun(_maybe(call(e["hm"], e))), expect))
    CASES.append((f"sync-{name}", lambda e: call(e["hm"].sync, e), expect))


async def _maybe(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


# -- add -------------------------------------------------------------------------------------------
for _name, _kwargs, _expect in [
    ("content-surrogate", {"content": "tea" + SUR}, "content"),
    ("content-int", {"content": 5}, "content"),
    ("content-none", {"content": None}, "content"),
    ("content-empty", {"content": "  "}, "content"),
    ("content-nul", {"content": "a\x00b"}, "content"),
    ("content-huge", {"content": "x" * 100_001}, "content"),
    ("user-surrogate", {"user_id": SUR}, "user_id"),
    ("user-empty", {"user_id": ""}, "user_id"),
    ("user-none", {"user_id": None}, "user_id"),
    ("user-int", {"user_id": 7}, "user_id"),
    ("user-long", {"user_id": "u" * 300}, "user_id"),
    ("session-surrogate", {"session_id": SUR}, "session_id"),
    ("session-int", {"session_id": 3}, "session_id"),
    ("agent-surrogate", {"session_id": "s", "agent_id": SUR}, "agent_id"),
    ("turn-surrogate", {"session_id": "s", "turn_id": SUR}, "turn_id"),
    ("agent-without-session", {"agent_id": "a1"}, "session_id"),
    ("turn-without-session", {"turn_id": "t1"}, "session_id"),
    ("scope-agent-without-session", {"agent_id": "a1", "scope": "agent"}, "session_id"),
    ("scope-session-without-id", {"scope": "session"}, "session_id"),
    ("scope-bogus", {"scope": "planet"}, "scope"),
    ("scope-int", {"scope": 3}, "scope"),
    ("importance-str", {"importance": "x"}, "importance"),
    ("importance-nan", {"importance": NAN}, "importance"),
    ("importance-big", {"importance": 2}, "importance"),
    ("importance-bool", {"importance": True}, "importance"),
    ("importance-hugeint", {"importance": 10**400}, "importance"),
    ("category-bogus", {"category": "planet"}, "category"),
    ("category-int", {"category": 5}, "category"),
    ("metadata-nan", {"metadata": {"score": NAN}}, "metadata"),
    ("metadata-inf", {"metadata": {"score": math.inf}}, "metadata"),
    ("metadata-nested-nan", {"metadata": {"a": [1, {"b": -math.inf}]}}, "metadata"),
    ("metadata-set", {"metadata": {"s": {1, 2}}}, "metadata"),
    ("metadata-huge-int", {"metadata": {"n": 10**30}}, "metadata"),
    ("metadata-object", {"metadata": {"o": object()}}, "metadata"),
    ("metadata-bytes", {"metadata": {"b": b"x"}}, "metadata"),
    ("metadata-datetime", {"metadata": {"d": datetime.now(UTC)}}, "metadata"),
    ("metadata-list", {"metadata": [("a", 1)]}, "metadata"),
    ("metadata-int-key", {"metadata": {1: "x"}}, "metadata"),
    ("metadata-surrogate-value", {"metadata": {"k": SUR}}, "metadata"),
    ("metadata-surrogate-key", {"metadata": {SUR: 1}}, "metadata"),
    ("metadata-deep", {"metadata": DEEP}, "metadata"),
    ("entity-refs-str", {"entity_refs": "alice"}, "entity_refs"),
    ("entity-refs-int-item", {"entity_refs": [1]}, "entity_refs"),
    ("entity-refs-surrogate", {"entity_refs": [SUR]}, "entity_refs"),
    ("entity-refs-empty-item", {"entity_refs": [" "]}, "entity_refs"),
    ("valid-from-naive", {"valid_from": NAIVE}, "valid_from"),
    ("valid-from-str", {"valid_from": "yesterday"}, "valid_from"),
]:

    def _add(m: Any, e: dict[str, Any], kw: dict[str, Any] = _kwargs) -> Any:
        args = {"content": "a fact", "user_id": "alice"} | kw
        return m.add(args.pop("content"), args.pop("user_id"), **args)

    both(f"add-{_name}", _expect, _add)

case("sync-add-unknown-kwarg", "bogus")(lambda e: e["hm"].sync.add("x", "alice", bogus=1))
case("async-remember-unknown-kwarg", "bogus")(
    lambda e: arun(e["hm"].remember("x", "alice", bogus=1))
)
both("add-batch-str", "add_batch", lambda m, e: m.add_batch("text"))
both("add-batch-int-item", "item 0", lambda m, e: m.add_batch([5]))
both("add-batch-unknown-field", "bogus", lambda m, e: m.add_batch([{"content": "x", "bogus": 1}]))
both("add-batch-nan", "metadata", lambda m, e: m.add_batch(
    [{"content": "x", "user_id": "a", "metadata": {"x": NAN}}]))  # fmt: skip

# -- search / text_search --------------------------------------------------------------------------
for _name, _kwargs, _expect in [
    ("query-surrogate", {"query": "tea" + SUR}, "query"),
    ("query-none", {"query": None}, "query"),
    ("query-int", {"query": 5}, "query"),
    ("user-surrogate", {"user_id": SUR}, "user_id"),
    ("user-none", {"user_id": None}, "user_id"),
    ("user-empty", {"user_id": ""}, "user_id"),
    ("session-int", {"session_id": 5}, "session_id"),
    ("top-k-huge", {"top_k": 10**30}, "top_k"),
    ("top-k-float", {"top_k": 5.5}, "top_k"),
    ("top-k-str", {"top_k": "5"}, "top_k"),
    ("top-k-none", {"top_k": None}, "top_k"),
    ("top-k-zero", {"top_k": 0}, "top_k"),
    ("top-k-negative", {"top_k": -1}, "top_k"),
    ("top-k-bool", {"top_k": True}, "top_k"),
    ("min-similarity-str", {"min_similarity": "x"}, "min_similarity"),
    ("min-similarity-nan", {"min_similarity": NAN}, "min_similarity"),
    ("min-similarity-none", {"min_similarity": None}, "min_similarity"),
    ("valid-at-naive", {"valid_at": NAIVE}, "valid_at"),
    ("valid-at-str", {"valid_at": "yesterday"}, "valid_at"),
    ("categories-bogus", {"categories": ["planet"]}, "category"),
    ("categories-str", {"categories": "fact"}, "categories"),
    ("min-importance-str", {"min_importance": "x"}, "min_importance"),
    ("min-importance-nan", {"min_importance": NAN}, "min_importance"),
    ("include-superseded-str", {"include_superseded": "yes"}, "include_superseded"),
    ("metadata-nan", {"metadata": {"k": NAN}}, "metadata"),
    ("metadata-list-value", {"metadata": {"k": [1]}}, "metadata"),
    ("metadata-huge-int", {"metadata": {"k": 10**30}}, "metadata"),
    ("metadata-not-dict", {"metadata": 5}, "metadata"),
    ("entity-refs-int", {"entity_refs": 5}, "entity_refs"),
    ("mode-bogus", {"mode": "fuzzy"}, "mode"),
]:

    def _search(m: Any, e: dict[str, Any], kw: dict[str, Any] = _kwargs) -> Any:
        args = {"query": "tea", "user_id": "alice"} | kw
        return m.search(args.pop("query"), args.pop("user_id"), **args)

    both(f"search-{_name}", _expect, _search)

both("text-search-query-surrogate", "query", lambda m, e: m.text_search(SUR, "alice"))
both("text-search-top-k-huge", "top_k", lambda m, e: m.text_search("tea", "alice", top_k=10**30))
both("text-search-unknown-filter", "bogus", lambda m, e: m.text_search("tea", "alice", bogus=1))
case("sync-search-unknown-filter", "bogus")(lambda e: e["hm"].sync.search("t", "alice", bogus=1))
case("async-recall-unknown-kwarg", "bogus")(lambda e: arun(e["hm"].recall("t", "alice", bogus=1)))

# -- query / count / MemoryFilter ------------------------------------------------------------------
for _name, _build, _expect in [
    ("limit-huge", lambda: MemoryFilter(user_id="alice", limit=10**30), "limit"),
    ("limit-negative", lambda: MemoryFilter(limit=-1), "limit"),
    ("limit-float", lambda: MemoryFilter(limit=5.5), "limit"),
    ("offset-negative", lambda: MemoryFilter(offset=-1), "offset"),
    ("offset-str", lambda: MemoryFilter(offset="2"), "offset"),
    ("valid-at-naive", lambda: MemoryFilter(valid_at=NAIVE), "valid_at"),
    ("valid-at-str", lambda: MemoryFilter(valid_at="yesterday"), "valid_at"),
    ("created-after-str", lambda: MemoryFilter(created_after="x"), "created_after"),
    ("user-int", lambda: MemoryFilter(user_id=5), "user_id"),
    ("user-surrogate", lambda: MemoryFilter(user_id=SUR), "user_id"),
    ("categories-bogus", lambda: MemoryFilter(categories=["planet"]), "category"),
    ("scope-levels-bogus", lambda: MemoryFilter(scope_levels=["planet"]), "scope"),
    ("order-by-bogus", lambda: MemoryFilter(order_by="nonsense"), "order_by"),
    ("metadata-nan", lambda: MemoryFilter(metadata={"k": NAN}), "metadata"),
    ("ids-str", lambda: MemoryFilter(ids="abc"), "ids"),
    ("ids-int-item", lambda: MemoryFilter(ids=[5]), "ids"),
    ("min-importance-str", lambda: MemoryFilter(min_importance="x"), "min_importance"),
    ("exact-scope-str", lambda: MemoryFilter(exact_scope="yes"), "exact_scope"),
]:
    case(f"filter-{_name}", _expect)(lambda e, b=_build: b())


def _mutated(**changes: Any) -> MemoryFilter:
    f = MemoryFilter(user_id="alice")
    for key, value in changes.items():
        setattr(f, key, value)  # changed after construction: checked again on use
    return f


both("query-str", "filter", lambda m, e: m.query("alice"))
both("query-int", "filter", lambda m, e: m.query(5))
both("query-mutated-limit", "limit", lambda m, e: m.query(_mutated(limit=10**30)))
both("query-mutated-valid-at", "valid_at", lambda m, e: m.query(_mutated(valid_at="yesterday")))
both("count-str", "filter", lambda m, e: m.count("alice"))
both("count-mutated-user", "user_id", lambda m, e: m.count(_mutated(user_id=SUR)))

# -- get / history / update / delete / supersede / clear / stats -----------------------------------
both("get-id-none", "memory_id", lambda m, e: m.get(None))
both("get-id-int", "memory_id", lambda m, e: m.get(5))
both("get-id-surrogate", "memory_id", lambda m, e: m.get(SUR))
both("get-user-int", "user_id", lambda m, e: m.get(e["alice"].id, user_id=5))
both("get-other-user", "another user", lambda m, e: m.get(e["alice"].id, user_id="bob"))
both("history-id-int", "memory_id", lambda m, e: m.get_history(5))
both("history-id-missing", "no memory", lambda m, e: m.get_history("missing"))
both("history-user-surrogate", "user_id", lambda m, e: m.get_history(e["alice"].id, user_id=SUR))
case("sync-update-unknown-kwarg", "bogus")(lambda e: e["hm"].sync.update(e["alice"].id, bogus=1))
both("update-importance-str", "importance",
     lambda m, e: m.update(e["alice"].id, importance="x"))  # fmt: skip
both("update-metadata-nan", "metadata", lambda m, e: m.update(e["alice"].id, metadata={"x": NAN}))
both("update-content-empty", "content", lambda m, e: m.update(e["alice"].id, content=" "))
both("update-content-surrogate", "content", lambda m, e: m.update(e["alice"].id, content=SUR))
both("update-category-bogus", "category", lambda m, e: m.update(e["alice"].id, category="x"))
both("update-missing", "no memory", lambda m, e: m.update("missing", importance=0.1))
both("update-other-user", "another user",
     lambda m, e: m.update(e["alice"].id, user_id="bob", importance=0.1))  # fmt: skip
both("delete-id-int", "memory_id", lambda m, e: m.delete(5))
both("delete-user-surrogate", "user_id", lambda m, e: m.delete(e["alice"].id, user_id=SUR))
both("delete-include-history-str", "include_history",
     lambda m, e: m.delete(e["alice"].id, user_id="alice", include_history="yes"))  # fmt: skip
both("supersede-content-empty", "content", lambda m, e: m.supersede(e["alice"].id, ""))
both("supersede-content-surrogate", "content", lambda m, e: m.supersede(e["alice"].id, SUR))
both("supersede-valid-from-naive", "valid_from",
     lambda m, e: m.supersede(e["alice"].id, "new", valid_from=NAIVE))  # fmt: skip
both("supersede-metadata-nan", "metadata",
     lambda m, e: m.supersede(e["alice"].id, "new", metadata={"x": NAN}))  # fmt: skip
both("supersede-missing", "no memory", lambda m, e: m.supersede("missing", "new"))
case("sync-supersede-unknown-kwarg", "bogus")(
    lambda e: e["hm"].sync.supersede(e["alice"].id, "new", bogus=1)
)
both("clear-scope-user-none", "user_id", lambda m, e: m.clear_scope(None))
both("clear-scope-session-int", "session_id", lambda m, e: m.clear_scope("alice", 5))
both("stats-user-int", "user_id", lambda m, e: m.stats(5))
both("stats-user-surrogate", "user_id", lambda m, e: m.stats(SUR))

# -- import_memories --------------------------------------------------------------------------------


def _record(e: dict[str, Any], **changes: Any) -> Record:
    base = Record(id="imp-1", content="imported fact", user_id="carol")
    return replace(base, **changes)


both("import-str", "import_memories", lambda m, e: m.import_memories("x"))
both("import-int-item", "import item 0", lambda m, e: m.import_memories([5]))
both("import-nan-metadata", "metadata",
     lambda m, e: m.import_memories([_record(e, metadata={"x": NAN})]))  # fmt: skip
both("import-naive-date", "valid_from",
     lambda m, e: m.import_memories([_record(e, valid_from=NAIVE)]))  # fmt: skip
both("import-surrogate", "content", lambda m, e: m.import_memories([_record(e, content=SUR)]))
both("import-importance-nan", "importance",
     lambda m, e: m.import_memories([_record(e, importance=NAN)]))  # fmt: skip
both("import-agent-without-session", "session_id",
     lambda m, e: m.import_memories([_record(e, agent_id="a", scope_level="agent")]))  # fmt: skip
both("import-cross-user-link", "another user",
     lambda m, e: m.import_memories([_record(e, supersedes=e["alice"].id)]))  # fmt: skip

# -- Memory (small API) ----------------------------------------------------------------------------
case("easy-save-content-int", "content")(lambda e: arun(e["easy"].save(5, user_id="alice")))
case("easy-save-content-surrogate", "content")(lambda e: arun(e["easy"].save(SUR, user_id="alice")))
case("easy-save-user-none", "user_id")(lambda e: arun(e["easy"].save("x", user_id=None)))
case("easy-save-metadata-nan", "metadata")(
    lambda e: arun(e["easy"].save("x", user_id="alice", metadata={"s": NAN}))
)
case("easy-save-metadata-list", "metadata")(
    lambda e: arun(e["easy"].save("x", user_id="alice", metadata=[("a", 1)]))
)
case("easy-save-importance-str", "importance")(
    lambda e: arun(e["easy"].save("x fact", user_id="alice", importance="x"))
)
case("easy-search-top-k-str", "top_k")(
    lambda e: arun(e["easy"].search("tea", user_id="alice", top_k="5"))
)
case("easy-search-query-surrogate", "query")(lambda e: arun(e["easy"].search(SUR, user_id="alice")))
case("easy-get-all-user-none", "user_id")(lambda e: arun(e["easy"].get_all(user_id=None)))
case("easy-delete-id-int", "memory_id")(lambda e: arun(e["easy"].delete(5)))
case("easy-clear-user-none", "user_id")(lambda e: arun(e["easy"].clear(user_id=None)))
case("easy-config-str", "config")(lambda e: Memory(config="memory.db"))
case("easy-dedup-str", "dedup_threshold")(lambda e: Memory(dedup_threshold="x"))

# -- MemoryConfig ----------------------------------------------------------------------------------
for _name, _kwargs, _expect in [
    ("db-path-int", {"db_path": 123}, "db_path"),
    ("db-path-none", {"db_path": None}, "db_path"),
    ("db-path-empty", {"db_path": ""}, "db_path"),
    ("db-path-surrogate", {"db_path": SUR}, "db_path"),
    ("dimension-str", {"vector_dimension": "64"}, "vector_dimension"),
    ("dimension-zero", {"vector_dimension": 0}, "vector_dimension"),
    ("dimension-huge", {"vector_dimension": 10**30}, "vector_dimension"),
    ("bubble-nan", {"bubble_threshold": NAN}, "bubble_threshold"),
    ("search-mode", {"search_mode": "fuzzy"}, "search_mode"),
    ("embedder-backend", {"embedder_backend": "nope"}, "nope"),
    ("cache-enabled-str", {"cache_enabled": "yes"}, "cache_enabled"),
    ("http-timeout-negative", {"http_timeout": -1}, "http_timeout"),
    ("threads-zero", {"embedder_threads": 0}, "embedder_threads"),
    ("top-candidates-str", {"hybrid_candidates": "100"}, "hybrid_candidates"),
    ("half-life-nan", {"recency_half_life_days": NAN}, "recency_half_life_days"),
    ("model-int", {"embedder_model": 5}, "embedder_model"),
]:
    case(f"config-{_name}", _expect)(lambda e, kw=_kwargs: MemoryConfig(**kw))
case("config-unknown-override", "bogus")(lambda e: MemoryConfig().with_overrides(bogus=1))
case("config-override-bad", "vector_dimension")(
    lambda e: MemoryConfig().with_overrides(vector_dimension="x")
)

# -- with_memory and wrapper.memory ----------------------------------------------------------------
case("with-memory-object", "client")(lambda e: with_memory(object(), user_id="alice"))
case("with-memory-user-none", "user_id")(lambda e: with_memory(e["w"].client, user_id=None))
case("with-memory-user-surrogate", "user_id")(lambda e: with_memory(e["w"].client, user_id=SUR))
case("with-memory-top-k-str", "top_k")(lambda e: with_memory(e["w"].client, user_id="a", top_k="5"))
case("with-memory-budget-negative", "token_budget")(
    lambda e: with_memory(e["w"].client, user_id="a", token_budget=-1)
)
case("with-memory-config-str", "config")(
    lambda e: with_memory(e["w"].client, user_id="a", config="x.db")
)
case("with-memory-memory-str", "memory")(
    lambda e: with_memory(e["w"].client, user_id="a", memory="x.db")
)
case("with-memory-session-int", "session_id")(
    lambda e: with_memory(e["w"].client, user_id="a", session_id=5)
)
case("with-memory-db-path-int", "db_path")(
    lambda e: with_memory(e["w"].client, user_id="a", db_path=5)
)
case("wrapper-search-top-k-huge", "top_k")(lambda e: e["w"].memory.search("tea", top_k=10**30))
case("wrapper-search-query-surrogate", "query")(lambda e: e["w"].memory.search(SUR))
case("wrapper-search-valid-at-str", "valid_at")(
    lambda e: e["w"].memory.search("tea", valid_at="yesterday")
)
case("wrapper-add-surrogate", "content")(lambda e: e["w"].memory.add(SUR))
case("wrapper-add-metadata-nan", "metadata")(lambda e: e["w"].memory.add("x", metadata={"a": NAN}))
case("wrapper-add-importance-str", "importance")(lambda e: e["w"].memory.add("x", importance="x"))
case("wrapper-add-category-bogus", "category")(lambda e: e["w"].memory.add("x", category="planet"))
case("wrapper-get-int", "memory_id")(lambda e: e["w"].memory.get(5))
case("wrapper-get-other-user", "another user")(lambda e: e["w"].memory.get(e["bob"].id))
case("wrapper-delete-none", "memory_id")(lambda e: e["w"].memory.delete(None))
case("wrapper-history-int", "memory_id")(lambda e: e["w"].memory.history(5))
case("wrapper-get-all-str", "include_superseded")(
    lambda e: e["w"].memory.get_all(include_superseded="yes")
)
case("create-config-str", "config")(lambda e: HierarchicalMemory.create_sync("x.db"))
case("create-embedder-object", "embedder")(
    lambda e: HierarchicalMemory.create_sync(MemoryConfig(vector_dimension=64), embedder=object())
)
case("async-create-config-int", "config")(lambda e: arun(HierarchicalMemory.create(5)))
case("create-unknown-override", "bogus")(
    lambda e: HierarchicalMemory.create_sync(MemoryConfig(), bogus=1)
)
case("inline-memory-str", "memory")(lambda e: InlineMemory("x.db", user_id="a"))
case("inline-prepare-none", "messages")(
    lambda e: InlineMemory(e["hm"], user_id="alice").prepare(None)
)
case("inline-prepare-str", "messages")(
    lambda e: InlineMemory(e["hm"], user_id="alice").prepare("hi")
)
case("inline-process-reply-int", "text")(
    lambda e: InlineMemory(e["hm"], user_id="alice").process_reply(5)
)
case("split-int", "text")(lambda e: split_memory_block(5))
case("stripper-feed-int", "chunk")(lambda e: StreamingMemoryStripper().feed(5))
case("inline-top-k-str", "top_k")(lambda e: InlineMemory(e["hm"], user_id="a", top_k="5"))
case("inline-user-surrogate", "user_id")(lambda e: InlineMemory(e["hm"], user_id=SUR))


@pytest.mark.parametrize(("name", "call", "expect"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_a_headroom_error_naming_the_argument(
    env: dict[str, Any], name: str, call: Callable[[dict[str, Any]], Any], expect: str
) -> None:
    with pytest.raises(HeadroomError) as info:
        call(env)
    assert expect.lower() in str(info.value).lower(), (name, str(info.value))


def test_the_table_is_large_and_leaves_the_store_untouched(env: dict[str, Any]) -> None:
    assert len(CASES) >= 250
    hm = env["hm"]
    # Nothing half-written: both users are intact and fully usable after every bad call.
    for user, content in (("alice", "Alice likes green tea"), ("bob", "Bob likes coffee")):
        assert [m.content for m in hm.sync.query(MemoryFilter(user_id=user))] == [content]
        assert hm.sync.search("likes", user)[0].content == content


# -- documented normalisations ---------------------------------------------------------------------


def test_whitespace_query_gives_no_results(env: dict[str, Any]) -> None:
    assert env["hm"].sync.search("   ", "alice") == []


def test_inline_layer_replaces_lone_surrogates_in_user_and_model_text(env: dict[str, Any]) -> None:
    inline = InlineMemory(env["hm"], user_id="alice")
    prepared = inline.prepare([{"role": "user", "content": "green tea" + SUR}])
    assert prepared.injected and prepared.injected[0].content == "Alice likes green tea"
    reply = 'Ok.<memory>{"memories": [{"content": "User likes \\ud800 tea"}]}</memory>'
    visible, items = split_memory_block(reply)
    assert visible == "Ok." and items[0].content == "User likes \ufffd tea"


def test_nan_attempt_leaves_the_user_fully_usable(tmp_path: Path) -> None:
    hm = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=tmp_path / "n.db", vector_dimension=64), embedder=HashEmbedder(64)
    )
    try:
        kept = hm.sync.add("fact", "alice", metadata={"score": 1.5})
        for bad in (NAN, math.inf, -math.inf):
            with pytest.raises(HeadroomError, match="metadata"):
                hm.sync.add("fact", "alice", metadata={"score": bad})
            with pytest.raises(HeadroomError, match="metadata"):
                hm.sync.update(kept.id, metadata={"score": bad})
        assert [
            m.id for m in hm.sync.query(MemoryFilter(user_id="alice", metadata={"score": 1.5}))
        ] == [kept.id]
        assert hm.sync.search("fact", "alice", metadata={"score": 1.5})[0].id == kept.id
        assert hm.sync.stats("alice")["total"] == 1
        assert hm.sync.delete(kept.id, user_id="alice")
    finally:
        hm.sync.close()


# -- the CLI ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["search", "tea", "--user", "alice", "--top-k", "0"],
        ["search", "tea", "--user", "alice", "--top-k", str(10**30)],
        ["search", "tea" + "\udcff", "--user", "alice"],
        ["search", "tea", "--user", "\udcff"],
        ["list", "--limit", "-1"],
        ["list", "--category", "planet"],
        ["show", "\udcff"],
        ["show", "x" * 300],
        ["history", "missing"],
        ["delete", "missing"],
        ["stats", "--user", ""],
    ],
)
def test_cli_bad_input_is_a_clean_error(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code = cli_main(["memory", *argv, "--db", str(env["db"]), "--embedder", "hash"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("headroom: error:") and "unexpected" not in err and "Traceback" not in err


@pytest.mark.parametrize(
    "line",
    [
        '{"id": "x1", "content": "c", "user_id": "u", "metadata": {"a": NaN}}',
        '{"id": "x1", "content": "c", "user_id": "u", "importance": "high"}',
        '{"id": "x1", "content": "", "user_id": "u"}',
        '{"id": "x1", "content": "c", "user_id": "u", "agent_id": "a", "scope_level": "agent"}',
        '{"id": "x1", "content": "c", "user_id": "u", "valid_from": "yesterday"}',
        '{"id": 5, "content": "c", "user_id": "u"}',
        "[1, 2]",
        "not json",
    ],
)
def test_cli_import_of_bad_records_is_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(line + "\n", encoding="utf-8")
    db = tmp_path / "imp.db"
    code = cli_main(["memory", "import", str(source), "--db", str(db), "--embedder", "hash"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("headroom: error:") and "unexpected" not in err
    json.dumps(err)  # printable


def test_import_normalises_enum_fields_given_as_strings(tmp_path: Path) -> None:
    hm = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=tmp_path / "i.db", vector_dimension=64), embedder=HashEmbedder(64)
    )
    try:
        records = [
            Record(id="r1", content="x", user_id="u", scope_level="user", category="FACT"),  # type: ignore[arg-type]
            Record(id="r2", content="y", user_id="u", promoted_from="session", importance=1),  # type: ignore[arg-type]
        ]
        assert hm.sync.import_memories(records) == 2
        stored = {m.id: m for m in hm.sync.query(MemoryFilter(user_id="u"))}
        assert (
            stored["r1"].category.value == "fact" and stored["r2"].promoted_from.value == "session"
        )
        assert records[0].scope_level == "user"  # the caller's records are not modified
    finally:
        hm.sync.close()
