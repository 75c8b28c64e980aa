"""HeadroomCallback on litellm.acompletion and Router.acompletion; identity; failures."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import litellm
import pytest

import headroom_litellm as hl
from headroom.inline.injection import INSTRUCTION_MARKER
from headroom.memory import HierarchicalMemory
from headroom.testing.fake_openai import FakeOpenAIServer

REPLY = 'Sure thing. <memory>{"memories": [{"content": "User likes Rust"}]}</memory>'
VISIBLE = "Sure thing."
Contents = Callable[..., list[str]]
ASK: list[Any] = [{"role": "user", "content": "I like Rust, remember that."}]
QUESTION: list[Any] = [{"role": "user", "content": "Which language do I like?"}]


def sent(request: dict[str, Any]) -> str:
    return json.dumps(request.get("messages"))


def register(**kwargs: Any) -> hl.HeadroomCallback:
    callback = hl.HeadroomCallback(**kwargs)
    litellm.callbacks = [callback]
    return callback


def fake(server: FakeOpenAIServer) -> dict[str, Any]:
    return {"model": "openai/fake-model", "api_base": server.base_url, "api_key": "sk-test"}


async def test_callback_injects_strips_and_stores(
    hm: HierarchicalMemory, server: FakeOpenAIServer, contents: Contents
) -> None:
    register(memory=hm)
    meta = {"headroom_user_id": "alice", "headroom_session_id": "s1"}
    first = await litellm.acompletion(messages=ASK, metadata=meta, **fake(server))
    assert first.choices[0].message.content == VISIBLE
    assert INSTRUCTION_MARKER in sent(server.requests[0])
    assert "metadata" not in server.requests[0]  # headroom's state never reaches the provider
    assert contents(hm, "alice") == ["User likes Rust"]
    second = await litellm.acompletion(messages=QUESTION, metadata=meta, **fake(server))
    assert second.choices[0].message.content == VISIBLE
    messages = server.requests[1]["messages"]
    assert "User likes Rust" in messages[-1]["content"]
    assert sent(server.requests[1]).count("</headroom_context>") == 1
    assert sent(server.requests[1]).count(INSTRUCTION_MARKER) == 1
    assert QUESTION[0]["content"] == "Which language do I like?"  # caller's messages untouched
    assert contents(hm, "alice") == ["User likes Rust"]  # near-duplicate not stored twice


@pytest.mark.parametrize(
    "model",
    [
        "openai/gpt-4o",
        "anthropic/claude-3-5-haiku-latest",
        "gemini/gemini-1.5-flash",
        "groq/llama-3.1-8b-instant",
        "ollama/llama3.2",
    ],
)
async def test_callback_mock_response_strip(
    model: str, hm: HierarchicalMemory, contents: Contents
) -> None:
    register(memory=hm)
    response = await litellm.acompletion(
        model=model, messages=ASK, mock_response=REPLY, user="alice"
    )
    assert response.choices[0].message.content == VISIBLE
    assert contents(hm, "alice") == ["User likes Rust"]


async def test_supersession_through_refs(
    hm: HierarchicalMemory, server: FakeOpenAIServer, contents: Contents
) -> None:
    hm.sync.add("User lives in Paris", "alice")
    server.responder = lambda request: (
        'Noted. <memory>{"memories": [{"content": "User lives in Berlin", "supersedes": "m1"}]}</memory>'
    )
    register(memory=hm, user_id="alice")
    out = await litellm.acompletion(
        messages=[{"role": "user", "content": "I moved from Paris to Berlin, where do I live"}],
        **fake(server),
    )
    assert out.choices[0].message.content == "Noted."
    assert "User lives in Paris" in sent(server.requests[0])
    assert contents(hm, "alice") == ["User lives in Berlin"]
    current = hm.sync.query()[0]
    assert [m.content for m in hm.sync.get_history(current.id)][:2] in (
        ["User lives in Paris", "User lives in Berlin"],
        ["User lives in Berlin", "User lives in Paris"],
    )


async def test_router_two_deployments_with_callback(
    hm: HierarchicalMemory, server: FakeOpenAIServer, contents: Contents
) -> None:
    with FakeOpenAIServer(lambda request: REPLY) as other:
        router = litellm.Router(
            model_list=[
                {"model_name": "chat", "litellm_params": {**fake(server)}},
                {"model_name": "chat", "litellm_params": {**fake(other)}},
            ]
        )
        register(memory=hm)
        for user in ("alice", "bob", "carol", "dave"):
            out = await router.acompletion(
                model="chat", messages=ASK, metadata={"headroom_user_id": user}
            )
            assert out.choices[0].message.content == VISIBLE
        out = await router.acompletion(model="chat", messages=QUESTION, user="alice")
        assert out.choices[0].message.content == VISIBLE
        requests = server.requests + other.requests
    assert len(requests) == 5
    assert all(sent(r).count(INSTRUCTION_MARKER) == 1 for r in requests)
    last = next(r for r in requests if "Which language" in sent(r))
    assert "User likes Rust" in sent(last)
    assert all(contents(hm, u) == ["User likes Rust"] for u in ("alice", "bob", "carol", "dave"))


# -- identity ------------------------------------------------------------------------------------


async def test_identity_from_metadata_beats_user_field_and_defaults(
    hm: HierarchicalMemory, contents: Contents
) -> None:
    register(memory=hm, user_id="default-user")
    await litellm.acompletion(
        model="openai/x",
        messages=ASK,
        mock_response=REPLY,
        user="field-user",
        metadata={"headroom_user_id": "meta-user", "headroom_agent_id": "a1"},
    )
    await litellm.acompletion(
        model="openai/x", messages=ASK, mock_response=REPLY, user="field-user"
    )
    await litellm.acompletion(model="openai/x", messages=ASK, mock_response=REPLY)
    for user in ("meta-user", "field-user", "default-user"):
        assert contents(hm, user) == ["User likes Rust"], user
    stored = {m.user_id: m for m in hm.sync.query()}
    assert stored["meta-user"].agent_id == "a1"


async def test_default_session_and_agent_apply_to_resolved_user(hm: HierarchicalMemory) -> None:
    register(memory=hm, session_id="s-default", agent_id="agent-default")
    await litellm.acompletion(model="openai/x", messages=ASK, mock_response=REPLY, user="alice")
    (memory,) = hm.sync.query()
    assert (memory.user_id, memory.session_id, memory.agent_id) == (
        "alice",
        "s-default",
        "agent-default",
    )


async def test_no_user_passes_through_untouched(
    hm: HierarchicalMemory,
    server: FakeOpenAIServer,
    contents: Contents,
    caplog: pytest.LogCaptureFixture,
) -> None:
    register(memory=hm)
    with caplog.at_level("INFO", logger="headroom_litellm"):
        out = await litellm.acompletion(messages=ASK, **fake(server))
    assert out.choices[0].message.content == REPLY  # not stripped: nothing of ours in it
    assert server.requests[0]["messages"] == ASK
    assert contents(hm) == []
    assert "no user id" in caplog.text


def test_wrapper_without_user_is_untouched(
    hm: HierarchicalMemory, server: FakeOpenAIServer, contents: Contents
) -> None:
    out = hl.completion(messages=ASK, memory=hm, **fake(server))
    assert out.choices[0].message.content == REPLY
    assert server.requests[0]["messages"] == ASK
    assert contents(hm) == []


def test_resolve_identity_order() -> None:
    from headroom_litellm._identity import resolve_identity

    defaults = hl.IdentityDefaults("d", "ds", "da")
    assert resolve_identity({}, None) is None
    assert resolve_identity({"user": ""}, hl.IdentityDefaults()) is None
    assert resolve_identity({}, defaults) == hl.Identity("d", "ds", "da")
    assert resolve_identity({"user": "u"}, defaults) == hl.Identity("u", "ds", "da")
    nested = {
        "user": "u",
        "litellm_params": {"metadata": {"headroom_user_id": "m", "headroom_session_id": "s"}},
    }
    assert resolve_identity(nested, defaults) == hl.Identity("m", "s", "da")
    proxy = {"litellm_metadata": {"headroom_agent_id": "pa"}, "user": "u"}
    assert resolve_identity(proxy, None) == hl.Identity("u", None, "pa")
    assert resolve_identity(nested, defaults, user_id="x") == hl.Identity("x", "s", "da")


# -- call types and failures -----------------------------------------------------------------------


async def test_other_call_types_are_ignored(hm: HierarchicalMemory) -> None:
    callback = hl.HeadroomCallback(memory=hm, user_id="alice")
    request = {"model": "x", "input": ["hello"], "messages": ASK}
    assert (
        await callback.async_pre_call_deployment_hook(
            request, litellm.types.utils.CallTypes.aembedding
        )
        is None
    )
    assert (
        await callback.async_pre_call_deployment_hook(
            {"model": "x", "input": "hi"}, litellm.types.utils.CallTypes.acompletion
        )
        is None
    )
    prepared = await callback.async_pre_call_deployment_hook(
        {"model": "x", "messages": ASK}, litellm.types.utils.CallTypes.acompletion
    )
    assert prepared is not None and INSTRUCTION_MARKER in sent(prepared)
    # idempotent: a second request hook over the prepared request changes nothing
    assert (
        await callback.async_pre_call_deployment_hook(
            prepared, litellm.types.utils.CallTypes.acompletion
        )
        is None
    )


async def test_closed_memory_does_not_fail_the_call(
    memory_factory: Callable[..., HierarchicalMemory], tmp_path: Any, server: FakeOpenAIServer
) -> None:
    memory = memory_factory(tmp_path / "closed.db")
    memory.sync.close()
    register(memory=memory, user_id="alice")
    out = await litellm.acompletion(messages=ASK, **fake(server))
    assert out.choices[0].message.content == VISIBLE
    out = hl.completion(messages=ASK, memory=memory, user_id="alice", **fake(server))
    assert out.choices[0].message.content == VISIBLE
    stream = hl.completion(
        messages=ASK, memory=memory, user_id="alice", stream=True, **fake(server)
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream) == VISIBLE


async def test_memory_layer_exceptions_do_not_fail_the_call(
    hm: HierarchicalMemory, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import headroom_litellm._handler as handler_module

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("memory layer exploded")

    callback = register(memory=hm, user_id="alice")
    monkeypatch.setattr(callback.handler.pool, "get", boom)
    out = await litellm.acompletion(messages=ASK, **fake(server))
    assert out.choices[0].message.content == REPLY  # untouched, but the call succeeded
    monkeypatch.undo()
    monkeypatch.setattr(handler_module, "strip_response", boom)
    out = await litellm.acompletion(messages=ASK, **fake(server))
    assert out.choices[0].message.content == REPLY
    monkeypatch.setattr(handler_module, "resolve_identity", boom)
    out = hl.completion(messages=ASK, memory=hm, user_id="alice", **fake(server))
    assert out.choices[0].message.content == REPLY
    out = await hl.acompletion(messages=ASK, memory=hm, user_id="alice", **fake(server))
    assert out.choices[0].message.content == REPLY


async def test_wrapper_and_callback_together_process_once(
    hm: HierarchicalMemory, server: FakeOpenAIServer, contents: Contents
) -> None:
    register(memory=hm)
    out = await hl.acompletion(messages=ASK, user_id="alice", memory=hm, **fake(server))
    assert out.choices[0].message.content == VISIBLE
    assert sent(server.requests[0]).count(INSTRUCTION_MARKER) == 1
    assert contents(hm, "alice") == ["User likes Rust"]
