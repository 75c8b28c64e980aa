"""with_memory streaming (sync and async) through the real openai SDK, tags split at every position."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from headroom import with_memory
from headroom.inline.extraction import strip_memory_blocks
from headroom.memory import HierarchicalMemory
from headroom.testing.fake_openai import FakeOpenAIServer, split_text

BLOCK = '<memory>{"memories": [{"content": "User likes green tea"}]}</memory>'
REPLY = f"Sure, noted.\n\n{BLOCK}"
START = REPLY.index("<memory>")
SPLITS = list(range(START - 2, len(REPLY) + 1))
MESSAGES = [{"role": "user", "content": "I like green tea"}]


class Script:
    def __init__(self) -> None:
        self.reply: Any = REPLY

    def __call__(self, request: dict[str, Any]) -> Any:
        return self.reply


@pytest.fixture(scope="module")
def script() -> Script:
    return Script()


@pytest.fixture(scope="module")
def server(script: Script) -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(script) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _reset(server: FakeOpenAIServer, script: Script) -> None:
    server.chunk_size, server.split_points = 4, None
    script.reply = REPLY
    server.reset()


@pytest.fixture(scope="module")
def expected(server: FakeOpenAIServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The visible text of the same reply through the wrapper without streaming."""
    from headroom.memory import MemoryConfig
    from headroom.testing import HashEmbedder

    db = tmp_path_factory.mktemp("expected") / "m.db"
    client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
    with with_memory(
        client,
        "alice",
        config=MemoryConfig(db_path=db, vector_dimension=64),
        embedder=HashEmbedder(64),
    ) as w:
        text = w.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content
    assert text == "Sure, noted." == strip_memory_blocks(REPLY)
    return str(text)


def check_chunks(pieces: list[str]) -> None:
    for piece in pieces:
        assert "<" not in piece and ">" not in piece and "memor" not in piece and "{" not in piece


def test_split_text() -> None:
    assert split_text("abcdef", split_points=[2, 2, 9, 0]) == ["ab", "cdef"]
    assert split_text("abcde", chunk_size=2) == ["ab", "cd", "e"]
    assert split_text("abc") == ["abc"]


@pytest.mark.parametrize("split", SPLITS)
def test_sync_stream_split_at_every_position(
    server: FakeOpenAIServer, hm: HierarchicalMemory, expected: str, split: int
) -> None:
    server.chunk_size, server.split_points = None, [split, split + 3]
    w = with_memory(openai.OpenAI(base_url=server.base_url, api_key="test"), "alice", memory=hm)
    stream = w.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    check_chunks(pieces)
    assert "".join(pieces) == expected
    assert [m.content for m in w.memory.get_all()] == ["User likes green tea"]
    assert [m.content for m in stream.stored] == ["User likes green tea"]


@pytest.mark.parametrize("split", SPLITS[::3])
async def test_async_stream_split_at_every_position(
    server: FakeOpenAIServer, hm: HierarchicalMemory, expected: str, split: int
) -> None:
    server.chunk_size, server.split_points = None, [split, split + 1, split + 2]
    w = with_memory(
        openai.AsyncOpenAI(base_url=server.base_url, api_key="test"), "alice", memory=hm
    )
    stream = await w.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    check_chunks(pieces)
    assert "".join(pieces) == expected
    assert [m.content for m in w.memory.get_all()] == ["User likes green tea"]


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 7, 1000])
async def test_async_stream_chunk_sizes(
    server: FakeOpenAIServer, hm: HierarchicalMemory, expected: str, chunk_size: int
) -> None:
    server.chunk_size = chunk_size
    w = with_memory(
        openai.AsyncOpenAI(base_url=server.base_url, api_key="test"), "alice", memory=hm
    )
    async with await w.chat.completions.create(model="m", messages=MESSAGES, stream=True) as stream:
        pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    check_chunks(pieces)
    assert "".join(pieces) == expected
    assert stream.response.status_code == 200
    assert [m.content for m in w.memory.get_all()] == ["User likes green tea"]


