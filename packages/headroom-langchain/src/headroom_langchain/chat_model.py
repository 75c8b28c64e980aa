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

No callback handler ever sees the wrapped model's raw tokens: the wrapped model runs in a context
without the caller's run config (see :mod:`._isolation`), so not even a ``RunnableBinding`` (from
``bind_tools``), whose config merge reads the ambient LangGraph config, can hand it the graph's
streaming handlers. ``propagate_callbacks=True`` nests the inner run under this one for tracing,
without the streaming handlers (``astream_events``, LangGraph ``stream_mode="messages"``).

Identity: the wrapped model's memory identity is the :class:`HeadroomMemory`'s, unless the call's
``config={"configurable": {"user_id": ..., "session_id": ..., "agent_id": ...}}`` names one (the
LangGraph ``thread_id`` fills a missing session), so one chain serves many users.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.language_models.model_profile import ModelProfile
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, BaseMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig, ensure_config
from langchain_core.tools import BaseTool
from pydantic import ConfigDict, Field

from headroom.inline.memory import InlineMemory, PreparedRequest

from ._identity import cache_for, identity_from
from ._isolation import (
    ainvoke_isolated,
    astream_isolated,
    inner_config,
    run_isolated,
    stream_isolated,
)
from ._messages import feed_content, from_prepared, strip_ai_message, to_openai

__all__ = ["IDENTITY_KW", "HeadroomChatModel"]

logger = logging.getLogger(__name__)

IDENTITY_KW = "headroom_identity"
"""The call keyword that carries the per-request identity from ``invoke``/``stream`` to ``_generate``."""


def _innermost(model: Any) -> tuple[Any, dict[str, Any]]:
    """The model under any ``RunnableBinding`` layers and the keyword arguments they bind."""
    kwargs: dict[str, Any] = {}
    while isinstance(model, RunnableBinding):
        kwargs = {**model.kwargs, **kwargs}
        model = model.bound
    return model, kwargs


