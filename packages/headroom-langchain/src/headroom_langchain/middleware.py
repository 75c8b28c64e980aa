"""HeadroomMiddleware: inline memory around every model call of a ``create_agent`` agent.

``wrap_model_call`` / ``awrap_model_call`` hand the agent's model call a
:class:`~headroom_langchain.HeadroomChatModel` around the request's model (``request.model``), for
this call's identity. That model injects the relevant memories (in front of the last user message,
for this call only: the agent state is not changed) and the extraction instruction (in the system
message), removes the ``<memory>`` block and stores the extracted facts. Because the block is
removed *inside* the model run, streaming is safe: LangGraph's ``stream_mode="messages"``,
``astream_events`` and every other callback handler see only the stripped tokens. The AI message
that reaches the state is stripped again as a safety net (for example when an inner middleware
replaced the model).

Identity: the middleware's ``user_id`` / ``session_id`` / ``agent_id``, unless the run's context
(``agent.invoke(..., context={"user_id": ...})``, a mapping or an object with those attributes)
provides them; without a session id the LangGraph ``thread_id`` is used when there is one.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from langchain.agents.middleware.types import (
    AgentMiddleware,
    ExtendedModelResponse,
    ModelRequest,
    ModelResponse,
)
from langchain_core.messages import AIMessage, BaseMessage

from headroom.inline.extraction import ExtractedMemory
from headroom.inline.memory import InlineMemory
from headroom.memory import HierarchicalMemory

from ._identity import cache_for, identity_from
from ._messages import strip_ai_message
from .chat_model import HeadroomChatModel

__all__ = ["HeadroomMiddleware"]

logger = logging.getLogger(__name__)

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
        self._identities = cache_for(self._default)

    # -- identity --------------------------------------------------------------------------------

    def _inline_for(self, request: ModelRequest[Any]) -> InlineMemory:
        if not self.use_context_identity:
            return self._default
        context = getattr(request.runtime, "context", None) if request.runtime is not None else None
        return self._identities.get(identity_from(context, thread_id=_thread_id()))

    # -- request / response ----------------------------------------------------------------------

    @staticmethod
    def _wrapped(request: ModelRequest[Any], inline: InlineMemory) -> ModelRequest[Any]:
        model = request.model
        if isinstance(model, HeadroomChatModel):
            logger.debug("headroom: the agent's model is already wrapped; not wrapping it again")
            return request
        wrapped = HeadroomChatModel(model=model, inline=inline, use_config_identity=False)
        return request.override(model=wrapped)

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
        response, items = self._strip(handler(self._wrapped(request, inline)))
        if items:
            inline.store(items, {})
        return response

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResult:
        inline = self._inline_for(request)
        response, items = self._strip(await handler(self._wrapped(request, inline)))
        if items:
            await inline.astore(items, {})
        return response


def _thread_id() -> str | None:
    try:
        from langgraph.config import get_config

        configurable = get_config().get("configurable") or {}
    except Exception:  # outside a graph run
        return None
    value = configurable.get("thread_id")
    return str(value) if value else None
