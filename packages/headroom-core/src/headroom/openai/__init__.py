"""``with_memory`` for OpenAI-compatible clients (OpenAI, AsyncOpenAI, Azure, Groq-style).

:mod:`~headroom.openai.wrapper` wraps the client; :mod:`~headroom.openai.stream` strips the
``<memory>`` block from streamed chunks. The ``openai`` package itself is never imported here:
any object with ``chat.completions.create`` works.
"""

from __future__ import annotations

from headroom.openai.stream import AsyncMemoryStream, MemoryStream
from headroom.openai.wrapper import MemoryWrapper, WrapperMemoryAPI, strip_response, with_memory

__all__ = [
    "AsyncMemoryStream",
    "MemoryStream",
    "MemoryWrapper",
    "WrapperMemoryAPI",
    "strip_response",
    "with_memory",
]
