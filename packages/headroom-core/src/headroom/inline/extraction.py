"""Parsing the ``<memory>`` block a model appends to its answer, streaming or not.

The model answers normally and ends its reply with one block such as::

    <memory>{"memories": [{"content": "User prefers Python", "category": "preference"}]}</memory>

:func:`split_memory_block` removes every block from a finished reply and parses the items;
:class:`StreamingMemoryStripper` does the same incrementally, chunk by chunk, and emits exactly the
same visible text (``split_memory_block`` runs the stripper over the whole text). Work is linear
in the length of the reply for any chunking.

The grammar (tags are case-insensitive):

* An opening tag is ``<memory>`` or ``<memory`` + space/tab + up to 200 attribute characters
  (no ``<``, ``>`` or newline) + ``>``; a closing tag is ``</memory>`` with optional spaces/tabs
  before the ``>``.
* A block runs from an opening tag to the first closing tag *outside a JSON string* (``"..."``
  with backslash escapes), so ``{"content": "the </memory> tag"}`` stays whole. An opening tag
  outside a string inside a block ends that block and starts the next one.
* If a block has no closing tag outside a string before the end of the reply, its JSON was
  malformed: it ends at the first closing tag inside it instead, and from there on blocks end at
  their first closing tag (strings no longer count). A block never closed at all runs to the end.
* A closing tag outside any block is removed too (with no items): visible text never contains a
  tag, so stripping the visible text again changes nothing.

Whitespace tidying, applied only where blocks or tags were removed: a run of them and the
whitespace around them is dropped at the start and at the end of the text, and replaced in the
middle by one blank line if that whitespace held a newline, one space if it held other whitespace,
nothing otherwise; but a newline if the text before it ends in what could start a tag (``<mem``),
so the two sides never join into a new tag. Text without a tag is returned unchanged.
"""

from __future__ import annotations

import logging
import re

from headroom.inline.items import ExtractedMemory, add_unique, parse_memory_items
from headroom.memory.errors import ValidationError

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
_MAX_CLOSE_WS = 32
_OPEN_RE = re.compile(rf"<{MEMORY_TAG}(?:[ \t][^<>\n]{{0,{_MAX_ATTRS}}})?>", re.IGNORECASE)
_CLOSE_RE = re.compile(rf"</{MEMORY_TAG}[ \t]{{0,{_MAX_CLOSE_WS}}}>", re.IGNORECASE)
_OPEN_PREFIX = f"<{MEMORY_TAG}"
_CLOSE_PREFIX = f"</{MEMORY_TAG}"
_MAX_TAG_LEN = len(_OPEN_PREFIX) + 1 + _MAX_ATTRS + 1
_IN_STRING = re.compile(r'["\\<]')
_OUT_STRING = re.compile(r'["<]')


def split_memory_block(text: str | None) -> tuple[str, list[ExtractedMemory]]:
    """Remove every ``<memory>`` block from ``text``; return the visible text and parsed items.

    ``None`` (a tool-call reply) gives ``("", [])``: callers that must keep ``None`` check it first.
    """
    if text is None:
        return "", []
    if not isinstance(text, str):
        raise ValidationError(f"text must be a string, got {type(text).__name__}")
    if _OPEN_RE.search(text) is None and _CLOSE_RE.search(text) is None:
        return text, []
    stripper = StreamingMemoryStripper()
    visible = stripper.feed(text) + stripper.finish()
    return visible, stripper.items


def strip_memory_blocks(text: str) -> str:
    """The visible text of ``text`` with every ``<memory>`` block removed."""
    return split_memory_block(text)[0]


def _may_tag(buf: str, lt: int) -> bool:
    """Whether ``buf[lt:]`` (no complete tag at ``lt``) may become a tag when more text arrives."""
    if len(buf) - lt >= _MAX_TAG_LEN:
        return False
    return _is_tag_prefix(buf[lt:])


def _is_tag_prefix(rest: str) -> bool:
    """Whether some opening or closing tag starts with ``rest`` (which starts with ``<``)."""
    low = rest.lower()
    n_open, n_close = len(_OPEN_PREFIX), len(_CLOSE_PREFIX)
    if _OPEN_PREFIX.startswith(low) or _CLOSE_PREFIX.startswith(low):
        return True
    if low.startswith(_OPEN_PREFIX) and low[n_open] in " \t":
        return len(rest) < _MAX_TAG_LEN and not any(c in "<>\n" for c in rest[n_open + 1 :])
    if low.startswith(_CLOSE_PREFIX):
        tail = rest[n_close:]
        return len(tail) <= _MAX_CLOSE_WS and all(c in " \t" for c in tail)
    return False


