"""HeadroomCallback never asks for a block it cannot remove; sync calls warn; proxy identity.

The fake server answers like a model that follows the instruction: it writes the ``<memory>``
block only when the extraction instruction is in the request.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import litellm
import pytest
from litellm.proxy._types import UserAPIKeyAuth

import headroom_litellm as hl
from headroom.inline.injection import INSTRUCTION_MARKER
from headroom.memory import HierarchicalMemory
from headroom.testing.fake_openai import FakeOpenAIServer

REPLY = 'Sure thing. <memory>{"memories": [{"content": "User likes Rust"}]}</memory>'
VISIBLE = "Sure thing."
Contents = Callable[..., list[str]]
ASK: list[Any] = [{"role": "user", "content": "I like Rust, remember that."}]
META = {"headroom_user_id": "alice"}


def obedient(request: dict[str, Any]) -> str:
    return REPLY if INSTRUCTION_MARKER in json.dumps(request["messages"]) else VISIBLE


def fake(server: FakeOpenAIServer) -> dict[str, Any]:
    return {"model": "openai/fake-model", "api_base": server.base_url, "api_key": "sk-test"}


def warnings_about(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


async def _drain(stream: Any) -> str:
    return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])


async def test_async_sdk_stream_is_never_injected(
    hm: HierarchicalMemory,
    server: FakeOpenAIServer,
    contents: Contents,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.responder = obedient
    litellm.callbacks = [hl.HeadroomCallback(memory=hm)]
    with caplog.at_level("WARNING", logger="headroom_litellm"):
        for _ in range(2):
            stream = await litellm.acompletion(
                messages=ASK, metadata=META, stream=True, **fake(server)
            )
            text = await _drain(stream)
            assert text == VISIBLE and "<memory" not in text
    assert all(INSTRUCTION_MARKER not in json.dumps(r["messages"]) for r in server.requests)
    assert len(warnings_about(caplog, "cannot strip SDK or Router streams")) == 1  # once
    # non-streaming calls through the same callback still remember
    out = await litellm.acompletion(messages=ASK, metadata=META, **fake(server))
    assert out.choices[0].message.content == VISIBLE
    assert contents(hm, "alice") == ["User likes Rust"]


async def test_async_router_stream_is_never_injected(
    hm: HierarchicalMemory, server: FakeOpenAIServer
) -> None:
    server.responder = obedient
    router = litellm.Router(model_list=[{"model_name": "chat", "litellm_params": fake(server)}])
    litellm.callbacks = [hl.HeadroomCallback(memory=hm)]
    stream = await router.acompletion(model="chat", messages=ASK, user="alice", stream=True)
    assert await _drain(stream) == VISIBLE
    assert INSTRUCTION_MARKER not in json.dumps(server.requests[-1]["messages"])


async def test_wrapper_streams_still_remember_with_callback_registered(
    hm: HierarchicalMemory, server: FakeOpenAIServer, contents: Contents
) -> None:
    server.responder = obedient
    litellm.callbacks = [hl.HeadroomCallback(memory=hm)]
    stream = await hl.acompletion(
        messages=ASK, memory=hm, user_id="alice", stream=True, **fake(server)
    )
    assert await _drain(stream) == VISIBLE
    assert json.dumps(server.requests[-1]["messages"]).count(INSTRUCTION_MARKER) == 1
    assert contents(hm, "alice") == ["User likes Rust"]


def test_sync_completion_with_callback_warns_once(
    hm: HierarchicalMemory, server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.responder = obedient
    litellm.callbacks = [hl.HeadroomCallback(memory=hm)]
    with caplog.at_level("WARNING", logger="headroom_litellm"):
        hl.completion(messages=ASK, memory=hm, user_id="alice", **fake(server))
        assert warnings_about(caplog, "headroom_litellm.completion") == []  # the wrapper: fine
        for _ in range(2):
            out = litellm.completion(messages=ASK, metadata=META, **fake(server))
            assert out.choices[0].message.content == VISIBLE
    assert len(warnings_about(caplog, "headroom_litellm.completion")) == 1
    assert INSTRUCTION_MARKER not in json.dumps(server.requests[-1]["messages"])


# -- proxy identity (the hook called directly; the real proxy is in test_proxy.py) ----------------


def _request(**extra: Any) -> dict[str, Any]:
    return {
        "model": "fake-chat",
        "messages": list(ASK),
        "metadata": {"user_api_key_hash": "h", **extra.pop("metadata", {})},
        **extra,
    }


async def test_proxy_identity_is_the_key_unless_trusted(hm: HierarchicalMemory) -> None:
    hm.sync.add("User likes Rust", "alice")
    hm.sync.add("Bob likes Go", "bob")
    key = UserAPIKeyAuth(api_key="sk-bob", user_id="bob")
    claims = {"user": "alice", "metadata": {"headroom_user_id": "alice"}}
    strict = hl.HeadroomCallback(memory=hm)
    data = await strict.async_pre_call_hook(key, None, _request(**claims), "acompletion")
    assert data is not None and "Bob likes Go" in json.dumps(data["messages"])
    assert "User likes Rust" not in json.dumps(data["messages"])

    trusting = hl.HeadroomCallback(memory=hm, trust_end_user_id=True)
    data = await trusting.async_pre_call_hook(key, None, _request(**claims), "acompletion")
    assert data is not None and "User likes Rust" in json.dumps(data["messages"])


def test_key_principal() -> None:
    from headroom_litellm._identity import key_principal

    assert key_principal(UserAPIKeyAuth(api_key="sk-1", user_id="u", team_id="t")) == "u"
    assert key_principal(UserAPIKeyAuth(api_key="sk-1", team_id="t")) == "team:t"
    one, two = (key_principal(UserAPIKeyAuth(api_key=k)) for k in ("sk-1", "sk-2"))
    assert one and two and one.startswith("key:") and one != two
    assert "sk-1" not in one
    assert key_principal(None) is None


async def test_proxy_requests_never_take_identity_in_the_deployment_hook(
    hm: HierarchicalMemory,
) -> None:
    """A proxy route whose pre-call hook did not run: the client's ``user`` is not trusted."""
    callback = hl.HeadroomCallback(memory=hm)
    request = _request(user="alice")
    assert await callback.async_pre_call_deployment_hook(request, "acompletion") is None
