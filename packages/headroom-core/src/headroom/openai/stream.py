"""Streaming support for ``with_memory``: strip ``<memory>`` blocks chunk by chunk, store at the end.

:class:`MemoryStream` / :class:`AsyncMemoryStream` wrap the provider's stream (openai's ``Stream`` /
``AsyncStream`` or any iterator of chunks shaped like ``ChatCompletionChunk``, objects or dicts).
They yield the provider's own chunk objects with ``choices[i].delta.content`` replaced by the
visible text (one :class:`StreamingMemoryStripper` per choice index), attach the held-back tail to
the chunk that finishes a choice (or to a copy of the last chunk at the end of the stream), and
store the extracted items once the stream is exhausted or closed. Chunks whose only payload was
hidden text are skipped.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Any

from headroom.inline.extraction import ExtractedMemory, StreamingMemoryStripper
from headroom.inline.memory import InlineMemory, PreparedRequest

__all__ = ["AsyncMemoryStream", "MemoryStream", "get_field", "set_field"]

logger = logging.getLogger(__name__)

_DELTA_PAYLOAD = ("role", "tool_calls", "function_call", "refusal", "audio")


def get_field(obj: Any, name: str) -> Any:
    """``obj[name]`` for mappings, ``obj.name`` otherwise (None when missing)."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def set_field(obj: Any, name: str, value: Any) -> None:
    if isinstance(obj, dict):
        obj[name] = value
    else:
        setattr(obj, name, value)


def copy_object(obj: Any) -> Any:
    """A deep copy of a pydantic model (``model_copy``) or any other object."""
    if hasattr(obj, "model_copy"):
        return obj.model_copy(deep=True)
    return copy.deepcopy(obj)


class _StreamState:
    """The per-choice strippers of one stream and what is left to emit at its end."""

    def __init__(self, inline: InlineMemory, prepared: PreparedRequest) -> None:
        self.inline = inline
        self.prepared = prepared
        self.strippers: dict[int, StreamingMemoryStripper] = {}
        self.templates: dict[int, tuple[Any, Any]] = {}  # index -> (chunk, choice) last seen
        self.finalized = False
        self.stored: list[Any] = []

    def _stripper(self, index: int) -> StreamingMemoryStripper:
        stripper = self.strippers.get(index)
        if stripper is None or stripper.finished:
            if stripper is not None:  # content after the finish chunk: keep its items, restart
                logger.debug("content for choice %d after its finish_reason", index)
            stripper = self.strippers[index] = _carry_over(stripper)
        return stripper

    def rewrite(self, chunk: Any) -> bool:
        """Strip the chunk's content in place; False if nothing visible is left in it."""
        choices = get_field(chunk, "choices") or []
        if not choices:
            return True
        keep = False
        for choice in choices:
            index = get_field(choice, "index") or 0
            self.templates[index] = (chunk, choice)
            delta = get_field(choice, "delta")
            content = get_field(delta, "content") if delta is not None else None
            finish = get_field(choice, "finish_reason")
            if isinstance(content, str):
                stripper = self._stripper(index)
                out = stripper.feed(content)
                if finish is not None:
                    out += stripper.finish()
                set_field(delta, "content", out)
                keep = keep or bool(out) or content == ""
            elif finish is not None and index in self.strippers:
                tail = self.strippers[index].finish()
                if tail and delta is not None:
                    set_field(delta, "content", tail)
            if finish is not None or (delta is not None and _has_payload(delta)):
                keep = True
            if get_field(choice, "logprobs") is not None:
                keep = True
        return keep or get_field(chunk, "usage") is not None

    def tails(self) -> Iterator[Any]:
        """Copies of the last chunk carrying each unfinished choice's held-back text."""
        for index in sorted(self.strippers):
            stripper = self.strippers[index]
            tail = stripper.finish()
            if not tail or index not in self.templates:
                continue
            chunk, choice = self.templates[index]
            extra_chunk, extra_choice = copy_object(chunk), copy_object(choice)
            delta = get_field(extra_choice, "delta")
            if delta is None:
                continue
            for name in _DELTA_PAYLOAD:
                if isinstance(delta, dict):
                    delta.pop(name, None)
                elif getattr(delta, name, None) is not None:
                    setattr(delta, name, None)
            set_field(delta, "content", tail)
            set_field(extra_choice, "finish_reason", None)
            set_field(extra_chunk, "choices", [extra_choice])
            if get_field(extra_chunk, "usage") is not None:
                set_field(extra_chunk, "usage", None)
            yield extra_chunk

    def items(self) -> list[ExtractedMemory]:
        for index in sorted(self.strippers):
            if self.strippers[index].items:
                return list(self.strippers[index].items)
        return []

    def visible_text(self, index: int = 0) -> str:
        stripper = self.strippers.get(index)
        return stripper.text if stripper is not None else ""


