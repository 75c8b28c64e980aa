"""Removing ``<memory>`` blocks from LiteLLM responses, complete or streamed.

Parsing is the core's (:class:`InlineMemory` / :class:`StreamingMemoryStripper`); this module only
walks LiteLLM's response objects. Every choice is stripped; the facts of the first choice (index 0)
are the ones stored.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from headroom.inline.extraction import ExtractedMemory, StreamingMemoryStripper, split_memory_block

__all__ = ["StreamStripper", "strip_response"]

logger = logging.getLogger(__name__)


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _set(obj: Any, name: str, value: Any) -> None:
    if isinstance(obj, dict):
        obj[name] = value
    else:
        setattr(obj, name, value)


def strip_response(response: Any) -> list[ExtractedMemory] | None:
    """Strip every choice's message content in place; return the first choice's items.

    Returns ``None`` when ``response`` is not a chat completion (nothing was looked at).
    """
    choices = _get(response, "choices")
    if not isinstance(choices, list):
        return None
    stored: list[ExtractedMemory] = []
    for position, choice in enumerate(choices):
        message = _get(choice, "message")
        if message is None:
            continue
        content = _get(message, "content")
        if not isinstance(content, str):
            continue
        visible, items = split_memory_block(content)
        if visible != content:
            _set(message, "content", visible)
        index = _get(choice, "index")
        if (index if isinstance(index, int) else position) == 0:
            stored = items
    return stored


class StreamStripper:
    """Strip streamed chat chunks (LiteLLM ``ModelResponseStream`` or OpenAI-shaped dicts).

    One core :class:`StreamingMemoryStripper` per choice index. :meth:`process` edits a chunk's
    ``delta.content`` in place; when a choice finishes (``finish_reason`` set) its held-back text
    is flushed into that chunk. :meth:`tail_chunks` returns synthetic chunks for choices that
    ended without a ``finish_reason``. :attr:`items` are the facts of choice 0.
    """

    def __init__(self) -> None:
        self._strippers: dict[int, StreamingMemoryStripper] = {}
        self._last: Any = None

    def _stripper(self, index: int) -> StreamingMemoryStripper:
        stripper = self._strippers.get(index)
        if stripper is None:
            stripper = self._strippers[index] = StreamingMemoryStripper()
        return stripper

    @property
    def items(self) -> list[ExtractedMemory]:
        first = self._strippers.get(0)
        return list(first.items) if first is not None else []

    def process(self, chunk: Any) -> Any:
        """Strip ``chunk`` in place and return it (never raises on unexpected shapes)."""
        choices = _get(chunk, "choices")
        if not isinstance(choices, list):
            return chunk
        self._last = chunk
        for position, choice in enumerate(choices):
            index = _get(choice, "index")
            index = index if isinstance(index, int) else position
            delta = _get(choice, "delta")
            content = _get(delta, "content") if delta is not None else None
            stripper = self._stripper(index)
            if stripper.finished:
                continue
            out = stripper.feed(content) if isinstance(content, str) else ""
            if _get(choice, "finish_reason"):
                out += stripper.finish()
            if delta is not None and (isinstance(content, str) or out):
                _set(delta, "content", out)
        return chunk

    def tail_chunks(self) -> list[Any]:
        """Finish every open choice; one chunk per choice whose held-back text is not empty."""
        tails: list[Any] = []
        for index, stripper in sorted(self._strippers.items()):
            if stripper.finished:
                continue
            text = stripper.finish()
            if text and self._last is not None:
                tails.append(_text_chunk(self._last, index, text))
        return tails


def _text_chunk(template: Any, index: int, text: str) -> Any:
    """A chunk like ``template`` holding only ``text`` for choice ``index``."""
    chunk = (
        template.model_copy(deep=True)
        if hasattr(template, "model_copy")
        else copy.deepcopy(template)
    )
    choices = _get(chunk, "choices") or []
    keep = []
    for position, choice in enumerate(choices):
        choice_index = _get(choice, "index")
        if (choice_index if isinstance(choice_index, int) else position) == index:
            keep.append(choice)
    if not keep:
        return chunk
    choice = keep[0]
    _set(choice, "finish_reason", None)
    delta = _get(choice, "delta")
    if delta is not None:
        _set(delta, "content", text)
        for name in ("tool_calls", "function_call"):
            if _get(delta, name) is not None:
                _set(delta, name, None)
    _set(chunk, "choices", [choice])
    return chunk


def strip_sync_stream(
    stream: Iterator[Any], on_done: Callable[[StreamStripper], None]
) -> Iterator[Any]:
    """Yield ``stream``'s chunks stripped; call ``on_done`` once the stream is exhausted."""
    stripper = StreamStripper()
    for chunk in stream:
        yield stripper.process(chunk)
    yield from stripper.tail_chunks()
    on_done(stripper)


async def strip_async_stream(
    stream: AsyncIterator[Any], on_done: Callable[[StreamStripper], Any]
) -> AsyncIterator[Any]:
    """Async twin of :func:`strip_sync_stream`; ``on_done`` may be a coroutine function."""
    stripper = StreamStripper()
    async for chunk in stream:
        yield stripper.process(chunk)
    for tail in stripper.tail_chunks():
        yield tail
    result = on_done(stripper)
    if hasattr(result, "__await__"):
        await result