class HeadroomChatModel(BaseChatModel):
    """A chat model with inline memory: inject, call ``model``, strip the block, store the facts.

    Build it with :meth:`headroom_langchain.HeadroomMemory.wrap`.
    """

    model: Runnable[Any, Any]
    """The wrapped chat model (or a chat model with bound tools)."""
    inline: InlineMemory = Field(exclude=True)
    """The core's inline memory for the default identity (shared with the HeadroomMemory)."""
    propagate_callbacks: bool = False
    use_config_identity: bool = True
    """Read ``user_id`` / ``session_id`` / ``agent_id`` from the call's ``configurable``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    @property
    def _llm_type(self) -> str:
        inner = getattr(_innermost(self.model)[0], "_llm_type", type(self.model).__name__)
        return f"headroom:{inner}"

    @property
    def model_name(self) -> str | None:
        """The wrapped model's name (``model_name`` / ``model`` of the inner chat model)."""
        inner = _innermost(self.model)[0]
        name = getattr(inner, "model_name", None) or getattr(inner, "model", None)
        return name if isinstance(name, str) else None

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": getattr(self.model, "_identifying_params", repr(self.model)),
            "user_id": self.inline.user_id,
            "session_id": self.inline.explicit_session_id,
            "agent_id": self.inline.agent_id,
        }

    def _resolve_model_profile(self) -> ModelProfile | None:
        inner = _innermost(self.model)[0]
        return getattr(inner, "profile", None) if isinstance(inner, BaseChatModel) else None

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        """The wrapped model's standard tracing params (provider, model name, temperature...)."""
        kwargs.pop(IDENTITY_KW, None)
        inner, bound = _innermost(self.model)
        if isinstance(inner, BaseChatModel):
            return inner._get_ls_params(stop=stop, **{**bound, **kwargs})
        return super()._get_ls_params(stop=stop, **kwargs)

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools on the wrapped model and keep the memory around it.

        Returns a ``RunnableBinding`` (like every chat model's ``bind_tools``) over a copy of this
        model whose wrapped model has the tools bound.
        """
        bind = getattr(self.model, "bind_tools", None)
        if bind is None:
            raise NotImplementedError(f"{type(self.model).__name__} does not support bind_tools")
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.model_copy(update={"model": bind(tools, **kwargs)}).bind()

    # -- identity --------------------------------------------------------------------------------

    def _with_identity(self, config: RunnableConfig | None, kwargs: dict[str, Any]) -> None:
        if not self.use_config_identity or IDENTITY_KW in kwargs:
            return
        configurable = ensure_config(config).get("configurable") or {}
        ids = identity_from(configurable, thread_id=configurable.get("thread_id"))
        if ids:
            kwargs[IDENTITY_KW] = ids

    def _inline_for(self, kwargs: dict[str, Any]) -> InlineMemory:
        ids = kwargs.pop(IDENTITY_KW, None)
        if not ids or not self.use_config_identity:  # pinned: nothing overrides it
            return self.inline
        return cache_for(self.inline).get(ids)

    def invoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AIMessage:
        self._with_identity(config, kwargs)
        return super().invoke(input, config, **kwargs)

    async def ainvoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AIMessage:
        self._with_identity(config, kwargs)
        return await super().ainvoke(input, config, **kwargs)

    def stream(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[AIMessageChunk]:
        self._with_identity(config, kwargs)
        return super().stream(input, config, **kwargs)

    def astream(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[AIMessageChunk]:
        self._with_identity(config, kwargs)
        return super().astream(input, config, **kwargs)

    # -- helpers ---------------------------------------------------------------------------------

    def _config(
        self, run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None
    ) -> RunnableConfig:
        return inner_config(run_manager if self.propagate_callbacks else None)

    @staticmethod
    def _call_kwargs(stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {**kwargs, "stop": stop} if stop is not None else dict(kwargs)

    @staticmethod
    def _request(
        messages: list[BaseMessage], prepared: PreparedRequest, dicts: list[dict[str, Any]]
    ) -> list[BaseMessage]:
        return from_prepared(messages, dicts, prepared.messages)

    @staticmethod
    def _result(reply: Any) -> tuple[ChatResult, list[Any]]:
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
        inline = self._inline_for(kwargs)
        dicts = to_openai(messages)
        prepared = inline.prepare(dicts)
        request = self._request(messages, prepared, dicts)
        reply = run_isolated(
            self.model.invoke, request, self._config(run_manager), **self._call_kwargs(stop, kwargs)
        )
        result, items = self._result(reply)
        inline.store(items, prepared.refs)
        return result

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        inline = self._inline_for(kwargs)
        dicts = to_openai(messages)
        prepared = inline.prepare(dicts)
        request = self._request(messages, prepared, dicts)
        stripper = inline.stream_stripper()
        raw_chunks = stream_isolated(
            self.model.stream, request, self._config(run_manager), **self._call_kwargs(stop, kwargs)
        )
        for raw in raw_chunks:
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
        inline.store(stripper.items, prepared.refs)

    # -- async -----------------------------------------------------------------------------------

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        inline = self._inline_for(kwargs)
        dicts = to_openai(messages)
        prepared = await inline.aprepare(dicts)
        request = self._request(messages, prepared, dicts)
        reply = await ainvoke_isolated(
            self.model.ainvoke,
            request,
            self._config(run_manager),
            **self._call_kwargs(stop, kwargs),
        )
        result, items = self._result(reply)
        await inline.astore(items, prepared.refs)
        return result

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        inline = self._inline_for(kwargs)
        dicts = to_openai(messages)
        prepared = await inline.aprepare(dicts)
        request = self._request(messages, prepared, dicts)
        stripper = inline.stream_stripper()
        raw_chunks = astream_isolated(
            self.model.astream,
            request,
            self._config(run_manager),
            **self._call_kwargs(stop, kwargs),
        )
        async for raw in raw_chunks:
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
        await inline.astore(stripper.items, prepared.refs)
