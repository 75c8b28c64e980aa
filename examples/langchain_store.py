"""HeadroomStore as a LangGraph store: namespaces -> Headroom scopes, IndexConfig, index=False.

Run: python examples/langchain_store.py   (offline; creates memory.db in the working directory)
"""

from headroom_langchain import HeadroomStore

# (user_id, "memories", session, agent): the order of LangChain's long-term-memory docs
store = HeadroomStore(db_path="memory.db", index={"fields": ["text"]})  # Headroom's embedder
store.put(("alice", "memories"), "diet", {"text": "User is vegetarian", "source": "onboarding"})
store.put(("alice", "memories", "trip"), "seat", {"text": "Wants a window seat"})  # session
store.put(("alice", "memories"), "raw", {"text": "User is vegan?"}, index=False)  # not ranked
for item in store.search(("alice",), query="what does the user eat?"):
    print(item.namespace, item.key, item.score)  # indexed items scored, best first

# ("memories", user_id) instead (LangMem's order): say where the user id is
langmem = HeadroomStore(store.memory, layout=(None, "user", "session", "agent"))  # same memory
langmem.put(("memories", "bob"), "pet", {"text": "Bob has a cat"})
print(langmem.scope_ids(("memories", "bob", "s1")))  # (user, session, agent)

hits = store.search(("alice",), query="what does the user eat?")
assert hits[0].key == "diet" and hits[-1].key == "raw" and hits[-1].score is None
assert all(h.score is not None for h in hits[:-1])
assert store.scope_ids(("alice", "memories", "trip")) == ("alice", "trip", None)
assert langmem.get(("memories", "bob"), "pet") is not None
assert store.search(("bob",)) == []  # bob's item lives under ("memories", "bob"), not ("bob",)
store.close()
