"""Per-request identity: (user_id, session_id, agent_id) from the caller's config or run context.

Identity comes only from what the application passes (``config={"configurable": {...}}``, the
agent run's ``context=``, the LangGraph ``thread_id``), never from message content. One
:class:`IdentityCache` keeps one :class:`InlineMemory` per identity, with the default's settings.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from typing import Any

from headroom.inline.memory import InlineMemory

__all__ = ["IDS", "IdentityCache", "cache_for", "identity_from"]

IDS = ("user_id", "session_id", "agent_id")
_MAX_CACHED = 256

Identity = tuple[str, str | None, str | None]


def identity_from(source: Any, *, thread_id: Any = None) -> dict[str, str]:
    """The non-empty string ids of ``source`` (a mapping or an object with those attributes).

    Without a ``session_id``, a non-empty ``thread_id`` is used as the session.
    """
    found: dict[str, str] = {}
    for name in IDS:
        value = source.get(name) if isinstance(source, Mapping) else getattr(source, name, None)
        if isinstance(value, str) and value:
            found[name] = value
    if "session_id" not in found and thread_id:
        found["session_id"] = str(thread_id)
    return found


class IdentityCache:
    """One InlineMemory per identity; ids not given fall back to the default's."""

    def __init__(self, default: InlineMemory) -> None:
        self._default = weakref.ref(default)  # weak: the module-level cache is keyed on it
        self._cache: dict[Identity, InlineMemory] = {}
        self._lock = threading.Lock()

    @property
    def default(self) -> InlineMemory:
        default = self._default()
        if default is None:  # pragma: no cover - the owner keeps it alive while calling
            raise RuntimeError("the default InlineMemory is gone")
        return default

    def get(self, ids: Mapping[str, str] | None) -> InlineMemory:
        d = self.default
        if not ids:
            return d
        key: Identity = (
            ids.get("user_id") or d.user_id,
            ids.get("session_id") or d.explicit_session_id,
            ids.get("agent_id") or d.agent_id,
        )
        if key == (d.user_id, d.explicit_session_id, d.agent_id):
            return d
        with self._lock:
            inline = self._cache.get(key)
            if inline is None:
                if len(self._cache) >= _MAX_CACHED:
                    self._cache.clear()
                inline = InlineMemory(
                    d.memory, user_id=key[0], session_id=key[1], agent_id=key[2],
                    top_k=d.top_k, token_budget=d.token_budget, min_similarity=d.min_similarity,
                    dedup_threshold=d.dedup_threshold, default_importance=d.default_importance,
                    instruction=d.instruction,
                )  # fmt: skip
                self._cache[key] = inline
            return inline


_CACHES: weakref.WeakKeyDictionary[InlineMemory, IdentityCache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def cache_for(default: InlineMemory) -> IdentityCache:
    """The one IdentityCache of ``default`` (shared by every wrapped model and middleware on it).

    So the InlineMemory of an identity, and the automatic session id of an identity without one,
    survive ``bind_tools`` copies (``create_agent`` binds tools on every model call).
    """
    with _CACHES_LOCK:
        cache = _CACHES.get(default)
        if cache is None:
            cache = _CACHES[default] = IdentityCache(default)
        return cache
