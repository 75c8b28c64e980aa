"""HeadroomMemory: the LangChain entry point (wrap a chat model, retriever, middleware, history)."""

from __future__ import annotations

import logging
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel

from headroom.inline.memory import InlineMemory
from headroom.memory import HierarchicalMemory, MemoryConfig
from headroom.memory.ports import Embedder

from ._memory import missing, resolve_memory, store_location
from .chat_history import ChatMessageStore, HeadroomChatMessageHistory
from .chat_model import HeadroomChatModel
from .retriever import HeadroomRetriever

if TYPE_CHECKING:
    from .middleware import HeadroomMiddleware
    from .store import HeadroomStore

__all__ = ["HeadroomMemory"]

logger = logging.getLogger(__name__)


class HeadroomMemory:
    """Headroom memory for one identity (user, optional session and agent) in LangChain.

    ::

        memory = HeadroomMemory(db_path="memory.db", user_id="alice", session_id="s1")
        chain = prompt | memory.wrap(llm) | StrOutputParser()   # inject + extract + strip
        agent = create_agent(llm, tools, middleware=[memory.middleware()])
        docs = memory.as_retriever(k=3).invoke("favourite language")
        history = memory.chat_history("s1")

    Pass ``memory=`` to share an open HierarchicalMemory (with ``with_memory`` or other adapters);
    with ``db_path=`` / ``config=`` this object opens one and :meth:`close` closes it.
    """

    def __init__(
        self,
        memory: HierarchicalMemory | None = None,
        *,
        user_id: str,
        session_id: str | None = None,
        agent_id: str | None = None,
        db_path: str | Path | None = None,
        config: MemoryConfig | None = None,
        embedder: Embedder | None = None,
        top_k: int = 5,
        token_budget: int = 600,
    ) -> None:
        self.memory, self._owned = resolve_memory(
            memory, db_path=db_path, config=config, embedder=embedder
        )
        try:
            self.inline = InlineMemory(
                self.memory, user_id=user_id, session_id=session_id, agent_id=agent_id,
                top_k=top_k, token_budget=token_budget,
            )  # fmt: skip
        except BaseException:
            self.close()
            raise
        self.top_k = top_k
        self._chat_store: ChatMessageStore | None = None

    @property
    def user_id(self) -> str:
        return self.inline.user_id

    @property
    def session_id(self) -> str | None:
        return self.inline.explicit_session_id

    @property
    def agent_id(self) -> str | None:
        return self.inline.agent_id

    def wrap(
        self,
        chat_model: BaseChatModel,
        *,
        propagate_callbacks: bool = False,
        use_config_identity: bool = True,
    ) -> HeadroomChatModel:
        """A chat model that injects memories, strips the ``<memory>`` block and stores facts.

        Per call, ``config={"configurable": {"user_id": ..., "session_id": ...}}`` selects the
        identity (this object's ids are the default), so one chain serves many users; set those
        from your authenticated request, never from message content. ``use_config_identity=False``
        pins this object's identity.
        """
        return HeadroomChatModel(
            model=chat_model, inline=self.inline, propagate_callbacks=propagate_callbacks,
            use_config_identity=use_config_identity,
        )  # fmt: skip

    def as_retriever(self, k: int = 4, **kwargs: Any) -> HeadroomRetriever:
        """A retriever over the memories visible to this identity (``kwargs``: retriever fields)."""
        return HeadroomRetriever(
            memory=self.memory, user_id=self.user_id, session_id=self.session_id,
            agent_id=self.agent_id, k=k, **kwargs,
        )  # fmt: skip

    def middleware(self, *, use_context_identity: bool = True) -> HeadroomMiddleware:
        """An ``AgentMiddleware`` for ``langchain.agents.create_agent`` (needs ``langchain``)."""
        try:
            from .middleware import HeadroomMiddleware
        except ImportError as exc:
            raise missing("langchain", "agents") from exc
        return HeadroomMiddleware(
            self.memory, user_id=self.user_id, top_k=self.top_k,
            use_context_identity=use_context_identity, inline=self.inline,
        )  # fmt: skip

    def chat_history(self, session_id: str | None = None) -> HeadroomChatMessageHistory:
        """The raw conversation of ``session_id`` (default: this memory's session) for this user."""
        session = session_id or self.session_id or self.inline.session_id
        if self._chat_store is None:
            self._chat_store = ChatMessageStore(store_location(self.memory.config))
        return HeadroomChatMessageHistory(session, user_id=self.user_id, store=self._chat_store)

    def store(self, **kwargs: Any) -> HeadroomStore:
        """A LangGraph ``BaseStore`` over the same memory (needs ``langgraph``).

        ``kwargs`` are :class:`HeadroomStore`'s: ``layout=`` (default ``("user", None, "session",
        "agent")``: ``(user_id, "memories")`` is the user), ``index=`` (LangGraph's IndexConfig).
        """
        try:
            from .store import HeadroomStore
        except ImportError as exc:
            raise missing("langgraph", "langgraph") from exc
        kwargs.setdefault("user_id", self.user_id)
        return HeadroomStore(self.memory, **kwargs)

    def close(self) -> None:
        """Release the chat-history connections and close the memory if this object opened it."""
        if self._chat_store is not None:
            self._chat_store.close()
            self._chat_store = None
        if self._owned:
            self.memory.sync.close()

    def __enter__(self) -> HeadroomMemory:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"HeadroomMemory(user_id={self.user_id!r}, session_id={self.session_id!r}, "
            f"agent_id={self.agent_id!r}, db_path={str(self.memory.config.db_path)!r})"
        )