def _carry_over(previous: StreamingMemoryStripper | None) -> StreamingMemoryStripper:
    stripper = StreamingMemoryStripper()
    if previous is not None:
        stripper.items.extend(previous.items)
    return stripper


def _has_payload(delta: Any) -> bool:
    return any(get_field(delta, name) for name in _DELTA_PAYLOAD)


class _StreamBase:
    def __init__(self, stream: Any, inline: InlineMemory, prepared: PreparedRequest) -> None:
        self._stream = stream
        self._state = _StreamState(inline, prepared)
        self._pending: list[Any] = []
        self._exhausted = False
        self._it: Any = None

    @property
    def response(self) -> Any:
        """The provider stream's HTTP response (openai ``Stream.response``), if it has one."""
        return getattr(self._stream, "response", None)

    @property
    def stored(self) -> list[Any]:
        """The memories stored from this stream (set once it ended)."""
        return self._state.stored

    @property
    def finalized(self) -> bool:
        return self._state.finalized

    def visible_text(self, index: int = 0) -> str:
        """The visible text of choice ``index`` emitted so far."""
        return self._state.visible_text(index)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._stream, name)


class MemoryStream(_StreamBase):
    """A synchronous stream of chunks with the ``<memory>`` block removed (see the module doc)."""

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        while True:
            if self._pending:
                return self._pending.pop(0)
            if self._exhausted:
                raise StopIteration
            try:
                chunk = next(self._iterator())
            except StopIteration:
                self._exhausted = True
                self._pending.extend(self._state.tails())
                self._finalize()
                continue
            if self._state.rewrite(chunk):
                return chunk

    def _iterator(self) -> Iterator[Any]:
        if self._it is None:
            self._it = iter(self._stream)
        return self._it  # type: ignore[no-any-return]

    def _finalize(self) -> None:
        state = self._state
        if state.finalized:
            return
        state.finalized = True
        try:
            state.stored = state.inline.store(state.items(), state.prepared.refs)
        except Exception:
            logger.exception("headroom: storing memories from a stream failed")

    def close(self) -> None:
        """Store what was extracted so far and close the provider stream."""
        self._finalize()
        closer = getattr(self._stream, "close", None)
        if callable(closer):
            closer()

    def __enter__(self) -> MemoryStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncMemoryStream(_StreamBase):
    """The asynchronous twin of :class:`MemoryStream` (``async for chunk in stream``)."""

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        while True:
            if self._pending:
                return self._pending.pop(0)
            if self._exhausted:
                raise StopAsyncIteration
            try:
                chunk = await self._aiterator().__anext__()
            except StopAsyncIteration:
                self._exhausted = True
                self._pending.extend(self._state.tails())
                await self._finalize()
                continue
            if self._state.rewrite(chunk):
                return chunk

    def _aiterator(self) -> AsyncIterator[Any]:
        if self._it is None:
            self._it = self._stream.__aiter__()
        return self._it  # type: ignore[no-any-return]

    async def _finalize(self) -> None:
        state = self._state
        if state.finalized:
            return
        state.finalized = True
        try:
            state.stored = await state.inline.astore(state.items(), state.prepared.refs)
        except Exception:
            logger.exception("headroom: storing memories from a stream failed")

    async def close(self) -> None:
        """Store what was extracted so far and close the provider stream."""
        await self._finalize()
        closer = getattr(self._stream, "close", None)
        if callable(closer):
            result = closer()
            if hasattr(result, "__await__"):
                await result

    async def __aenter__(self) -> AsyncMemoryStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
