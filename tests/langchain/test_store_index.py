"""HeadroomStore and LangGraph's IndexConfig, owners, and a real agent's store (issue 12, fault 4).

Before the fix, ``index={"dims": ..., "embed": ..., "fields": [...]}`` was read as the field names
"dims", "embed", "fields" and ``embed`` was ignored, ``put(..., index=False)`` was still ranked by
query, and a query over a prefix spanning users could return hits with ``score=None``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.tools import ToolRuntime
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from headroom.memory import HierarchicalMemory, MemoryFilter, ScopeLevel
from headroom.memory.errors import DimensionMismatchError, HeadroomError, ValidationError
from headroom.testing import FakeOpenAIServer
from headroom_langchain import HeadroomMemory, HeadroomStore


def _letters(texts: list[str]) -> list[list[float]]:
    """A sync embed function: counts of a, e, i, o (4 dims)."""
    return [[float(t.count(c)) + 0.01 for c in "aeio"] for t in texts]


def test_index_dict_is_an_index_config(hm: HierarchicalMemory) -> None:
    calls: list[list[str]] = []

    def embed(texts: list[str]) -> list[list[float]]:
        calls.append(list(texts))
        return _letters(texts)

    store = HeadroomStore(hm, index={"dims": 4, "embed": embed, "fields": ["note"]})
    store.put(("alice", "memories"), "k", {"note": "aaaa", "dims": "not a field"})
    assert calls == [["aaaa"]]  # embed was used, on the configured field only
    [memory] = hm.sync.query(MemoryFilter(user_id="alice"))
    assert memory.content == "aaaa" and memory.scope_level is ScopeLevel.USER
    store.put(("alice", "memories"), "k2", {"note": "oooo"})
    hits = store.search(("alice",), query="aa")
    assert [h.key for h in hits] == ["k", "k2"] and hits[0].score > hits[1].score  # type: ignore[operator]
    assert store.index_config["dims"] == 4


def test_dims_checked(hm: HierarchicalMemory) -> None:
    store = HeadroomStore(hm, index={"dims": 5, "embed": _letters})
    with pytest.raises(DimensionMismatchError):
        store.put(("alice",), "k", {"text": "hello"})
    assert store.get(("alice",), "k") is None  # nothing half-written
    with pytest.raises(DimensionMismatchError):
        HeadroomStore(hm, index={"dims": 384})  # the memory's own embedder has 64 dims here
    assert HeadroomStore(hm, index={"dims": 64}).index_config["dims"] == 64


@pytest.mark.parametrize(
    "index",
    [{"dims": 4, "embed": _letters, "field": ["x"]}, {"dims": 0}, {"fields": "text"}, 42, "text"],
)
def test_bad_index_config_is_a_validation_error(hm: HierarchicalMemory, index: Any) -> None:
    with pytest.raises(ValidationError):
        HeadroomStore(hm, index=index)


def test_async_only_embed_is_refused(hm: HierarchicalMemory) -> None:
    async def aembed(texts: list[str]) -> list[list[float]]:
        return _letters(texts)

    with pytest.raises(ValidationError, match="async"):
        HeadroomStore(hm, index={"dims": 4, "embed": aembed})


def test_embed_failure_is_a_headroom_error(hm: HierarchicalMemory) -> None:
    def broken(texts: list[str]) -> list[list[float]]:
        raise RuntimeError("provider down")

    with pytest.raises(HeadroomError, match="provider down"):
        HeadroomStore(hm, index={"dims": 4, "embed": broken}).put(("u",), "k", {"text": "x"})


def test_query_across_users_always_scored(hm: HierarchicalMemory) -> None:
    store = HeadroomStore(hm)
    for i, user in enumerate(["alice", "bob", "carol"] * 3):
        store.put((user, "memories"), f"k{i}", {"text": f"note {i} about hiking trip {user}"})
    store.put(("dave", "memories"), "off", {"text": "hiking"}, index=False)
    hits = store.search((), query="hiking", limit=20)
    assert len(hits) == 10 and hits[-1].key == "off" and hits[-1].score is None
    scores = [h.score for h in hits[:-1]]
    assert all(s is not None for s in scores)
    assert all(a >= b for a, b in itertools.pairwise(scores))  # type: ignore[operator]


def test_every_change_names_the_owner(hm: HierarchicalMemory, monkeypatch: Any) -> None:
    """Issue 11 fault 7, for this adapter: gets, supersedes and deletes pass the owner's id."""
    seen: list[tuple[str, Any]] = []
    for name in ("get", "update", "delete", "supersede"):
        original = getattr(hm.sync, name)

        def spy(*args: Any, _name: str = name, _orig: Any = original, **kwargs: Any) -> Any:
            seen.append((_name, kwargs.get("user_id")))
            return _orig(*args, **kwargs)

        monkeypatch.setattr(hm.sync, name, spy)
    store = HeadroomStore(hm)
    store.put(("alice", "memories"), "k", {"text": "v1"})
    store.put(("alice", "memories"), "k", {"text": "v2"})
    store.delete(("alice", "memories"), "k")
    assert {name for name, _ in seen} >= {"supersede", "delete"}
    assert all(user == "alice" for _, user in seen), seen


# -- a real agent with the store ----------------------------------------------------------------


@dataclass
class Ctx:
    user_id: str


def _responder(request: dict[str, Any]) -> str | dict[str, Any]:
    messages = request["messages"]
    if request.get("tools") and not any(m["role"] == "tool" for m in messages):
        args = json.dumps({"fact": "User is vegetarian"})
        call = {"id": "c1", "type": "function", "function": {"name": "remember", "arguments": args}}
        return {"content": None, "tool_calls": [call]}
    return "Saved."


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(_responder) as srv:
        yield srv


def test_agent_store_namespace_user_first_is_recalled(
    hm: HierarchicalMemory, server: FakeOpenAIServer
) -> None:
    """The LangChain docs' pattern: a tool writes to ``(user_id, "memories")`` of the store."""

    @tool
    def remember(fact: str, runtime: ToolRuntime[Ctx]) -> str:
        """Remember a fact about the user."""
        assert runtime.store is not None
        user_id = runtime.context.user_id
        runtime.store.put((user_id, "memories"), "diet", {"text": fact})
        return "ok"

    memory = HeadroomMemory(hm, user_id="default")
    llm = ChatOpenAI(base_url=server.base_url, api_key="test", model="gpt-4o-mini", max_retries=0)
    agent = create_agent(llm, [remember], store=memory.store(), context_schema=Ctx)
    state = agent.invoke(
        {"messages": [HumanMessage("I'm vegetarian")]}, context={"user_id": "alice"}
    )
    assert state["messages"][-1].content == "Saved."
    [stored] = hm.sync.query(MemoryFilter(user_id="alice"))
    assert stored.content == "User is vegetarian" and stored.scope_level is ScopeLevel.USER
    # alice's later conversations (any adapter, any session) recall it; bob's do not
    docs = (
        HeadroomMemory(hm, user_id="alice", session_id="later")
        .as_retriever()
        .invoke("is the user vegetarian")
    )
    assert [d.page_content for d in docs] == ["User is vegetarian"]
    assert HeadroomMemory(hm, user_id="bob").as_retriever().invoke("is the user vegetarian") == []
