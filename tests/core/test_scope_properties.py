"""Property tests (hypothesis): search and query see exactly what the scope rules allow."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headroom.memory import (
    HierarchicalMemory,
    MemoryConfig,
    MemoryFilter,
    ScopeLevel,
    ValidationError,
)
from headroom.testing import HashEmbedder

USERS = ["alice", "bob"]
SESSIONS = [None, "s1", "s2"]
AGENTS = [None, "a1", "a2"]
TURNS = [None, "t1", "t2"]
pytestmark = pytest.mark.contract  # runs on SQLite and PostgreSQL (tests/conftest.py)

memory_spec = st.tuples(
    st.sampled_from(USERS),
    st.sampled_from(SESSIONS),
    st.sampled_from(AGENTS),
    st.sampled_from(TURNS),
)
request_spec = st.tuples(
    st.sampled_from(USERS),
    st.sampled_from(SESSIONS),
    st.sampled_from(AGENTS),
    st.sampled_from(TURNS),
)


def visible(mem: dict, req: tuple) -> bool:
    """The documented rule, restated independently of the SQL implementation."""
    user, session, agent, turn = req
    if mem["user_id"] != user:
        return False
    if session is None and agent is None and turn is None:
        return True
    level = mem["scope_level"]
    if level is ScopeLevel.USER:
        return True
    if level is ScopeLevel.SESSION:
        return session is not None and mem["session_id"] == session
    if level is ScopeLevel.AGENT:
        return agent is not None and mem["agent_id"] == agent and mem["session_id"] == session
    return (
        turn is not None and mem["turn_id"] == turn
        and mem["session_id"] == session and mem["agent_id"] == agent
    )  # fmt: skip


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    memories=st.lists(memory_spec, min_size=1, max_size=12),
    requests=st.lists(request_spec, min_size=1, max_size=6),
)
def test_search_and_query_follow_the_scope_rules(new_store_url, memories, requests) -> None:  # type: ignore[no-untyped-def]
    db: Path | str = new_store_url()
    hm = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=db, vector_dimension=32), embedder=HashEmbedder(32)
    )
    try:
        stored = []
        for i, (user, session, agent, turn) in enumerate(memories):
            if session is None and (agent is not None or turn is not None):
                # agent/turn-level memories need a session (README "Rules the engine keeps")
                with pytest.raises(ValidationError, match="session_id"):
                    hm.sync.add(f"shared topic item {i}", user, session, agent, turn)
                continue
            m = hm.sync.add(f"shared topic item {i}", user, session, agent, turn)
            stored.append(m.to_dict() | {"scope_level": m.scope_level})
        for req in requests:
            expected = {m["content"] for m in stored if visible(m, req)}
            for mode in ("hybrid", "semantic", "text"):
                hits = hm.sync.search("shared topic item", *req, top_k=50, mode=mode)
                assert {h.content for h in hits} == expected, (req, mode)
                assert len(hits) == len({h.id for h in hits})  # never twice in one list
            user, session, agent, turn = req
            queried = hm.sync.query(
                MemoryFilter(user_id=user, session_id=session, agent_id=agent, turn_id=turn)
            )
            assert {m.content for m in queried} == expected
    finally:
        hm.sync.close()
