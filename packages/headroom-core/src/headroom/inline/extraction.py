"""Parsing the ``<memory>`` block a model appends to its answer, streaming or not.

The model answers normally and ends its reply with one block such as::

    <memory>{"memories": [{"content": "User prefers Python", "category": "preference"}]}</memory>

:func:`split_memory_block` removes every block from a finished reply and parses the items;
:class:`StreamingMemoryStripper` does the same incrementally, chunk by chunk, and emits exactly the
same visible text (``split_memory_block`` runs the stripper over the whole text).

Whitespace tidying, applied only where a block was removed: a run of blocks and the whitespace
around them is dropped at the start and at the end of the text, and replaced in the middle by one
blank line if that whitespace held a newline, one space if it held other whitespace, nothing
otherwise. Text without a block is returned unchanged.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from typing import Any

from headroom.memory.errors import ValidationError
from headroom.memory.models import MemoryCategory, ScopeLevel
from headroom.memory.validation import clean_text

__all__ = [
    "MEMORY_TAG",
    "ExtractedMemory",
    "StreamingMemoryStripper",
    "parse_memory_items",
    "split_memory_block",
    "strip_memory_blocks",
]

logger = logging.getLogger(__name__)

MEMORY_TAG = "memory"

_MAX_ATTRS = 200
_OPEN_RE = re.compile(rf"<{MEMORY_TAG}(?:[ \t][^<>\n]{{0,{_MAX_ATTRS}}})?>", re.IGNORECASE)
_OPEN_PREFIX = f"<{MEMORY_TAG}"
_MAX_OPEN_LEN = len(_OPEN_PREFIX) + 1 + _MAX_ATTRS + 1
_CLOSE_RE = re.compile(rf"</{MEMORY_TAG}\s{{0,32}}>", re.IGNORECASE)
_MAX_CLOSE_LEN = len(_OPEN_PREFIX) + 1 + 32 + 1
_FENCE_RE = re.compile(r"^```[A-Za-z0-9_-]*|```$")
_TRAILING_COMMA_RE = re.compile(r",\s*([}\]])")
_ACCEPTED_SCOPES = {s.value: s for s in (ScopeLevel.USER, ScopeLevel.SESSION, ScopeLevel.AGENT)}
_CONTENT_KEYS = ("content", "text", "fact", "memory")


@dataclass(frozen=True)
class ExtractedMemory:
    """One fact the model asked to remember; unset fields are left to the caller's defaults."""

    content: str
    category: MemoryCategory | None = None
    importance: float | None = None
    scope: ScopeLevel | None = None
    supersedes: str | None = None
    """The short reference (``"m2"``) of an injected memory that this fact replaces."""
    entities: tuple[str, ...] = ()


def parse_memory_items(payload: str) -> list[ExtractedMemory]:
    """Parse the JSON inside a ``<memory>`` block; malformed input gives ``[]``, never an error.

    Accepts ``{"memories": [...]}``, a bare list, or a single item object; items are objects
    (``content``/``text``/``fact``, ``category``, ``importance``, ``scope``, ``supersedes``,
    ``entities``) or plain strings. Invalid fields are dropped, importance is clamped to 0..1,
    empty items are dropped and duplicates (same normalised content) are kept once.
    """
    if not isinstance(payload, str):
        return []
    try:
        data = _loads(_strip_fences(payload))
    except (ValueError, RecursionError, TypeError) as exc:
        logger.debug("unparseable memory block (%s): %r", exc, payload[:200])
        return []
    if isinstance(data, dict):
        raw_items: Any = data.get("memories")
        if raw_items is None and any(k in data for k in _CONTENT_KEYS):
            raw_items = [data]
    else:
        raw_items = data
    if not isinstance(raw_items, list):
        logger.debug("memory block holds no list of items: %r", payload[:200])
        return []
    items: list[ExtractedMemory] = []
    seen: set[str] = set()
    for raw in raw_items:
        try:
            item = _parse_item(raw)
        except Exception as exc:
            logger.debug("skipping unparseable memory item (%s): %r", exc, raw)
            continue
        _add_unique(items, seen, item)
    return items


