"""LangChain messages <-> the OpenAI-format dicts the core's InlineMemory works on.

Only the messages InlineMemory changed are rebuilt (``model_copy`` with the new content); every other
message is passed through as the original object, so ids, tool calls and provider fields survive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.messages.utils import convert_to_openai_messages

from headroom.inline.extraction import ExtractedMemory, StreamingMemoryStripper
from headroom.inline.memory import InlineMemory

__all__ = [
    "feed_content",
    "from_prepared",
    "split_content",
    "strip_ai_message",
    "to_openai",
]


def to_openai(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """OpenAI chat-format dicts for ``messages`` (one dict per message, same order)."""
    converted = convert_to_openai_messages(list(messages))
    return [dict(m) for m in converted]


def from_prepared(
    originals: Sequence[BaseMessage],
    original_dicts: Sequence[dict[str, Any]],
    prepared: Sequence[dict[str, Any]],
) -> list[BaseMessage]:
    """Map InlineMemory's prepared dicts back onto the original LangChain messages.

    ``prepare_messages`` returns the same messages in the same order, possibly with one new system
    message in front; a message whose content changed is copied with the new content.
    """
    offset = len(prepared) - len(original_dicts)
    out: list[BaseMessage] = []
    if offset == 1:
        out.append(SystemMessage(content=prepared[0].get("content") or ""))
    elif offset != 0:  # not produced by prepare_messages; keep the request unchanged
        return list(originals)
    for message, before, after in zip(originals, original_dicts, prepared[offset:], strict=True):
        new_content = after.get("content")
        if new_content == before.get("content") or new_content is None:
            out.append(message)
        else:
            out.append(message.model_copy(update={"content": new_content}))
    return out


def feed_content(content: Any, stripper: StreamingMemoryStripper) -> Any:
    """Feed a (chunk's) content through ``stripper``; return the visible content."""
    if isinstance(content, str):
        return stripper.feed(content)
    if isinstance(content, list):
        out: list[Any] = []
        for part in content:
            if isinstance(part, str):
                out.append(stripper.feed(part))
            elif (
                isinstance(part, dict)
                and part.get("type") == "text"
                and isinstance(part.get("text"), str)
            ):
                out.append({**part, "text": stripper.feed(part["text"])})
            else:
                out.append(part)
        return out
    return content


def split_content(content: Any) -> tuple[Any, list[ExtractedMemory]]:
    """The visible content of a complete reply and the memory items it carried."""
    if isinstance(content, str):
        return InlineMemory.split(content)
    if not isinstance(content, list):
        return content, []
    stripper = InlineMemory.stream_stripper()
    out = feed_content(content, stripper)
    tail = stripper.finish()
    if tail:
        for index in range(len(out) - 1, -1, -1):
            part = out[index]
            if isinstance(part, str):
                out[index] = part + tail
                break
            if isinstance(part, dict) and part.get("type") == "text":
                out[index] = {**part, "text": part["text"] + tail}
                break
        else:
            out.append({"type": "text", "text": tail})
    return out, list(stripper.items)


def strip_ai_message(message: BaseMessage) -> tuple[BaseMessage, list[ExtractedMemory]]:
    """``message`` without its ``<memory>`` block (AI messages only) and the extracted items."""
    if not isinstance(message, AIMessage):
        return message, []
    visible, items = split_content(message.content)
    if visible == message.content:
        return message, items
    return message.model_copy(update={"content": visible}), items
