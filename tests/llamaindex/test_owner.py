"""Every memory read or change made by the LlamaIndex and LiteLLM adapters names its owner.

A spy on the public HierarchicalMemory API (async and ``.sync``) records the user id of every
call that can read or change memories; driving each adapter, none may be without one.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import ChatMessage
from llama_index.core.memory import Memory

from headroom.memory import HierarchicalMemory
from headroom.memory.sync import SyncHierarchicalMemory
from headroom.testing.fake_openai import FakeOpenAIServer
from headroom_llamaindex import (
    HeadroomLLM,
    HeadroomMemory,
    HeadroomMemoryBlock,
    HeadroomRetriever,
    headroom_memory_blocks_template,
)

OWNED = ("get", "update", "delete", "supersede", "get_history", "query", "count", "search",
         "text_search", "clear_scope", "recall", "stats", "add")  # fmt: skip
REPLY = 'Noted. <memory>{"memories": [{"content": "User likes Rust"}]}</memory>'


def _owner(name: str, bound: inspect.BoundArguments) -> Any:
    args = bound.arguments
    if name in ("query", "count"):
        return getattr(args.get("filter"), "user_id", None)
    return args.get("user_id") or args.get("kwargs", {}).get("user_id")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []
    for cls in (HierarchicalMemory, SyncHierarchicalMemory):
        for name in OWNED:
            original = getattr(cls, name, None)
            if original is None:
                continue
            signature = inspect.signature(original)

            def spy(*args: Any, __name: str = name, __sig: Any = signature,
                    __orig: Any = original, **kwargs: Any) -> Any:  # fmt: skip
                seen.append((__name, _owner(__name, __sig.bind(*args, **kwargs))))
                return __orig(*args, **kwargs)

            monkeypatch.setattr(cls, name, spy)
    yield seen


def test_llamaindex_adapters_always_name_the_owner(
    hm: HierarchicalMemory, calls: list[tuple[str, Any]]
) -> None:
    pytest.importorskip("llama_index.llms.openai")
    from llama_index.llms.openai import OpenAI

    with FakeOpenAIServer(lambda request: REPLY) as server:
        plain = OpenAI(model="gpt-4o-mini", api_base=server.base_url, api_key="sk-test")
        llm = HeadroomLLM(plain, user_id="alice", memory=hm)
        llm.chat([ChatMessage(role="user", content="I like Rust")])
        blocks = Memory.from_defaults(
            session_id="s",
            memory_blocks=[HeadroomMemoryBlock(user_id="alice", memory=hm)],
            memory_blocks_template=headroom_memory_blocks_template(),
        )
        SimpleChatEngine.from_defaults(llm=llm, memory=blocks).chat("Which language?")
        memory = HeadroomMemory.from_defaults(user_id="alice", llm=plain, memory=hm)
        SimpleChatEngine.from_defaults(llm=plain, memory=memory).chat("I like Rust")
        HeadroomRetriever(user_id="alice", memory=hm).retrieve("language")
    assert calls, "the spy saw nothing"
    assert [c for c in calls if not c[1]] == []


def test_litellm_adapters_always_name_the_owner(
    hm: HierarchicalMemory, calls: list[tuple[str, Any]]
) -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    litellm = pytest.importorskip("litellm")
    import asyncio

    import headroom_litellm as hl

    with FakeOpenAIServer(lambda request: REPLY) as server:
        kw: dict[str, Any] = {
            "model": "openai/x",
            "api_base": server.base_url,
            "api_key": "sk-test",
        }
        ask = [{"role": "user", "content": "I like Rust"}]
        hl.completion(messages=ask, memory=hm, user_id="alice", **kw)
        list(hl.completion(messages=ask, memory=hm, user_id="alice", stream=True, **kw))
        litellm.callbacks = [hl.HeadroomCallback(memory=hm)]
        try:
            asyncio.run(litellm.acompletion(messages=ask, user="alice", **kw))
        finally:
            litellm.logging_callback_manager._reset_all_callbacks()
        assert "User likes Rust" in json.dumps(server.requests[-1])
    assert calls, "the spy saw nothing"
    assert [c for c in calls if not c[1]] == []