def _add_unique(items: list[ExtractedMemory], seen: set[str], item: ExtractedMemory | None) -> None:
    if item is not None and (key := _normalise(item.content)) not in seen:
        seen.add(key)
        items.append(item)


def _strip_fences(payload: str) -> str:
    return _FENCE_RE.sub("", payload.strip()).strip()


def _loads(text: str) -> Any:
    if not text:
        raise ValueError("empty block")
    decoder = json.JSONDecoder()
    error: ValueError = ValueError("no JSON value")
    for candidate in dict.fromkeys([text, _TRAILING_COMMA_RE.sub(r"\1", text)]):
        try:
            return json.loads(candidate)
        except ValueError as exc:
            error = exc
        starts = [i for i in (candidate.find("{"), candidate.find("[")) if i >= 0]
        if starts:
            try:
                return decoder.raw_decode(candidate[min(starts) :])[0]
            except ValueError as exc:
                error = exc
    raise error


def _parse_item(raw: Any) -> ExtractedMemory | None:
    if isinstance(raw, str):
        content = clean_text(raw).strip()
        return ExtractedMemory(content=content) if content else None
    if not isinstance(raw, dict):
        logger.debug("skipping memory item of type %s", type(raw).__name__)
        return None
    content = ""
    for key in _CONTENT_KEYS:
        value = raw.get(key)
        if isinstance(value, str) and value.strip():
            content = clean_text(value).strip()
            break
    if not content:
        return None
    return ExtractedMemory(
        content=content,
        category=_category(raw.get("category")),
        importance=_importance(raw.get("importance")),
        scope=_scope(raw.get("scope")),
        supersedes=_reference(raw.get("supersedes")),
        entities=_entities(raw.get("entities")),
    )


def _category(value: Any) -> MemoryCategory | None:
    if not isinstance(value, str):
        return None
    try:
        return MemoryCategory.parse(value)
    except ValidationError:
        logger.debug("dropping unknown memory category %r", value)
        return None


def _importance(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int):  # may be too large for a float
        return float(min(1, max(0, value)))
    if not isinstance(value, float) or not math.isfinite(value):
        return None
    return min(1.0, max(0.0, value))


def _scope(value: Any) -> ScopeLevel | None:
    return _ACCEPTED_SCOPES.get(value.strip().lower()) if isinstance(value, str) else None


