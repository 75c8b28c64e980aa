"""The request/response logic shared by :class:`HeadroomCallback` and the wrappers.

A :class:`MemoryHandler` binds one :class:`InlinePool` (one memory, per-identity InlineMemory) and
default identity. Request side: resolve the identity, inject through the core's InlineMemory
(idempotent: the core never injects twice), and leave a small state in the request's metadata
(``headroom_state``: owner, identity, injected references) for the response side, which strips
the ``<memory>`` block and stores its facts with those references (supersession). Nothing here
raises into the user's call: failures are logged and the request or response goes through as is.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from headroom.inline.memory import InlineMemory
from headroom.memory import HierarchicalMemory

from ._identity import (
    get_state,
    identity_of_state,
    make_state,
    put_state,
    refs_of_state,
    resolve_identity,
)
from ._memory import Identity, IdentityDefaults, InlinePool
from ._responses import StreamStripper, strip_async_stream, strip_response, strip_sync_stream

__all__ = ["CHAT_CALL_TYPES", "MemoryHandler"]

logger = logging.getLogger(__name__)

CHAT_CALL_TYPES = frozenset({"completion", "acompletion"})


def call_type_name(call_type: Any) -> str | None:
    """``"acompletion"`` for ``CallTypes.acompletion`` or the string; ``None`` if unknown."""
    if call_type is None:
        return None
    value = getattr(call_type, "value", call_type)
    return value if isinstance(value, str) else None


class MemoryHandler:
    """Inject into chat requests and strip/store chat responses for one memory."""

    def __init__(
        self,
        memory: HierarchicalMemory,
        *,
        defaults: IdentityDefaults | None = None,
        top_k: int = 5,
        pool: InlinePool | None = None,
    ) -> None:
        self.memory = memory
        self.defaults = defaults
        self.top_k = top_k
        self.pool = pool if pool is not None else InlinePool(memory, top_k=top_k)
        self.owner = uuid.uuid4().hex

    # -- identity ----------------------------------------------------------------------------------

    def identity(self, request: Mapping[str, Any], **explicit: str | None) -> Identity | None:
        identity = resolve_identity(request, self.defaults, **explicit)
        if identity is None:
            logger.info(
                "headroom: request for model %r has no user id (metadata headroom_user_id, the "
                "'user' field or a default); passing it through without memory",
                request.get("model"),
            )
        return identity

    def _inline(self, identity: Identity) -> InlineMemory | None:
        try:
            return self.pool.get(identity, top_k=self.top_k)
        except Exception:
            logger.exception("headroom: invalid identity %r; passing the request through", identity)
            return None

    def _claim(self, request: Mapping[str, Any]) -> tuple[bool, dict[str, Any] | None]:
        """``(mine, state)``: whether this handler may touch ``request``, and its state."""
        state = get_state(request)
        if state is not None and state.get("owner") != self.owner:
            return False, state
        return True, state

    # -- requests --------------------------------------------------------------------------------

    def _request_parts(
        self,
        request: Mapping[str, Any],
        explicit: Mapping[str, str | None],
        identity: Identity | None = None,
    ) -> tuple[Identity, InlineMemory, list[Any]] | None:
        messages = request.get("messages")
        if not isinstance(messages, list) or not messages:
            return None
        if get_state(request) is not None:
            return None  # already handled (by this handler, or by another one that owns it)
        identity = identity or self.identity(request, **explicit)
        if identity is None:
            return None
        inline = self._inline(identity)
        return None if inline is None else (identity, inline, messages)

    def _prepared(
        self, request: Mapping[str, Any], identity: Identity, prepared: Any
    ) -> dict[str, Any]:
        out = {**request, "messages": prepared.messages}
        put_state(out, make_state(self.owner, identity, prepared.refs))
        return out

    def mark_handled(self, request: dict[str, Any]) -> None:
        """Record in ``request`` that this handler decided to leave it (and its reply) alone."""
        put_state(request, make_state(self.owner, None))

    async def aprepare_request(
        self,
        request: Mapping[str, Any],
        *,
        identity: Identity | None = None,
        **explicit: str | None,
    ) -> dict[str, Any] | None:
        """A new request with memories injected, or ``None`` to leave ``request`` as it is.

        ``identity`` (the proxy's, from the authenticated key) replaces the request's own ids.
        """
        try:
            parts = self._request_parts(request, explicit, identity)
            if parts is None:
                return None
            identity, inline, messages = parts
            prepared = await inline.aprepare(messages)
            return self._prepared(request, identity, prepared)
        except Exception:
            logger.exception("headroom: preparing the request failed; sending it unchanged")
            return None

    def prepare_request(
        self, request: Mapping[str, Any], **explicit: str | None
    ) -> dict[str, Any] | None:
        """Blocking twin of :meth:`aprepare_request`."""
        try:
            parts = self._request_parts(request, explicit)
            if parts is None:
                return None
            identity, inline, messages = parts
            return self._prepared(request, identity, inline.prepare(messages))
        except Exception:
            logger.exception("headroom: preparing the request failed; sending it unchanged")
            return None

    # -- responses -------------------------------------------------------------------------------

    def _response_target(
        self,
        request: Mapping[str, Any],
        explicit: Mapping[str, str | None],
        state_only: bool = False,
    ) -> tuple[InlineMemory, dict[str, str]] | None:
        """Where the reply's facts go: the identity of this handler's state (``state_only``: only
        that one; otherwise, without a state, the request's own identity)."""
        mine, state = self._claim(request)
        if not mine:
            return None
        if state is not None:
            identity = identity_of_state(state)
        elif state_only:
            return None
        else:
            identity = self.identity(request, **explicit)
        if identity is None:
            return None
        inline = self._inline(identity)
        if inline is None:
            return None
        return inline, refs_of_state(state) if state is not None else {}

    async def aprocess_response(
        self,
        request: Mapping[str, Any],
        response: Any,
        *,
        state_only: bool = False,
        **explicit: str | None,
    ) -> Any:
        """Strip ``response`` in place and store its facts; returns ``response``."""
        try:
            target = self._response_target(request, explicit, state_only)
            if target is None:
                return response
            items = strip_response(response)
            if items:
                await target[0].astore(items, target[1])
        except Exception:
            logger.exception("headroom: processing the response failed; returning it unchanged")
        return response

    def process_response(
        self, request: Mapping[str, Any], response: Any, **explicit: str | None
    ) -> Any:
        """Blocking twin of :meth:`aprocess_response`."""
        try:
            target = self._response_target(request, explicit)
            if target is None:
                return response
            items = strip_response(response)
            if items:
                target[0].store(items, target[1])
        except Exception:
            logger.exception("headroom: processing the response failed; returning it unchanged")
        return response

    def wrap_stream(
        self, request: Mapping[str, Any], stream: Iterator[Any], **explicit: str | None
    ) -> Iterator[Any]:
        """``stream`` with the block removed (facts stored at its end), or ``stream`` itself."""
        try:
            target = self._response_target(request, explicit)
        except Exception:
            logger.exception("headroom: cannot process the stream; passing it through")
            target = None
        if target is None:
            return stream
        inline, refs = target

        def done(stripper: StreamStripper) -> None:
            inline.store(stripper.items, refs)

        return strip_sync_stream(stream, done)

    def wrap_async_stream(
        self,
        request: Mapping[str, Any],
        stream: AsyncIterator[Any],
        *,
        state_only: bool = False,
        **explicit: str | None,
    ) -> AsyncIterator[Any]:
        """Async twin of :meth:`wrap_stream`."""
        try:
            target = self._response_target(request, explicit, state_only)
        except Exception:
            logger.exception("headroom: cannot process the stream; passing it through")
            target = None
        if target is None:
            return stream
        inline, refs = target

        async def done(stripper: StreamStripper) -> None:
            await inline.astore(stripper.items, refs)

        return strip_async_stream(stream, done)
