"""HeadroomRouter (sync Router.completion and streams) and the chunk stripper."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import litellm
import pytest

import headroom_litellm as hl
from headroom.inline.injection import INSTRUCTION_MARKER
from headroom.memory import HierarchicalMemory
from headroom.testing.fake_openai import FakeOpenAIServer
from headroom_litellm._responses import StreamStripper

REPLY = 'Sure thing. <memory>{"memories": [{"content": "User likes Rust"}]}</memory>'
VISIBLE = "Sure thing."
Contents = Callable[..., list[str]]
ASK: list[Any] = [{"role": "user", "content": "I like Rust, remember that."}]
QUESTION: list[Any] = [{"role": "user", "content": "Which language do I like?"}]


@pytest.fixture
def two_servers(server: FakeOpenAIServer) -> Iterator[list[FakeOpenAIServer]]:
    with FakeOpenAIServer(lambda request: REPLY, chunk_size=3) as other:
        yield [server, other]


@pytest.fixture
def router(two_servers: list[FakeOpenAIServer]) -> litellm.Router:
    return litellm.Router(
        model_list=[
            {
                "model_name": "chat",
                "litellm_params": {
                    "model": "openai/fake-model",
                    "api_base": s.base_url,
                    "api_key": "sk-test",
                },
            }
            for s in two_servers
        ]
    )


def _requests(servers: list[FakeOpenAIServer]) -> list[dict[str, Any]]:
    return [r for s in servers for r in s.requests]


def test_headroom_router_sync_completion(
    router: litellm.Router,
    two_servers: list[FakeOpenAIServer],
    hm: HierarchicalMemory,
    contents: Contents,
) -> None:
    wrapped = hl.HeadroomRouter(router, memory=hm, user_id="alice")
    assert wrapped.model_list == router.model_list  # everything else is the router's
    for _ in range(3):
        assert wrapped.completion(model="chat", messages=ASK).choices[0].message.content == VISIBLE
    out = wrapped.completion(model="chat", messages=QUESTION, user_id="bob")
    assert out.choices[0].message.content == VISIBLE
    out = wrapped.completion(model="chat", messages=QUESTION)
    requests = _requests(two_servers)
    assert len(requests) == 5
    assert all(json.dumps(r["messages"]).count(INSTRUCTION_MARKER) == 1 for r in requests)
    bob = [
        r
        for r in requests
        if "Which language" in json.dumps(r) and "User likes Rust" not in json.dumps(r)
    ]
    alice = [
        r
        for r in requests
        if "Which language" in json.dumps(r) and "User likes Rust" in json.dumps(r)
    ]
    assert len(bob) == 1 and len(alice) == 1
    assert contents(hm, "alice") == contents(hm, "bob") == ["User likes Rust"]


def test_headroom_router_sync_stream(
    router: litellm.Router, hm: HierarchicalMemory, contents: Contents
) -> None:
    wrapped = hl.HeadroomRouter(router, memory=hm)
    stream = wrapped.completion(
        model="chat", messages=ASK, stream=True, user_id="alice", session_id="s1"
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    assert text == VISIBLE
    assert contents(hm, "alice") == ["User likes Rust"]


async def test_headroom_router_async_stream(
    router: litellm.Router, hm: HierarchicalMemory, contents: Contents
) -> None:
    wrapped = hl.HeadroomRouter(router, memory=hm, user_id="alice")
    stream = await wrapped.acompletion(model="chat", messages=ASK, stream=True)
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
    assert text == VISIBLE
    assert contents(hm, "alice") == ["User likes Rust"]
    out = await wrapped.acompletion(model="chat", messages=ASK)
    assert out.choices[0].message.content == VISIBLE


def _chunks(pieces: list[str], index: int = 0) -> list[dict[str, Any]]:
    chunks: list[dict[str, Any]] = [
        {
            "choices": [
                {
                    "index": index,
                    "delta": {"role": "assistant", "content": p},
                    "finish_reason": None,
                }
            ]
        }
        for p in pieces
    ]
    chunks.append({"choices": [{"index": index, "delta": {}, "finish_reason": "stop"}]})
    return chunks


def test_stripper_every_split_position() -> None:
    text = f"Hello <b>there</b>\n\n{REPLY} and after."
    from headroom.inline.extraction import strip_memory_blocks

    expected = strip_memory_blocks(text)
    assert "<memory" not in expected
    for i in range(1, len(text)):
        for j in (i + 1, i + 5):
            stripper = StreamStripper()
            out = [stripper.process(c) for c in _chunks([text[:i], text[i:j], text[j:]])]
            shown = "".join(c["choices"][0]["delta"].get("content") or "" for c in out)
            assert shown == expected, (i, j)
            assert [m.content for m in stripper.items] == ["User likes Rust"]
            assert stripper.tail_chunks() == []


def test_stripper_flushes_tail_without_finish_reason() -> None:
    stripper = StreamStripper()
    pieces = ["Answer <", "mem"]  # ends on a possible tag: held back until the end
    out = [stripper.process({"choices": [{"index": 0, "delta": {"content": p}}]}) for p in pieces]
    assert "".join(c["choices"][0]["delta"]["content"] for c in out) == "Answer"
    tails = stripper.tail_chunks()
    assert [t["choices"][0]["delta"]["content"] for t in tails] == [" <mem"]


def test_stripper_several_choices_and_tool_calls() -> None:
    stripper = StreamStripper()
    a = _chunks(["One <memo", 'ry>["A fact"]</memory>'], index=0)
    b = _chunks(["Two <memory>", '["B fact"]</mem', "ory>"], index=1)
    tool: dict[str, Any] = {
        "choices": [
            {
                "index": 0,
                "delta": {"content": None, "tool_calls": [{"id": "t"}]},
                "finish_reason": None,
            }
        ]
    }
    shown: dict[int, str] = {0: "", 1: ""}
    for chunk in [a[0], b[0], tool, a[1], b[1], b[2], a[2], b[3]]:
        for choice in stripper.process(chunk)["choices"]:
            shown[choice["index"]] += choice["delta"].get("content") or ""
    assert shown == {0: "One", 1: "Two"}
    assert tool["choices"][0]["delta"]["content"] is None
    assert [m.content for m in stripper.items] == ["A fact"]  # facts of the first choice are stored
