"""HeadroomChatModel: a chat model that wraps another one with Headroom's inline memory.

It is a real :class:`~langchain_core.language_models.BaseChatModel` (``_generate``, ``_agenerate``,
``_stream``, ``_astream`` delegate to the wrapped model), so LCEL, ``batch``, callbacks, tracing
and ``astream_events`` treat it like any chat model. Each call:

1. converts the LangChain messages to OpenAI-format dicts and lets the core's
   :class:`~headroom.inline.memory.InlineMemory` inject the relevant memories (in front of the last
   user message) and the extraction instruction (in the system message);
2. maps the result back onto the original messages (unchanged messages are passed through as is);
3. calls the wrapped model, removes the ``<memory>`` block from the reply (in streams, chunk by
   chunk, even when a tag is split across chunks) and stores the extracted facts.

By default the wrapped model is called *without* the caller's callbacks: otherwise streaming
handlers (``astream_events``, LangGraph's ``stream_mode="messages"``) would also receive the wrapped
model's raw tokens, block included. ``propagate_callbacks=True`` nests the inner run under this one
(tagged ``nostream``) for tracing, at that cost for ``astream_events`` consumers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, BaseMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool
from pydantic import ConfigDict, Field

from headroom.inline.memory import InlineMemory, PreparedRequest

from ._messages import feed_content, from_prepared, strip_ai_message, to_openai

__all__ = ["HeadroomChatModel"]

logger = logging.getLogger(__name__)


class HeadroomChatModel(BaseChatModel):
    """A chat model with inline memory: inject, call ``model``, strip the block, store the facts.

    Build it with :meth:`headroom_langchain.HeadroomMemory.wrap`.
    """

    model: Runnable[Any, Any]
    """The wrapped chat model (or a chat model with bound tools)."""
    inline: InlineMemory = Field(exclude=True)
    """The core's inline memory for this identity (shared with the HeadroomMemory)."""
    propagate_callbacks: bool = False

    model_config = ConfigDict(arbitrary_types_allowed=True)

    @property
    def _llm_type(self) -> str:
        inner = getattr(self.model, "_llm_type", type(self.model).__name__)
        return f"headroom:{inner}"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": getattr(self.model, "_identifying_params", repr(self.model)),
            "user_id": self.inline.user_id,
            "session_id": self.inline.explicit_session_id,
            "agent_id": self.inline.agent_id,
        }

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools on the wrapped model and keep the memory around it."""
        bind = getattr(self.model, "bind_tools", None)
        if bind is None:
            raise NotImplementedError(f"{type(self.model).__name__} does not support bind_tools")
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.model_copy(update={"model": bind(tools, **kwargs)})

    # -- helpers ---------------------------------------------------------------------------------

    def _config(
        self, run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None
    ) -> RunnableConfig:
        if not self.propagate_callbacks or run_manager is None:
            return {"callbacks": []}
        child: CallbackManager | AsyncCallbackManager
        if isinstance(run_manager, AsyncCallbackManagerForLLMRun):
            child = AsyncCallbackManager(handlers=[], parent_run_id=run_manager.run_id)
        else:
            child = CallbackManager(handlers=[], parent_run_id=run_manager.run_id)
        child.set_handlers(run_manager.inheritable_handlers)
        child.add_tags(run_manager.inheritable_tags)
        child.add_metadata(run_manager.inheritable_metadata)
        return {"callbacks": child, "tags": ["nostream"]}

    @staticmethod
    def _call_kwargs(stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {**kwargs, "stop": stop} if stop is not None else dict(kwargs)

    def _request(
        self, messages: list[BaseMessage], prepared: PreparedRequest, dicts: list[dict[str, Any]]
    ) -> list[BaseMessage]:
        return from_prepared(messages, dicts, prepared.messages)

    def _result(self, reply: Any, prepared: PreparedRequest) -> tuple[ChatResult, list[Any]]:
        if not isinstance(reply, BaseMessage):
            raise TypeError(
                f"the wrapped model returned {type(reply).__name__}, expected a message"
            )
        visible, items = strip_ai_message(reply)
        return ChatResult(generations=[ChatGeneration(message=visible)]), items

    @staticmethod
    def _chunk(chunk: Any, content: Any) -> ChatGenerationChunk:
        if isinstance(chunk, BaseMessageChunk):
            return ChatGenerationChunk(message=chunk.model_copy(update={"content": content}))
        return ChatGenerationChunk(message=AIMessageChunk(content=content))

    @staticmethod
    def _raw_content(chunk: Any) -> Any:
        return chunk.content if isinstance(chunk, BaseMessage) else str(chunk)

    # -- sync ------------------------------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        dicts = to_openai(messages)
        prepared = self.inline.prepare(dicts)
        request = self._request(messages, prepared, dicts)
        reply = self.model.invoke(
            request, self._config(run_manager), **self._call_kwargs(stop, kwargs)
        )
        result, items = self._result(reply, prepared)
        self.inline.store(items, prepared.refs)
        return result

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        dicts = to_openai(messages)
        prepared = self.inline.prepare(dicts)
        request = self._request(messages, prepared, dicts)
        stripper = self.inline.stream_stripper()
        for raw in self.model.stream(
            request, self._config(run_manager), **self._call_kwargs(stop, kwargs)
        ):
            chunk = self._chunk(raw, feed_content(self._raw_content(raw), stripper))
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
        tail = stripper.finish()
        if tail:
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=tail))
            if run_manager is not None:
                run_manager.on_llm_new_token(tail, chunk=chunk)
            yield chunk
        self.inline.store(stripper.items, prepared.refs)

    # -- async -----------------------------------------------------------------------------------

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        dicts = to_openai(messages)
        prepared = await self.inline.aprepare(dicts)
        request = self._request(messages, prepared, dicts)
        reply = await self.model.ainvoke(
            request, self._config(run_manager), **self._call_kwargs(stop, kwargs)
        )
        result, items = self._result(reply, prepared)
        await self.inline.astore(items, prepared.refs)
        return result

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        dicts = to_openai(messages)
        prepared = await self.inline.aprepare(dicts)
        request = self._request(messages, prepared, dicts)
        stripper = self.inline.stream_stripper()
        async for raw in self.model.astream(
            request, self._config(run_manager), **self._call_kwargs(stop, kwargs)
        ):
            chunk = self._chunk(raw, feed_content(self._raw_content(raw), stripper))
            if run_manager is not None:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
        tail = stripper.finish()
        if tail:
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=tail))
            if run_manager is not None:
                await run_manager.on_llm_new_token(tail, chunk=chunk)
            yield chunk
        await self.inline.astore(stripper.items, prepared.refs)
