"""LlamaIndex ``ChatMessage`` <-> OpenAI-format dicts, for the core's InlineMemory.

Only the text of a message travels through the dicts (its ``TextBlock``s joined by newlines);
images, tool-call blocks and ``additional_kwargs`` stay on the original message, which is copied
back with its text replaced when InlineMemory changed it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from llama_index.core.llms import ChatMessage, MessageRole, TextBlock

__all__ = ["from_openai", "replace_text", "retag_memory_blocks_template", "to_openai"]

_INDEX_KEY = "_headroom_llamaindex_index"
_ASSISTANT_ROLES = {MessageRole.ASSISTANT, MessageRole.CHATBOT, MessageRole.MODEL}
_TEMPLATE_RE = re.compile(r"\A(\s*)<memory>(\s*\n.*\n\s*)</memory>(\s*)\Z", re.DOTALL)
MEMORY_BLOCKS_TAG = "memory_blocks"


def retag_memory_blocks_template(text: str) -> str:
    """Rename the ``<memory>`` wrapper of LlamaIndex's ``DEFAULT_MEMORY_BLOCKS_TEMPLATE``.

    ``Memory`` inserts its blocks as one text part that starts with ``<memory>`` and ends with
    ``</memory>``; the model would read it as the extraction block it is asked to write. The
    wrapper becomes ``<memory_blocks>`` (what :func:`headroom_memory_blocks_template` renders).
    """
    match = _TEMPLATE_RE.match(text)
    if match is None:
        return text
    lead, body, tail = match.groups()
    return f"{lead}<{MEMORY_BLOCKS_TAG}>{body}</{MEMORY_BLOCKS_TAG}>{tail}"


def _role(message: ChatMessage) -> str:
    return "assistant" if message.role in _ASSISTANT_ROLES else str(message.role.value)


def _text(message: ChatMessage, *, retag: bool) -> str | None:
    parts = [block.text for block in message.blocks if isinstance(block, TextBlock)]
    if retag:
        parts = [retag_memory_blocks_template(part) for part in parts]
    return "\n".join(parts) if parts else None


def to_openai(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """OpenAI-format dicts carrying the text of ``messages`` (and their index, for the way back)."""
    out: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        role = _role(message)
        retag = role in ("system", "developer", "user")
        out.append({"role": role, "content": _text(message, retag=retag), _INDEX_KEY: index})
    return out


def replace_text(message: ChatMessage, text: str) -> ChatMessage:
    """A copy of ``message`` whose text blocks are replaced by one block holding ``text``."""
    blocks = list(message.blocks)
    text_positions = [i for i, block in enumerate(blocks) if isinstance(block, TextBlock)]
    if not text_positions:
        new_blocks: list[Any] = [TextBlock(text=text), *blocks]
    else:
        first, rest = text_positions[0], set(text_positions[1:])
        new_blocks = [
            TextBlock(text=text) if i == first else block
            for i, block in enumerate(blocks)
            if i not in rest
        ]
    return message.model_copy(update={"blocks": new_blocks})


def from_openai(
    prepared: Sequence[dict[str, Any]], originals: Sequence[ChatMessage]
) -> list[ChatMessage]:
    """The LlamaIndex messages for ``prepared`` (new messages, or originals with new text)."""
    out: list[ChatMessage] = []
    for item in prepared:
        index = item.get(_INDEX_KEY)
        content = item.get("content")
        if not isinstance(index, int):
            out.append(ChatMessage(role=MessageRole(item.get("role", "system")), content=content))
            continue
        original = originals[index]
        if content is None or content == original.content:
            out.append(original)
        else:
            out.append(replace_text(original, str(content)))
    return out
