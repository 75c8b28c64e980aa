"""Headroom memory for LangChain and LangGraph.

* :class:`HeadroomMemory`: ``.wrap(chat_model)`` (LCEL), ``.middleware()`` (``create_agent``),
  ``.as_retriever()``, ``.chat_history()``, ``.store()``;
* :class:`HeadroomRetriever`, :class:`HeadroomChatMessageHistory`, :class:`HeadroomChatModel`;
* :class:`HeadroomMiddleware` (needs ``langchain``) and :class:`HeadroomStore` (needs
  ``langgraph``) are imported on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .chat_history import HeadroomChatMessageHistory
from .chat_model import HeadroomChatModel
from .memory import HeadroomMemory
from .retriever import HeadroomRetriever

if TYPE_CHECKING:
    from .middleware import HeadroomMiddleware
    from .store import HeadroomStore

__all__ = [
    "HeadroomChatMessageHistory",
    "HeadroomChatModel",
    "HeadroomMemory",
    "HeadroomMiddleware",
    "HeadroomRetriever",
    "HeadroomStore",
]

_LAZY = {
    "HeadroomMiddleware": ("middleware", "langchain", "agents"),
    "HeadroomStore": ("store", "langgraph", "langgraph"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, package, extra = _LAZY[name]
        import importlib

        from ._memory import missing

        try:
            return getattr(importlib.import_module(f"{__name__}.{module}"), name)
        except ImportError as exc:
            raise missing(package, extra) from exc
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
