"""HeadroomLLM: wrap any LlamaIndex LLM so every call injects memories and stores what it learns.

Each ``chat`` / ``complete`` call (sync, async, streaming) goes through the core's
:class:`~headroom.inline.memory.InlineMemory`: the memories visible to (user, session, agent) are
searched with the last user message and injected, the extraction instruction is added, the wrapped
LLM is called, the ``<memory>`` block is parsed and stored, and the reply is returned without it
(streams too, even when the tag is split across chunks). Chat engines built on a HeadroomLLM
therefore return clean replies. Tool calling is delegated to the wrapped LLM when it is a
``FunctionCallingLLM`` (agents work; tool-call replies pass through untouched).

If ``Memory`` (with LlamaIndex's default memory-blocks template) put a ``<memory>...</memory>``
wrapper in a system or user message, the wrapper is renamed ``<memory_blocks>`` before the call so
the model never confuses it with the extraction block.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Generator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import LLM, ToolSelection

from headroom.inline.extraction import StreamingMemoryStripper
from headroom.inline.injection import prepare_messages
from headroom.inline.memory import InlineMemory, PreparedRequest
from headroom.memory.config import MemoryConfig
from headroom.memory.core import HierarchicalMemory
from headroom.memory.errors import ConfigurationError
from headroom.memory.ports import Embedder

from ._memory import OwnedMemory, close_quietly, resolve_memory
from ._messages import from_openai, replace_text, to_openai
from .memory_block import block_context_refs

if TYPE_CHECKING:
    from llama_index.core.tools import BaseTool

__all__ = ["HeadroomLLM"]

logger = logging.getLogger(__name__)


def _with_text(response: ChatResponse, text: str, delta: str | None) -> ChatResponse:
    message = response.message
    if not (message.content is None and text == ""):
        message = replace_text(message, text)
    return response.model_copy(update={"message": message, "delta": delta})


def _flatten(messages: Sequence[dict[str, Any]]) -> str:
    return "\n\n".join(str(m["content"]) for m in messages if m.get("content"))


class HeadroomLLM(OwnedMemory, FunctionCallingLLM):
    """A LlamaIndex LLM with Headroom memory: ``HeadroomLLM(llm=OpenAI(...), user_id="alice")``.

    Memory: ``memory=`` (an open HierarchicalMemory, shared with other adapters) or ``db_path=`` /
    ``config=`` (opened here and closed by :meth:`close`). ``session_id`` / ``agent_id`` scope
    session- and agent-level facts; facts without a scope are stored at user level and recalled in
    every session. ``top_k`` memories (within ``token_budget`` estimated tokens) are injected.
    """

    llm: LLM = Field(description="The wrapped LLM.")
    user_id: str
    session_id: str | None = None
    agent_id: str | None = None
    top_k: int = 5
    token_budget: int = 600

    _hm: HierarchicalMemory = PrivateAttr()
    _owned: bool = PrivateAttr(default=False)
    _inline: InlineMemory = PrivateAttr()

    def __init__(
        self,
        llm: LLM,
        *,
        user_id: str,
        session_id: str | None = None,
        agent_id: str | None = None,
        memory: HierarchicalMemory | None = None,
        db_path: str | Path | None = None,
        config: MemoryConfig | None = None,
        embedder: Embedder | None = None,
        top_k: int = 5,
        token_budget: int = 600,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("callback_manager", llm.callback_manager)
        super().__init__(
            llm=llm, user_id=user_id, session_id=session_id, agent_id=agent_id, top_k=top_k,
            token_budget=token_budget, **kwargs,
        )  # fmt: skip
        hm, owned = resolve_memory(memory, db_path, config, embedder)
        try:
            self._inline = InlineMemory(
                hm, user_id=user_id, session_id=session_id, agent_id=agent_id, top_k=top_k,
                token_budget=token_budget,
            )  # fmt: skip
        except BaseException:
            if owned:
                close_quietly(hm)
            raise
        self._hm, self._owned = hm, owned

    @classmethod
    def class_name(cls) -> str:
        return "HeadroomLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return self.llm.metadata

    @property
    def inline(self) -> InlineMemory:
        """The core InlineMemory doing the injection and extraction for this identity."""
        return self._inline

    # -- helpers ---------------------------------------------------------------------------------

    def _shown_by_block(self, openai: list[dict[str, Any]]) -> PreparedRequest | None:
        """When a HeadroomMemoryBlock already shows memories: only the instruction is added."""
        refs = block_context_refs(openai, self.user_id)
        if refs is None:
            return None
        messages = prepare_messages(openai, context=None, instruction=self._inline.instruction)
        return PreparedRequest(messages=messages, refs=refs)

    def _prepare(self, messages: Sequence[ChatMessage]) -> PreparedRequest:
        openai = to_openai(messages)
        return self._shown_by_block(openai) or self._inline.prepare(openai)

    async def _aprepare(self, messages: Sequence[ChatMessage]) -> PreparedRequest:
        openai = to_openai(messages)
        return self._shown_by_block(openai) or await self._inline.aprepare(openai)

    def _send(
        self, messages: Sequence[ChatMessage], prepared: PreparedRequest
    ) -> list[ChatMessage]:
        return from_openai(prepared.messages, messages)

    def _finish_chat(self, response: ChatResponse, visible: str | None) -> ChatResponse:
        if visible is None or visible == response.message.content:
            return response
        return _with_text(response, visible, response.delta)

    @staticmethod
    def _next_delta(delta: str | None, content: str | None, raw: str) -> str:
        if delta is not None:
            return delta
        if content and content.startswith(raw):
            return content[len(raw) :]
        return ""

    # -- chat ------------------------------------------------------------------------------------

    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        prepared = self._prepare(messages)
        response = self.llm.chat(self._send(messages, prepared), **kwargs)
        text = response.message.content
        visible = None if text is None else self._inline.process_reply(text, prepared)
        return self._finish_chat(response, visible)

    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        prepared = await self._aprepare(messages)
        response = await self.llm.achat(self._send(messages, prepared), **kwargs)
        text = response.message.content
        visible = None if text is None else await self._inline.aprocess_reply(text, prepared)
        return self._finish_chat(response, visible)

    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        prepared = self._prepare(messages)
        inner = self.llm.stream_chat(self._send(messages, prepared), **kwargs)
        return self._stream_chat(inner, prepared)

    def _stream_chat(
        self, inner: ChatResponseGen, prepared: PreparedRequest
    ) -> Generator[ChatResponse, None, None]:
        stripper, raw, last = self._inline.stream_stripper(), "", None
        for response in inner:
            delta = self._next_delta(response.delta, response.message.content, raw)
            raw += delta
            last = response
            out = stripper.feed(delta)
            yield _with_text(response, stripper.text, out)
        yield from self._stream_tail(stripper, last)
        self._inline.store(stripper.items, prepared.refs)

    def _stream_tail(
        self, stripper: StreamingMemoryStripper, last: ChatResponse | None
    ) -> list[ChatResponse]:
        tail = stripper.finish()
        if not tail or last is None:
            return []
        return [_with_text(last, stripper.text, tail)]

    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        prepared = await self._aprepare(messages)
        inner = await self.llm.astream_chat(self._send(messages, prepared), **kwargs)
        return self._astream_chat(inner, prepared)

    async def _astream_chat(
        self, inner: ChatResponseAsyncGen, prepared: PreparedRequest
    ) -> AsyncGenerator[ChatResponse, None]:
        stripper, raw, last = self._inline.stream_stripper(), "", None
        async for response in inner:
            delta = self._next_delta(response.delta, response.message.content, raw)
            raw += delta
            last = response
            out = stripper.feed(delta)
            yield _with_text(response, stripper.text, out)
        for response in self._stream_tail(stripper, last):
            yield response
        await self._inline.astore(stripper.items, prepared.refs)

    # -- completion ------------------------------------------------------------------------------

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        prepared = self._inline.prepare([{"role": "user", "content": prompt}])
        response = self.llm.complete(_flatten(prepared.messages), formatted=formatted, **kwargs)
        visible = self._inline.process_reply(response.text, prepared)
        return (
            response if visible == response.text else response.model_copy(update={"text": visible})
        )

    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        prepared = await self._inline.aprepare([{"role": "user", "content": prompt}])
        response = await self.llm.acomplete(
            _flatten(prepared.messages), formatted=formatted, **kwargs
        )
        visible = await self._inline.aprocess_reply(response.text, prepared)
        return (
            response if visible == response.text else response.model_copy(update={"text": visible})
        )

    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        prepared = self._inline.prepare([{"role": "user", "content": prompt}])
        inner = self.llm.stream_complete(_flatten(prepared.messages), formatted=formatted, **kwargs)
        return self._stream_complete(inner, prepared)

    def _stream_complete(
        self, inner: CompletionResponseGen, prepared: PreparedRequest
    ) -> Generator[CompletionResponse, None, None]:
        stripper, raw, last = self._inline.stream_stripper(), "", None
        for response in inner:
            delta = self._next_delta(response.delta, response.text, raw)
            raw += delta
            last = response
            out = stripper.feed(delta)
            yield response.model_copy(update={"text": stripper.text, "delta": out})
        tail = stripper.finish()
        if tail and last is not None:
            yield last.model_copy(update={"text": stripper.text, "delta": tail})
        self._inline.store(stripper.items, prepared.refs)

    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        prepared = await self._inline.aprepare([{"role": "user", "content": prompt}])
        inner = await self.llm.astream_complete(
            _flatten(prepared.messages), formatted=formatted, **kwargs
        )
        return self._astream_complete(inner, prepared)

    async def _astream_complete(
        self, inner: CompletionResponseAsyncGen, prepared: PreparedRequest
    ) -> AsyncGenerator[CompletionResponse, None]:
        stripper, raw, last = self._inline.stream_stripper(), "", None
        async for response in inner:
            delta = self._next_delta(response.delta, response.text, raw)
            raw += delta
            last = response
            out = stripper.feed(delta)
            yield response.model_copy(update={"text": stripper.text, "delta": out})
        tail = stripper.finish()
        if tail and last is not None:
            yield last.model_copy(update={"text": stripper.text, "delta": tail})
        await self._inline.astore(stripper.items, prepared.refs)

    # -- tool calling (delegated) ----------------------------------------------------------------

    def _function_llm(self) -> FunctionCallingLLM:
        if not isinstance(self.llm, FunctionCallingLLM):
            raise ConfigurationError(
                f"{type(self.llm).__name__} does not support tool calling (not a FunctionCallingLLM)"
            )
        return self.llm

    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        return self._function_llm()._prepare_chat_with_tools_compat(
            tools, user_msg=user_msg, chat_history=chat_history, verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls, tool_required=tool_required,
            **kwargs,
        )  # fmt: skip

    def _validate_chat_with_tools_response(
        self,
        response: ChatResponse,
        tools: Sequence[BaseTool],
        allow_parallel_tool_calls: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        return self._function_llm()._validate_chat_with_tools_response(
            response, tools, allow_parallel_tool_calls=allow_parallel_tool_calls, **kwargs
        )

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        return self._function_llm().get_tool_calls_from_response(
            response, error_on_no_tool_call=error_on_no_tool_call, **kwargs
        )
