"""HeadroomMemoryBlock: long-term Headroom memories as a block of LlamaIndex ``Memory``.

``Memory.from_defaults(memory_blocks=[HeadroomMemoryBlock(...)],
memory_blocks_template=headroom_memory_blocks_template())``: on every ``get`` the block searches
the memories visible to (user, session, agent) with the last user message of the chat history and
returns them rendered exactly as the core renders injected memories (``<headroom_context>``,
quoted and escaped, within ``token_budget``). Under token pressure ``Memory`` calls
:meth:`HeadroomMemoryBlock.atruncate`, which drops the least relevant memories first; a
``priority`` of 0 means never truncated (LlamaIndex's rule), the default here is 1.

Tag collision: LlamaIndex's ``DEFAULT_MEMORY_BLOCKS_TEMPLATE`` wraps all blocks in
``<memory>...</memory>``, the tag of Headroom's extraction block. Use
:func:`headroom_memory_blocks_template` (the same template, wrapper renamed ``<memory_blocks>``);
:class:`~headroom_llamaindex.HeadroomLLM` also renames the default wrapper before calling the model,
and the extraction parser never treats ``<memory_blocks>`` as a block.

``_aput`` runs only for messages ``Memory`` flushes out of its queue (under token pressure), so it
is not a per-turn extraction point: with ``llm=`` the block extracts the facts of the flushed
messages then (one call of ``llm``, like LlamaIndex's ``FactExtractionMemoryBlock``); without it,
it stores nothing. Per-turn facts are extracted by :class:`~headroom_llamaindex.HeadroomLLM`
(wrap the engine's LLM) or, with a plain LLM, by :class:`~headroom_llamaindex.HeadroomMemory`.
With a HeadroomLLM the memories are shown once: the LLM sees this block's rendered context and
does not inject its own (it keeps the block's references, so ``"supersedes"`` works).
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from llama_index.core.bridge.pydantic import Field, PrivateAttr, SerializeAsAny
from llama_index.core.llms import ChatMessage
from llama_index.core.llms.llm import LLM
from llama_index.core.memory.memory import DEFAULT_MEMORY_BLOCKS_TEMPLATE, BaseMemoryBlock
from llama_index.core.prompts import RichPromptTemplate

from headroom.inline.injection import (
    InjectedMemory,
    estimate_tokens,
    last_user_text,
    render_memory_context,
)
from headroom.inline.memory import InlineMemory
from headroom.memory.config import MemoryConfig
from headroom.memory.core import HierarchicalMemory
from headroom.memory.errors import ConfigurationError
from headroom.memory.models import MemoryCategory
from headroom.memory.ports import Embedder

from ._memory import OwnedMemory, resolve_memory
from ._messages import MEMORY_BLOCKS_TAG, to_openai
from .headroom_memory import aextract_facts, transcript_of

__all__ = ["HeadroomMemoryBlock", "block_context_refs", "headroom_memory_blocks_template"]

logger = logging.getLogger(__name__)

_CACHE_SIZE = 16
_SHOWN_SIZE = 256
_CONTEXT_RE = re.compile(r"<headroom_context>\n.*?</headroom_context>", re.DOTALL)
_SHOWN: OrderedDict[tuple[str, str], dict[str, str]] = OrderedDict()
"""(user id, rendered context) -> {ref: memory id}, for every context a block rendered lately."""
_SHOWN_LOCK = threading.Lock()


def _record_shown(user_id: str, rendered: str, injected: Sequence[InjectedMemory]) -> None:
    with _SHOWN_LOCK:
        _SHOWN[(user_id, rendered)] = {m.ref: m.memory_id for m in injected}
        _SHOWN.move_to_end((user_id, rendered))
        while len(_SHOWN) > _SHOWN_SIZE:
            _SHOWN.popitem(last=False)


def block_context_refs(
    messages: Sequence[Mapping[str, Any]], user_id: str
) -> dict[str, str] | None:
    """The refs of the memories a memory block already put in ``messages``, or ``None``.

    Looks at system/developer messages and at the last user message (where ``Memory`` inserts
    its blocks). A rendered context not recorded here (another process) gives ``{}``: it is shown,
    so nothing more is injected, but its references cannot be resolved.
    """
    last_user = next(
        (i for i in range(len(messages) - 1, -1, -1) if messages[i].get("role") == "user"), None
    )
    found: dict[str, str] | None = None
    for index, message in enumerate(messages):
        if message.get("role") not in ("system", "developer") and index != last_user:
            continue
        text = message.get("content")
        if not isinstance(text, str):
            continue
        for match in _CONTEXT_RE.finditer(text):
            found = {} if found is None else found
            with _SHOWN_LOCK:
                refs = _SHOWN.get((user_id, match.group(0)))
            found.update(refs or {})
    return found


def headroom_memory_blocks_template() -> RichPromptTemplate:
    """LlamaIndex's default memory-blocks template with ``<memory_blocks>`` as the wrapper tag."""
    source = DEFAULT_MEMORY_BLOCKS_TEMPLATE.template_str
    renamed = source.replace("\n<memory>\n", f"\n<{MEMORY_BLOCKS_TAG}>\n").replace(
        "\n</memory>\n", f"\n</{MEMORY_BLOCKS_TAG}>\n"
    )
    if "<memory>" in renamed or f"<{MEMORY_BLOCKS_TAG}>" not in renamed:
        raise ConfigurationError("unexpected DEFAULT_MEMORY_BLOCKS_TEMPLATE; cannot rename its tag")
    return RichPromptTemplate(renamed)