class StreamingMemoryStripper:
    """Remove ``<memory>`` blocks from a streamed reply, chunk by chunk.

    :meth:`feed` returns the text that is safe to show now; it holds back only what may still turn
    out to be a tag (``"<"``, ``"<mem"``, ``"<memory type=..."``), the inside of a block, and
    trailing whitespace that is dropped if a block follows it. :meth:`finish` flushes the rest.
    The concatenated output equals ``strip_memory_blocks(full_text)`` for any chunking.
    """

    def __init__(self) -> None:
        self._buf = ""  # held back: a possible partial tag (at most one tag long)
        self._block: list[str] | None = None  # raw parts of the open block, if inside one
        self._block_len = 0
        self._in_str = False  # inside a JSON string of the open block
        self._esc = False  # the previous character was a backslash inside a string
        self._str_close: tuple[int, int] | None = None  # first closing tag inside a string
        self._legacy = False  # after a malformed block: blocks end at their first closing tag
        self._pending_ws: list[str] = []  # whitespace after the last visible character
        self._pending_nl = False
        self._started = False  # a visible non-whitespace character was emitted
        self._region = False  # a block or tag was removed since the last visible character
        self._region_ws = False
        self._region_nl = False
        self._finished = False
        self._out: list[str] = []
        self._emitted: list[str] = []
        self._tail = ""  # the last characters emitted (to keep removals from forming tags)
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
        if chunk is not None and not isinstance(chunk, str):
            raise ValidationError(f"chunk must be a string, got {type(chunk).__name__}")
        if chunk:
            buf, self._buf = self._buf + chunk, ""
            self._run(buf, final=False)
        return self._flush()

    def finish(self) -> str:
        """End of stream: return the held-back visible text and parse an unterminated block."""
        if self._finished:
            return ""
        buf, self._buf = self._buf, ""
        self._run(buf, final=True)
        if self._block is not None:
            raw = "".join(self._block)
            self._block = None
            if self._str_close is not None:
                start, end = self._str_close
                logger.debug("memory block never closed outside a JSON string; malformed JSON")
                self._close_block(raw[:start])
                self._legacy = True
                self._run(raw[end:], final=True)
                if self._block is not None:
                    self._close_block("".join(self._block))
                    self._block = None
            else:
                logger.debug("unterminated memory block at end of stream")
                self._close_block(raw)
        if not self._region:
            self._emit("".join(self._pending_ws))
        self._pending_ws = []
        self._finished = True
        return self._flush()

    # -- internals -------------------------------------------------------------------------------

    def _emit(self, text: str) -> None:
        if text:
            self._out.append(text)
            self._tail = (self._tail + text)[-_MAX_TAG_LEN:]

    def _flush(self) -> str:
        out = "".join(self._out)
        self._out = []
        if out:
            self._emitted.append(out)
        return out

    def _run(self, buf: str, *, final: bool) -> None:
        pos = 0
        n = len(buf)
        while pos < n:
            if self._block is not None:
                pos = self._scan_block(buf, pos, final)
                if pos < 0:
                    return
                continue
            lt = buf.find("<", pos)
            if lt < 0:
                self._plain(buf[pos:])
                return
            self._plain(buf[pos:lt])
            if buf[lt + 1 : lt + 2] not in ("", "m", "M", "/"):  # cannot start a tag
                self._plain("<")
                pos = lt + 1
                continue
            opening = _OPEN_RE.match(buf, lt)
            if opening is not None:
                self._open_region()
                self._start_block()
                pos = opening.end()
                continue
            closing = _CLOSE_RE.match(buf, lt)
            if closing is not None:  # a stray closing tag: removed, nothing to parse
                self._open_region()
                pos = closing.end()
            elif not final and _may_tag(buf, lt):
                self._buf = buf[lt:]
                return
            else:
                self._plain("<")
                pos = lt + 1

    def _start_block(self) -> None:
        self._block = []
        self._block_len = 0
        self._in_str = self._esc = False
        self._str_close = None

    def _append(self, text: str) -> None:
        if text:
            assert self._block is not None
            self._block.append(text)
            self._block_len += len(text)

    def _scan_block(self, buf: str, pos: int, final: bool) -> int:
        """Consume block text from ``pos``; return where to continue, or -1 when ``buf`` is used."""
        n = len(buf)
        while pos < n:
            if self._esc:
                self._esc = False
                self._append(buf[pos])
                pos += 1
                continue
            found = (_IN_STRING if self._in_str else _OUT_STRING).search(buf, pos)
            if found is None:
                self._append(buf[pos:])
                return -1
            at = found.start()
            char = buf[at]
            if char != "<":
                self._append(buf[pos : at + 1])
                pos = at + 1
                if char == "\\":
                    self._esc = True
                elif not self._legacy:
                    self._in_str = not self._in_str
                continue
            self._append(buf[pos:at])
            closing = _CLOSE_RE.match(buf, at)
            opening = None if closing or self._in_str else _OPEN_RE.match(buf, at)
            if closing is None and opening is None:
                if not final and _may_tag(buf, at):
                    self._buf = buf[at:]
                    return -1
                self._append("<")
                pos = at + 1
            elif self._in_str:  # a closing tag inside a JSON string does not close the block
                if self._str_close is None:
                    end = self._block_len + closing.end() - at  # type: ignore[union-attr]
                    self._str_close = (self._block_len, end)
                self._append("<")
                pos = at + 1
            else:
                assert self._block is not None
                self._close_block("".join(self._block))
                self._block = None
                if opening is not None:  # an opening tag ends this block and starts the next
                    self._start_block()
                    return opening.end()
                return closing.end()  # type: ignore[union-attr]
        return -1

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
                sep = "\n\n" if self._region_nl else " " if self._region_ws else ""
                lt = self._tail.rfind("<")
                if sep != "\n\n" and lt >= 0 and _is_tag_prefix(self._tail[lt:]):
                    sep = "\n"  # the text before could join the text after into a tag
                self._emit(sep)
            self._region = self._region_ws = self._region_nl = False
        else:
            self._emit("".join(self._pending_ws))
        self._pending_ws = []
        self._pending_nl = False
        self._emit(body[lead:])
        self._started = True
        self._whitespace(text[len(body) :])

    def _whitespace(self, ws: str) -> None:
        if not ws:
            return
        if self._region:
            self._region_ws = True
            self._region_nl = self._region_nl or "\n" in ws
        else:
            self._pending_ws.append(ws)
            self._pending_nl = self._pending_nl or "\n" in ws

    def _open_region(self) -> None:
        if not self._region:
            self._region = True
            self._region_ws = bool(self._pending_ws)
            self._region_nl = self._pending_nl
            self._pending_ws = []
            self._pending_nl = False

    def _close_block(self, raw: str) -> None:
        self.raw_blocks.append(raw)
        for item in parse_memory_items(raw):
            add_unique(self.items, self._seen, item)
