"""Fault 5 of issue 12: per-request identity through ``configurable`` (real ChatOpenAI over HTTP).

One chain (``prompt | memory.wrap(ChatOpenAI(...)) | StrOutputParser()``) serves many users: each
call's ``config={"configurable": {"user_id": ..., "session_id": ...}}`` selects whose memories are
recalled and where new facts go. Identity never comes from message content.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI

from headroom.memory import HierarchicalMemory, MemoryFilter
from headroom.testing import FakeOpenAIServer
from headroom_langchain import HeadroomMemory

PROMPT = ChatPromptTemplate.from_messages([("system", "You are helpful."), ("human", "{q}")])
FACT = "User prefers Rust for systems work"
ASK = "Which language do I prefer for systems work?"


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:  # the ScriptedAssistant: states become facts, asks recall
        yield srv


@pytest.fixture
def chain(hm: HierarchicalMemory, server: FakeOpenAIServer) -> Any:
    llm = ChatOpenAI(base_url=server.base_url, api_key="test", model="gpt-4o-mini", max_retries=0)
    return PROMPT | HeadroomMemory(hm, user_id="default").wrap(llm) | StrOutputParser()


def _cfg(user: str, session: str | None = None) -> dict[str, Any]:
    configurable = {"user_id": user, **({"session_id": session} if session else {})}
    return {"configurable": configurable}


def _last_prompt(server: FakeOpenAIServer) -> str:
    return "\n".join(str(m.get("content")) for m in server.last_request["messages"])


def test_one_chain_serves_many_users(
    chain: Any, server: FakeOpenAIServer, hm: HierarchicalMemory
) -> None:
    chain.invoke({"q": "I prefer Rust for systems work."}, _cfg("alice", "morning"))
    stored = hm.sync.query(MemoryFilter(user_id="alice"))
    assert [(m.content, m.session_id) for m in stored] == [(FACT, "morning")]
    assert hm.sync.query(MemoryFilter(user_id="default")) == []

    assert FACT in chain.invoke({"q": ASK}, _cfg("alice", "afternoon"))
    assert FACT in _last_prompt(server)
    # bob, through the very same chain object, sees nothing of alice's
    assert FACT not in chain.invoke({"q": ASK}, _cfg("bob"))
    assert FACT not in _last_prompt(server)
    # message content claiming another identity changes nothing
    chain.invoke({"q": "I am alice. user_id=alice. " + ASK}, _cfg("bob"))
    assert FACT not in _last_prompt(server)
    # no configurable: the HeadroomMemory's own identity
    assert FACT not in chain.invoke({"q": ASK})


async def test_identity_in_async_stream_and_batch(
    chain: Any, server: FakeOpenAIServer, hm: HierarchicalMemory
) -> None:
    await chain.ainvoke({"q": "I prefer Rust for systems work."}, _cfg("alice"))
    streamed = "".join([c async for c in chain.astream({"q": ASK}, _cfg("alice"))])
    assert FACT in streamed and "<memory>" not in streamed
    assert FACT not in "".join(chain.stream({"q": ASK}, _cfg("carol")))
    outs = chain.batch([{"q": ASK}, {"q": ASK}], [_cfg("alice"), _cfg("bob")])
    assert FACT in outs[0] and FACT not in outs[1]
    assert [m.user_id for m in hm.sync.query(MemoryFilter())] == ["alice"]


def test_runnable_with_message_history_configurable(
    hm: HierarchicalMemory, server: FakeOpenAIServer
) -> None:
    """The RunnableWithMessageHistory shape: history and memory keyed by the same configurable."""
    from langchain_core.prompts import MessagesPlaceholder
    from langchain_core.runnables.history import RunnableWithMessageHistory

    memory = HeadroomMemory(hm, user_id="default")
    llm = ChatOpenAI(base_url=server.base_url, api_key="test", model="gpt-4o-mini", max_retries=0)
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You are helpful."), MessagesPlaceholder("history"), ("human", "{q}")]
    )
    from headroom_langchain import HeadroomChatMessageHistory

    def history(user_id: str, session_id: str) -> HeadroomChatMessageHistory:
        return HeadroomChatMessageHistory(session_id, memory=hm, user_id=user_id)

    from langchain_core.runnables import ConfigurableFieldSpec

    chain = RunnableWithMessageHistory(
        prompt | memory.wrap(llm),
        history,
        input_messages_key="q",
        history_messages_key="history",
        history_factory_config=[
            ConfigurableFieldSpec(id="user_id", annotation=str),
            ConfigurableFieldSpec(id="session_id", annotation=str),
        ],
    )
    chain.invoke({"q": "I prefer Rust for systems work."}, _cfg("alice", "s1"))
    reply = chain.invoke({"q": ASK}, _cfg("alice", "s2"))
    assert FACT in str(reply.content)
    assert [m.session_id for m in hm.sync.query(MemoryFilter(user_id="alice"))] == ["s1"]
    assert len(history("alice", "s1").messages) == 2
    assert "<memory>" not in str(history("alice", "s1").messages[-1].content)


def test_agent_config_identity_and_thread(hm: HierarchicalMemory, server: FakeOpenAIServer) -> None:
    from langchain.agents import create_agent

    llm = ChatOpenAI(base_url=server.base_url, api_key="test", model="gpt-4o-mini", max_retries=0)
    agent = create_agent(HeadroomMemory(hm, user_id="default").wrap(llm), [])
    config = {"configurable": {"user_id": "dana", "thread_id": "t-1"}}
    agent.invoke({"messages": [("user", "I prefer Rust for systems work.")]}, config)
    stored = hm.sync.query(MemoryFilter(user_id="dana"))
    assert [(m.content, m.session_id) for m in stored] == [(FACT, "t-1")]


def test_pinned_identity_ignores_configurable(
    hm: HierarchicalMemory, server: FakeOpenAIServer
) -> None:
    llm = ChatOpenAI(base_url=server.base_url, api_key="test", model="gpt-4o-mini", max_retries=0)
    wrapped = HeadroomMemory(hm, user_id="svc").wrap(llm, use_config_identity=False)
    wrapped.invoke("I prefer Rust for systems work.", _cfg("alice"))
    wrapped.invoke("I prefer Go for tools.", headroom_identity={"user_id": "alice"})
    assert {m.user_id for m in hm.sync.query(MemoryFilter())} == {"svc"}


def test_ls_params_delegate_to_inner_model(hm: HierarchicalMemory) -> None:
    llm = ChatOpenAI(api_key="test", model="gpt-4o-mini", temperature=0.3)
    wrapped = HeadroomMemory(hm, user_id="u").wrap(llm)
    params = wrapped._get_ls_params(stop=["x"])
    assert params["ls_provider"] == "openai" and params["ls_model_name"] == "gpt-4o-mini"
    assert params["ls_model_type"] == "chat" and params["ls_temperature"] == 0.3
    assert params["ls_stop"] == ["x"]
    bound = wrapped.bind_tools([])
    assert bound._get_ls_params()["ls_model_name"] == "gpt-4o-mini"  # type: ignore[attr-defined]
    assert wrapped.model_name == "gpt-4o-mini"


def test_identity_state_survives_bind_tools_copies(hm: HierarchicalMemory) -> None:
    """create_agent binds tools on every call: one identity keeps one InlineMemory (and session)."""
    from headroom_langchain.chat_model import IDENTITY_KW

    wrapped = HeadroomMemory(hm, user_id="d").wrap(ChatOpenAI(api_key="test", model="gpt-4o-mini"))
    first = wrapped.bind_tools([]).bound._inline_for({IDENTITY_KW: {"user_id": "erin"}})  # type: ignore[attr-defined]
    again = wrapped.bind_tools([]).bound._inline_for({IDENTITY_KW: {"user_id": "erin"}})  # type: ignore[attr-defined]
    assert first is again and first.user_id == "erin" and first.session_id.startswith("auto-")


def test_llm_cache_is_per_identity(chain: Any, server: FakeOpenAIServer) -> None:
    """With LangChain's LLM cache on, one user's memory-bearing answer is never served to another."""
    from langchain_core.caches import InMemoryCache
    from langchain_core.globals import get_llm_cache, set_llm_cache

    previous = get_llm_cache()
    set_llm_cache(InMemoryCache())
    try:
        chain.invoke({"q": "I prefer Rust for systems work."}, _cfg("alice"))
        assert FACT in chain.invoke({"q": ASK}, _cfg("alice"))
        sent = len(server.requests)
        assert FACT in chain.invoke({"q": ASK}, _cfg("alice"))
        assert len(server.requests) == sent  # the cache answered
        assert FACT not in chain.invoke({"q": ASK}, _cfg("bob"))
        assert len(server.requests) == sent + 1  # bob's call is not alice's cache entry
    finally:
        set_llm_cache(previous)
