"""Headroom memory for LlamaIndex: chat stores, a memory block, an LLM wrapper and a retriever.

* :class:`HeadroomChatStore` - ``BaseChatStore`` (``ChatMemoryBuffer``, chat engines, agents);
* :class:`HeadroomDBChatStore` - ``AsyncDBChatStore`` for ``Memory.from_defaults(chat_store=...)``;
* :class:`HeadroomMemoryBlock` and :func:`headroom_memory_blocks_template` - long-term memories in
  ``Memory`` without a ``<memory>`` tag collision;
* :class:`HeadroomMemory` - a ``BaseMemory`` (``HeadroomMemory.from_defaults(user_id=..., llm=...)``)
  that recalls memories and extracts facts with any LLM (one extra call per reply);
* :class:`HeadroomLLM` - wraps any LLM: injects memories, extracts and stores facts, strips blocks;
* :class:`HeadroomRetriever` - memories as ``NodeWithScore``.

Everything shares one SQLite database with ``headroom.with_memory`` and the other adapters.
"""

from __future__ import annotations

from ._chat_db import ChatStoreIndexError
from .chat_store import HeadroomChatStore
from .db_chat_store import HeadroomDBChatStore
from .headroom_memory import HeadroomMemory
from .llm import HeadroomLLM
from .memory_block import HeadroomMemoryBlock, headroom_memory_blocks_template
from .retriever import HeadroomRetriever, search_result_to_node

__all__ = [
    "ChatStoreIndexError",
    "HeadroomChatStore",
    "HeadroomDBChatStore",
    "HeadroomLLM",
    "HeadroomMemory",
    "HeadroomMemoryBlock",
    "HeadroomRetriever",
    "headroom_memory_blocks_template",
    "search_result_to_node",
]
