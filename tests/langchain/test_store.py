"""HeadroomStore: LangGraph BaseStore operations over the Headroom engine, and as an agent's store."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.tools import ToolRuntime
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.store.base import InvalidNamespaceError

from headroom.memory import HierarchicalMemory, MemoryFilter, ScopeLevel
from headroom_langchain import HeadroomMemory, HeadroomStore


@pytest.fixture
def store(hm: HierarchicalMemory) -> HeadroomStore:
    return HeadroomStore(hm)


def test_put_get_update_delete(store: HeadroomStore, hm: HierarchicalMemory) -> None:
    ns = ("alice", "memories")
    store.put(ns, "food", {"text": "Alice likes sushi", "stars": 5})
    item = store.get(ns, "food")
    assert item is not None and item.value == {"text": "Alice likes sushi", "stars": 5}
    assert item.namespace == ns and item.key == "food"
    assert store.get(ns, "missing") is None and store.get(("bob", "memories"), "food") is None

    store.put(ns, "food", {"text": "Alice likes ramen", "stars": 4})
    updated = store.get(ns, "food")
    assert updated is not None and updated.value["text"] == "Alice likes ramen"
    assert updated.created_at == item.created_at and updated.updated_at >= item.updated_at
    memories = hm.sync.query(MemoryFilter(user_id="alice"))
    assert len(memories) == 1 and memories[0].scope_level is ScopeLevel.USER
    assert len(hm.sync.get_history(memories[0].id)) == 2  # put keeps the previous version

    store.delete(ns, "food")
    assert store.get(ns, "food") is None
    assert hm.sync.query(MemoryFilter(user_id="alice", include_superseded=True)) == []


def test_namespace_to_scope_mapping(store: HeadroomStore, hm: HierarchicalMemory) -> None:
    store.put(("alice", "memories"), "k", {"text": "long-term"})
    store.put(("alice", "memories", "s1"), "k", {"text": "session note"})
    store.put(("alice", "memories", "s1", "planner"), "k", {"text": "agent note"})
    HeadroomStore(store.memory, layout=(None, "session")).put(
        ("x", "s9"), "k", {"text": "default user"}
    )
    by_content = {m.content: m for m in hm.sync.query(MemoryFilter(include_superseded=False))}
    assert by_content["long-term"].scope_level is ScopeLevel.USER
    assert by_content["session note"].scope_level is ScopeLevel.SESSION
    assert by_content["session note"].session_id == "s1"
    assert by_content["agent note"].scope_level is ScopeLevel.AGENT
    assert by_content["agent note"].agent_id == "planner"
    assert by_content["default user"].user_id == "langgraph"
    # a request in session s2 of alice (e.g. with_memory) sees the user-level item only
    visible = [r.content for r in hm.sync.search("note long-term", "alice", "s2", top_k=10)]
    assert visible == ["long-term"]
    assert store.scope_ids(("u", "x", "s", "a", "extra")) == ("u", "s", "a")


def test_search_filter_query_and_pagination(store: HeadroomStore) -> None:
    ns = ("alice", "memories")
    store.put(ns, "1", {"text": "User loves hiking in the mountains", "kind": "hobby", "level": 3})
    store.put(ns, "2", {"text": "User drinks green tea", "kind": "food", "level": 1})
    store.put((*ns, "s1"), "3", {"text": "Session about hiking boots", "kind": "hobby", "level": 2})
    store.put(
        ("bob", "memories"), "4", {"text": "Bob loves hiking too", "kind": "hobby", "level": 5}
    )

    assert len(store.search(ns)) == 3
    assert len(store.search(())) == 4
    hobbies = store.search(ns, filter={"kind": "hobby"})
    assert {i.key for i in hobbies} == {"1", "3"}
    assert {i.key for i in store.search((), filter={"level": {"$gte": 3}})} == {"1", "4"}

    ranked = store.search(ns, query="hiking in the mountains")
    assert ranked[0].key == "1" and ranked[0].score is not None
    assert all(a.score >= b.score for a, b in itertools.pairwise(ranked))  # type: ignore[operator]
    assert len(store.search(ns, limit=2)) == 2
    assert len(store.search(ns, limit=2, offset=2)) == 1


def test_list_namespaces(store: HeadroomStore) -> None:
    for ns in [("a", "u1"), ("a", "u1", "s1"), ("a", "u2"), ("b", "u1")]:
        store.put(ns, "k", {"v": 1})
    assert store.list_namespaces() == [("a", "u1"), ("a", "u1", "s1"), ("a", "u2"), ("b", "u1")]
    assert store.list_namespaces(prefix=("a",)) == [("a", "u1"), ("a", "u1", "s1"), ("a", "u2")]
    assert store.list_namespaces(suffix=("u1",)) == [("a", "u1"), ("b", "u1")]
    assert store.list_namespaces(prefix=("a", "*"), max_depth=2) == [("a", "u1"), ("a", "u2")]
    assert store.list_namespaces(limit=1, offset=1) == [("a", "u1", "s1")]


def test_errors(store: HeadroomStore) -> None:
    with pytest.raises(NotImplementedError):
        store.put(("a", "u"), "k", {"v": 1}, ttl=5)
    with pytest.raises(InvalidNamespaceError):
        store.put(("a.b", "u"), "k", {"v": 1})


async def test_async_ops(store: HeadroomStore) -> None:
    ns = ("carol", "memories")
    await store.aput(ns, "k", {"text": "Carol plays chess"}, index=["text"])
    item = await store.aget(ns, "k")
    assert item is not None and item.value["text"] == "Carol plays chess"
    assert [i.key for i in await store.asearch(ns, query="chess")] == ["k"]
    assert await store.alist_namespaces() == [ns]
    await store.adelete(ns, "k")
    assert await store.aget(ns, "k") is None


def test_as_agent_store(hm: HierarchicalMemory, scripted: Any) -> None:
    @tool
    def save_note(note: str, runtime: ToolRuntime) -> str:
        """Save a note about the user."""
        assert runtime.store is not None
        runtime.store.put(("dave", "memories"), "note", {"text": note})
        return "saved"

    store = HeadroomMemory(hm, user_id="dave").store()
    call = AIMessage(
        content="",
        tool_calls=[{"name": "save_note", "args": {"note": "Dave likes jazz"}, "id": "c1"}],
    )
    llm = scripted(replies=[call, "Saved your note."])
    agent = create_agent(llm, tools=[save_note], store=store)
    state = agent.invoke({"messages": [HumanMessage("Remember I like jazz")]})
    assert state["messages"][-1].content == "Saved your note."
    item = store.get(("dave", "memories"), "note")
    assert item is not None and item.value == {"text": "Dave likes jazz"}
    # the note is a user-level Headroom memory: the LCEL wrapper and retriever see it
    docs = HeadroomMemory(hm, user_id="dave").as_retriever().invoke("jazz")
    assert docs[0].page_content == "Dave likes jazz" or "jazz" in docs[0].page_content