class HeadroomMemoryBlock(OwnedMemory, BaseMemoryBlock[str]):
    """Relevant long-term memories, searched per ``Memory.get`` (see the module docstring)."""

    name: str = Field(default="headroom_memories", description="The block's name (its tag).")
    description: str | None = Field(default="Long-term memories about the user (Headroom).")
    priority: int = Field(default=1, description="0 = never truncate; higher = truncated later.")
    user_id: str
    session_id: str | None = None
    agent_id: str | None = None
    top_k: int = 5
    token_budget: int = 600
    min_similarity: float = 0.0
    categories: list[MemoryCategory] | None = None
    min_importance: float | None = None
    llm: SerializeAsAny[LLM] | None = Field(
        default=None, description="Extracts facts from flushed messages (None: recall only)."
    )

    _hm: HierarchicalMemory = PrivateAttr()
    _extract: InlineMemory | None = PrivateAttr(default=None)
    _owned: bool = PrivateAttr(default=False)
    _rendered: OrderedDict[str, list[InjectedMemory]] = PrivateAttr(default_factory=OrderedDict)

    def __init__(
        self,
        *,
        user_id: str,
        session_id: str | None = None,
        agent_id: str | None = None,
        memory: HierarchicalMemory | None = None,
        db_path: str | Path | None = None,
        config: MemoryConfig | None = None,
        embedder: Embedder | None = None,
        categories: Sequence[MemoryCategory | str] | None = None,
        **kwargs: Any,
    ) -> None:
        from headroom.memory.validation import check_id, check_optional_id

        check_id(user_id, "user_id")
        check_optional_id(session_id, "session_id")
        check_optional_id(agent_id, "agent_id")
        parsed = None if categories is None else [MemoryCategory.parse(c) for c in categories]
        super().__init__(  # type: ignore[call-arg]
            user_id=user_id, session_id=session_id, agent_id=agent_id, categories=parsed, **kwargs
        )
        self._hm, self._owned = resolve_memory(memory, db_path, config, embedder)
        if self.llm is not None:
            self._extract = InlineMemory(
                self._hm, user_id=user_id, session_id=session_id, agent_id=agent_id,
                top_k=self.top_k, token_budget=self.token_budget,
            )  # fmt: skip

    async def _aget(self, messages: list[ChatMessage] | None = None, **block_kwargs: Any) -> str:
        """The rendered memories relevant to the last user message ("" when there are none).

        ``block_kwargs`` (``session_id`` of the LlamaIndex Memory, ``initial_token_count``) are
        ignored: the Headroom scope is the block's own ``session_id`` / ``agent_id``.
        """
        query = last_user_text(to_openai(messages or []))
        if not query:
            return ""
        try:
            hits = await self._hm.search(
                query, self.user_id, self.session_id, self.agent_id, top_k=self.top_k,
                min_similarity=self.min_similarity, categories=self.categories,
                min_importance=self.min_importance,
            )  # fmt: skip
        except Exception:
            logger.exception("headroom: memory search failed in HeadroomMemoryBlock")
            return ""
        injected = [
            InjectedMemory(
                ref=f"m{i}",
                content=h.memory.content,
                category=h.memory.category.value,
                scope=h.memory.scope_level.value,
                memory_id=h.memory.id,
            )
            for i, h in enumerate(hits, start=1)
        ]
        rendered = render_memory_context(injected, token_budget=self.token_budget)
        if rendered is None:
            return ""
        self._remember(rendered, injected)
        return rendered

    def _remember(self, rendered: str, injected: list[InjectedMemory]) -> None:
        _record_shown(self.user_id, rendered, injected)
        self._rendered[rendered] = injected
        self._rendered.move_to_end(rendered)
        while len(self._rendered) > _CACHE_SIZE:
            self._rendered.popitem(last=False)

    async def _aput(self, messages: list[ChatMessage]) -> None:
        """With ``llm=``: extract and store the facts of the messages ``Memory`` flushed."""
        if self.llm is None or self._extract is None:
            return
        try:
            transcript = transcript_of(messages)
            if transcript:
                await aextract_facts(self.llm, self._extract, transcript)
        except Exception:
            logger.exception("headroom: extracting facts from flushed messages failed")

    async def atruncate(self, content: str, tokens_to_truncate: int) -> str | None:
        """Drop the least relevant memories until ~``tokens_to_truncate`` tokens are saved."""
        if tokens_to_truncate <= 0:
            return content
        injected = self._rendered.get(content)
        if not injected:
            return None
        target = estimate_tokens(content) - tokens_to_truncate
        for keep in range(len(injected) - 1, 0, -1):
            smaller = render_memory_context(injected[:keep], token_budget=self.token_budget)
            if smaller is not None and estimate_tokens(smaller) <= target:
                self._remember(smaller, injected[:keep])
                return smaller
        return None
