"""HeadroomMiddleware: inline memory around every model call of a ``create_agent`` agent.

``wrap_model_call`` / ``awrap_model_call`` convert the request's system message and messages to
OpenAI-format dicts, let the core's InlineMemory inject the relevant memories (in front of the last
user message, for this call only: the agent state is not changed) and the extraction instruction
(in the system message), call the model, remove the ``<memory>`` block from the AI message that
goes into the state, and store the extracted facts.

Identity: the middleware's ``user_id`` / ``session_id`` / ``agent_id``, unless the run's context
(``agent.invoke(..., context={"user_id": ...})``, a mapping or an object with those attributes)
provides them; without a session id the LangGraph ``thread_id`` is used when there is one.
Known limit: with ``stream_mode="messages"`` LangGraph streams the model's raw tokens (block
included); only the final message in the state is stripped. Use :meth:`HeadroomMemory.wrap` on
the model instead when raw token streams are shown to users.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from langchain.agents.middleware.types import (
    AgentMiddleware,
    ExtendedModelResponse,
    ModelRequest,
    ModelResponse,
)
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, SystemMessage

from headroom.inline.extraction import ExtractedMemory
from headroom.inline.memory import InlineMemory, PreparedRequest
from headroom.memory import HierarchicalMemory

from ._messages import from_prepared, strip_ai_message, to_openai

__all__ = ["HeadroomMiddleware"]

logger = logging.getLogger(__name__)

_IDS = ("user_id", "session_id", "agent_id")
_MAX_CACHED = 256

ModelResult = ModelResponse[Any] | AIMessage | ExtendedModelResponse[Any]


class HeadroomMiddleware(AgentMiddleware[Any, Any, Any]):
    """Inject memories into, and extract memories from, every model call of an agent."""

    def __init__(
        self,
        memory: HierarchicalMemory,
        *,
        user_id: str,
        session_id: str | None = None,
        agent_id: str | None = None,
        top_k: int = 5,
        use_context_identity: bool = True,
        inline: InlineMemory | None = None,
    ) -> None:
        super().__init__()
        self.memory = memory
        self.top_k = top_k
        self.use_context_identity = use_context_identity
        self._default = inline or InlineMemory(
            memory, user_id=user_id, session_id=session_id, agent_id=agent_id, top_k=top_k
        )
        self._by_identity: dict[tuple[str, str | None, str | None], InlineMemory] = {}

    # -- identity --------------------------------------------------------------------------------

    def _identity(self, request: ModelRequest[Any]) -> tuple[str, str | None, str | None] | None:
        context = getattr(request.runtime, "context", None) if request.runtime is not None else None
        found: dict[str, str | None] = {}
        for name in _IDS:
            value = context.get(name) if isinstance(context, dict) else getattr(context, name, None)
            found[name] = value if isinstance(value, str) and value else None
        if found["session_id"] is None:
            found["session_id"] = _thread_id()
        if not any(found.values()):
            return None
        d = self._default
        return (
            found["user_id"] or d.user_id,
            found["session_id"] or d.explicit_session_id,
            found["agent_id"] or d.agent_id,
        )

    def _inline_for(self, request: ModelRequest[Any]) -> InlineMemory:
        identity = self._identity(request) if self.use_context_identity else None
        d = self._default
        if identity is None or identity == (d.user_id, d.explicit_session_id, d.agent_id):
            return d
        inline = self._by_identity.get(identity)
        if inline is None:
            if len(self._by_identity) >= _MAX_CACHED:
                self._by_identity.clear()
            user_id, session_id, agent_id = identity
            inline = InlineMemory(
                self.memory,
                user_id=user_id,
                session_id=session_id,
                agent_id=agent_id,
                top_k=self.top_k,
            )
            self._by_identity[identity] = inline
        return inline

    # -- request / response ----------------------------------------------------------------------

    @staticmethod
    def _messages(request: ModelRequest[Any]) -> list[BaseMessage]:
        system: list[BaseMessage] = (
            [request.system_message] if request.system_message is not None else []
        )
        return [*system, *request.messages]

    @staticmethod
    def _override(
        request: ModelRequest[Any], messages: list[BaseMessage], prepared: PreparedRequest
    ) -> ModelRequest[Any]:
        dicts = to_openai(messages)
        new = from_prepared(messages, dicts, prepared.messages)
        has_system = request.system_message is not None or len(new) == len(messages) + 1
        if has_system and new and isinstance(new[0], SystemMessage):
            return request.override(system_message=new[0], messages=cast(list[AnyMessage], new[1:]))
        return request.override(messages=cast(list[AnyMessage], new))

    @classmethod
    def _strip(cls, response: ModelResult) -> tuple[ModelResult, list[ExtractedMemory]]:
        if isinstance(response, AIMessage):
            message, items = strip_ai_message(response)
            return message, items  # type: ignore[return-value]
        if isinstance(response, ExtendedModelResponse):
            inner, items = cls._strip_response(response.model_response)
            return dataclasses.replace(response, model_response=inner), items
        if isinstance(response, ModelResponse):
            return cls._strip_response(response)
        return response, []

    @staticmethod
    def _strip_response(
        response: ModelResponse[Any],
    ) -> tuple[ModelResponse[Any], list[ExtractedMemory]]:
        result: list[BaseMessage] = []
        items: list[ExtractedMemory] = []
        for message in response.result:
            stripped, found = strip_ai_message(message)
            result.append(stripped)
            items.extend(found)
        return dataclasses.replace(response, result=result), items

    # -- hooks -----------------------------------------------------------------------------------

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResult:
        inline = self._inline_for(request)
        messages = self._messages(request)
        prepared = inline.prepare(to_openai(messages))
        response, items = self._strip(handler(self._override(request, messages, prepared)))
        inline.store(items, prepared.refs)
        return response

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResult:
        inline = self._inline_for(request)
        messages = self._messages(request)
        prepared = await inline.aprepare(to_openai(messages))
        response, items = self._strip(await handler(self._override(request, messages, prepared)))
        await inline.astore(items, prepared.refs)
        return response


def _thread_id() -> str | None:
    try:
        from langgraph.config import get_config

        configurable = get_config().get("configurable") or {}
    except Exception:  # outside a graph run
        return None
    value = configurable.get("thread_id")
    return str(value) if value else None
