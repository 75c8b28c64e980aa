"""The inline memory protocol, shared by ``with_memory`` and every framework integration.

- :mod:`~headroom.inline.extraction`: parse and strip the ``<memory>`` block a model writes
  (whole replies and streams);
- :mod:`~headroom.inline.injection`: render the visible memories and the extraction instruction
  into the request's messages, within a token budget;
- :mod:`~headroom.inline.memory`: :class:`InlineMemory`, the inject/call/extract/store cycle.
"""

from __future__ import annotations

from headroom.inline.extraction import (
    MEMORY_TAG,
    ExtractedMemory,
    StreamingMemoryStripper,
    parse_memory_items,
    split_memory_block,
    strip_memory_blocks,
)
from headroom.inline.injection import (
    CONTEXT_TAG,
    EXTRACTION_INSTRUCTION,
    INSTRUCTION_MARKER,
    InjectedMemory,
    estimate_tokens,
    last_user_text,
    prepare_messages,
    render_memory_context,
)
from headroom.inline.memory import InlineMemory, PreparedRequest

__all__ = [
    "CONTEXT_TAG",
    "EXTRACTION_INSTRUCTION",
    "INSTRUCTION_MARKER",
    "MEMORY_TAG",
    "ExtractedMemory",
    "InjectedMemory",
    "InlineMemory",
    "PreparedRequest",
    "StreamingMemoryStripper",
    "estimate_tokens",
    "last_user_text",
    "parse_memory_items",
    "prepare_messages",
    "render_memory_context",
    "split_memory_block",
    "strip_memory_blocks",
]
