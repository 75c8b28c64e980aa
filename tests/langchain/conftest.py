"""Fixtures for the LangChain adapter tests: a scripted chat model that records its inputs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

from headroom.memory import HierarchicalMemory


class ScriptedChatModel(BaseChatModel):
    """Replies with the scripted messages in order (the last one repeats) and records every input.

    Streams each reply in chunks of ``chunk_size`` characters, so tags can be split anywhere.
    """

    replies: list[str | AIMessage]
    chunk_size: int = 4
    calls: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        return self

    def _next(self, messages: list[BaseMessage]) -> AIMessage:
        self.calls.append(list(messages))
        reply = self.replies[min(len(self.calls) - 1, len(self.replies) - 1)]
        return reply if isinstance(reply, AIMessage) else AIMessage(content=reply)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._next(messages))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        text = str(self._next(messages).content)
        for start in range(0, len(text), self.chunk_size):
            piece = text[start : start + self.chunk_size]
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager is not None:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk

    def prompt_text(self, call: int = -1) -> str:
        """All the text the model received in one call."""
        return "\n".join(str(m.content) for m in self.calls[call])


@pytest.fixture
def scripted() -> type[ScriptedChatModel]:
    return ScriptedChatModel


def block(*facts: str, scope: str | None = None) -> str:
    items = ", ".join(
        f'{{"content": "{f}", "category": "preference"'
        + (f', "scope": "{scope}"' if scope else "")
        + "}"
        for f in facts
    )
    return f'<memory>{{"memories": [{items}]}}</memory>'


@pytest.fixture
def memory_block() -> Any:
    return block


def current(hm: HierarchicalMemory, user_id: str) -> list[str]:
    from headroom.memory import MemoryFilter

    return [m.content for m in hm.sync.query(MemoryFilter(user_id=user_id))]


@pytest.fixture
def contents() -> Any:
    return current