def _reference(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"m{value}"
    ref = value.strip().strip("[]()").strip().lower() if isinstance(value, str) else ""
    return ref or None


def _entities(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return ()
    return tuple(
        dict.fromkeys(clean_text(e).strip() for e in value if isinstance(e, str) and e.strip())
    )


def _normalise(content: str) -> str:
    return " ".join(content.casefold().split()).rstrip(".!")


def split_memory_block(text: str | None) -> tuple[str, list[ExtractedMemory]]:
    """Remove every ``<memory>`` block from ``text``; return the visible text and parsed items.

    ``None`` (a tool-call reply) gives ``("", [])``: callers that must keep ``None`` check it first.
    """
    if text is None:
        return "", []
    if _OPEN_RE.search(text) is None:
        return text, []
    stripper = StreamingMemoryStripper()
    visible = stripper.feed(text) + stripper.finish()
    return visible, stripper.items


def strip_memory_blocks(text: str) -> str:
    """The visible text of ``text`` with every ``<memory>`` block removed."""
    return split_memory_block(text)[0]


class StreamingMemoryStripper:
    """Remove ``<memory>`` blocks from a streamed reply, chunk by chunk.

    :meth:`feed` returns the text that is safe to show now; it holds back only what may still turn
    out to be an opening tag (``"<"``, ``"<mem"``, ``"<memory type=..."``), the inside of a block,
    and trailing whitespace that is dropped if a block follows it. :meth:`finish` flushes the rest.
    The concatenated output equals ``strip_memory_blocks(full_text)`` for any chunking.
    """

    def __init__(self) -> None:
        self._buf = ""  # unprocessed text outside a block: a possible partial opening tag
        self._block: str | None = None  # the raw content of the open block, if inside one
        self._pending_ws = ""  # whitespace after the last visible character, held back
        self._started = False  # a visible non-whitespace character was emitted
        self._region = False  # a block was removed since the last visible character
        self._region_ws = False
        self._region_nl = False
        self._finished = False
        self._out: list[str] = []
        self._emitted: list[str] = []
        self._seen: set[str] = set()
        self.raw_blocks: list[str] = []  # raw content of each removed block (unterminated too)
        self.items: list[ExtractedMemory] = []  # parsed items of all blocks, deduplicated

    @property
    def text(self) -> str:
        """All visible text emitted so far."""
        return "".join(self._emitted)

    @property
    def finished(self) -> bool:
        return self._finished

    def feed(self, chunk: str) -> str:
        """Consume ``chunk``; return the visible text that can be emitted now (may be ``""``)."""
        if self._finished:
            raise ValidationError("StreamingMemoryStripper.feed() called after finish()")
        self._out = []
        if chunk:
            self._buf += chunk
            self._run(final=False)
        return self._flush()

    def finish(self) -> str:
        """End of stream: return the held-back visible text and parse an unterminated block."""
        if self._finished:
            return ""
        self._out = []
        if self._block is not None:
            logger.debug("unterminated memory block at end of stream")
            self._close_block(self._block)
            self._block = None
        else:
            self._run(final=True)
        if not self._region:
            self._out.append(self._pending_ws)
        self._pending_ws = ""
        self._finished = True
        return self._flush()

    def _flush(self) -> str:
        out = "".join(self._out)
        self._out = []
        if out:
            self._emitted.append(out)
        return out

    def _run(self, *, final: bool) -> None:
        buf, self._buf = self._buf, ""
        pos = 0
        while pos < len(buf):
            if self._block is not None:
                searched = max(0, len(self._block) - _MAX_CLOSE_LEN)
                self._block += buf[pos:]
                pos = len(buf)
                close = _CLOSE_RE.search(self._block, searched)
                if close is None:
                    return
                buf, pos = self._block[close.end() :], 0
                self._close_block(self._block[: close.start()])
                self._block = None
                continue
            lt = buf.find("<", pos)
            if lt < 0:
                self._plain(buf[pos:])
                return
            self._plain(buf[pos:lt])
            opening = _OPEN_RE.match(buf, lt)
            if opening is not None:
                self._open_block()
                self._block = ""
                pos = opening.end()
            elif not final and _may_open(buf, lt):
                self._buf = buf[lt:]
                return
            else:
                self._plain("<")
                pos = lt + 1

    def _plain(self, text: str) -> None:
        if not text:
            return
        body = text.rstrip()
        if not body:
            self._whitespace(text)
            return
        lead = len(body) - len(body.lstrip())
        self._whitespace(body[:lead])
        if self._region:
            if self._started:
                self._out.append("\n\n" if self._region_nl else " " if self._region_ws else "")
            self._region = self._region_ws = self._region_nl = False
        else:
            self._out.append(self._pending_ws)
        self._pending_ws = ""
        self._out.append(body[lead:])
        self._started = True
        self._whitespace(text[len(body) :])

    def _whitespace(self, ws: str) -> None:
        if not ws:
            return
        if self._region:
            self._region_ws = True
            self._region_nl = self._region_nl or "\n" in ws
        else:
            self._pending_ws += ws

    def _open_block(self) -> None:
        if not self._region:
            self._region = True
            self._region_ws = bool(self._pending_ws)
            self._region_nl = "\n" in self._pending_ws
            self._pending_ws = ""

    def _close_block(self, raw: str) -> None:
        self.raw_blocks.append(raw)
        for item in parse_memory_items(raw):
            _add_unique(self.items, self._seen, item)


def _may_open(buf: str, lt: int) -> bool:
    """Whether ``buf[lt:]`` (no complete opening tag) may become one when more text arrives."""
    rest = buf[lt:]
    if len(rest) >= _MAX_OPEN_LEN:
        return False
    if len(rest) <= len(_OPEN_PREFIX):
        return _OPEN_PREFIX.startswith(rest.lower())
    if rest[: len(_OPEN_PREFIX)].lower() != _OPEN_PREFIX or rest[len(_OPEN_PREFIX)] not in " \t":
        return False
    return not any(c in "<>\n" for c in rest[len(_OPEN_PREFIX) + 1 :])