def test_held_back_text_is_flushed_and_middle_block(
    server: FakeOpenAIServer, script: Script, hm: HierarchicalMemory
) -> None:
    script.reply = f"Before <mem trick and a trailing <\n\n{BLOCK}\n\nAfter <"
    server.chunk_size = 1
    w = with_memory(openai.OpenAI(base_url=server.base_url, api_key="test"), "alice", memory=hm)
    with w.chat.completions.create(model="m", messages=MESSAGES, stream=True) as stream:
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert (
        text == strip_memory_blocks(script.reply) == "Before <mem trick and a trailing <\n\nAfter <"
    )
    assert stream.visible_text() == text


def test_stream_with_usage_several_choices_and_tool_calls(
    server: FakeOpenAIServer, script: Script, hm: HierarchicalMemory
) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    script.reply = {"choices": [REPLY, "Other choice.", {"content": None, "tool_calls": [call]}]}
    server.chunk_size = 3
    w = with_memory(openai.OpenAI(base_url=server.base_url, api_key="test"), "alice", memory=hm)
    stream = w.chat.completions.create(
        model="m", messages=MESSAGES, stream=True, n=3, stream_options={"include_usage": True}
    )
    texts: dict[int, str] = {}
    tool_names: list[str] = []
    usage = None
    finish: dict[int, str] = {}
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
            tool_names += [t.function.name for t in choice.delta.tool_calls or [] if t.function]
            if choice.finish_reason:
                finish[choice.index] = choice.finish_reason
    assert texts[0] == "Sure, noted." and texts[1] == "Other choice." and texts.get(2, "") == ""
    assert tool_names == ["f"] and finish == {0: "stop", 1: "stop", 2: "tool_calls"}
    assert usage is not None and usage.total_tokens > 0
    assert [m.content for m in w.memory.get_all()] == ["User likes green tea"]


def test_closing_a_stream_early_stores_completed_blocks(
    server: FakeOpenAIServer, script: Script, hm: HierarchicalMemory
) -> None:
    script.reply = f"{BLOCK} and a long answer that the caller stops reading"
    server.chunk_size = 200
    w = with_memory(openai.OpenAI(base_url=server.base_url, api_key="test"), "alice", memory=hm)
    stream = w.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    first = next(c for c in stream if c.choices and c.choices[0].delta.content)
    assert first.choices[0].delta.content.startswith("and a long answer")
    stream.close()
    assert stream.finalized and [m.content for m in w.memory.get_all()] == ["User likes green tea"]


def test_scripted_assistant_conversation(hm: HierarchicalMemory) -> None:
    """The default responder: states a preference, recalls it, supersedes it (used by the demo)."""
    with FakeOpenAIServer() as server:
        w = with_memory(openai.OpenAI(base_url=server.base_url, api_key="test"), "bob", memory=hm)
        first = w.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "I prefer Python for backend work."}]
        )
        assert "User prefers Python for backend work" in first.choices[0].message.content
        assert "<memory>" not in first.choices[0].message.content
        stream = w.chat.completions.create(
            model="m",
            stream=True,
            messages=[{"role": "user", "content": "I now prefer Rust for backend work."}],
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert "update" in text and "<" not in text
        [current] = w.memory.get_all()
        assert current.content == "User prefers Rust for backend work"
        assert [m.content for m in w.memory.history(current.id)] == [
            "User prefers Python for backend work",
            "User prefers Rust for backend work",
        ]
        answer = w.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Which language for backend work?"}]
        )
        assert "User prefers Rust for backend work" in answer.choices[0].message.content
        plain = openai.OpenAI(base_url=server.base_url, api_key="test")
        reply = plain.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "I like tea."}]
        )
        assert "<memory>" not in reply.choices[0].message.content  # no instruction, no block
