"""``HeadroomCallback``: Headroom memory as a LiteLLM ``CustomLogger``.

Register it with ``litellm.callbacks = [HeadroomCallback(db_path="memory.db")]``, on a
``litellm.Router`` (same list) or in a LiteLLM proxy ``config.yaml``
(``litellm_settings: callbacks: my_module.headroom_callback``).

Which hooks do what (verified on LiteLLM 1.106):

* ``async_pre_call_deployment_hook``: injects memories into non-streaming ``acompletion`` and
  ``Router.acompletion`` requests;
* ``async_post_call_success_deployment_hook``: strips the ``<memory>`` block from those
  responses (and proxy responses) and stores the facts;
* proxy only: ``async_pre_call_hook`` (identity from the authenticated key, inject; the deployment
  hook then leaves the request alone), ``async_post_call_success_hook`` (strip/store if still
  needed) and ``async_post_call_streaming_iterator_hook`` (strip streamed chunks, tags split
  across chunks included; store at the end of the stream).

LiteLLM gives callbacks no way to change sync ``completion`` calls or to strip SDK / Router streams.
So the callback never injects the extraction instruction into an SDK stream (the model would write
a block nobody removes; logged once) and warns once when it sees a sync ``completion``: use
:func:`headroom_litellm.completion` / :func:`headroom_litellm.acompletion` or
:class:`headroom_litellm.HeadroomRouter` there.

In the proxy the user is the authenticated key's (its ``user_id``, else ``team:<team_id>``, else
``key:<hash>``), never the request's ``user`` / metadata, unless ``trust_end_user_id=True``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

from headroom.memory import HierarchicalMemory, MemoryConfig

from ._handler import CHAT_CALL_TYPES, MemoryHandler, call_type_name
from ._identity import drop_client_state, get_state, is_proxy_request, key_identity
from ._memory import DEFAULT_MAX_IDENTITIES, IdentityDefaults, InlinePool, resolve_memory

__all__ = ["HeadroomCallback"]

logger = logging.getLogger(__name__)


class HeadroomCallback(CustomLogger):  # type: ignore[misc]
    """Inject memories into LiteLLM chat requests and extract them from the replies.

    Identity of each SDK / Router request: ``metadata={"headroom_user_id": ...,
    "headroom_session_id": ..., "headroom_agent_id": ...}``, else the request's ``user`` field,
    else ``user_id`` / ``session_id`` / ``agent_id`` given here. Requests without a user pass
    through untouched. In the proxy, the user is the authenticated key's (see the module doc);
    ``trust_end_user_id=True`` lets proxy clients choose the end user (only for proxies whose keys
    are held by your own trusted backends).
    """

    def __init__(
        self,
        *,
        memory: HierarchicalMemory | None = None,
        db_path: str | Path | None = None,
        config: MemoryConfig | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
        agent_id: str | None = None,
        top_k: int = 5,
        max_identities: int = DEFAULT_MAX_IDENTITIES,
        embedder: Any = None,
        trust_end_user_id: bool = False,
        **logger_kwargs: Any,
    ) -> None:
        super().__init__(**logger_kwargs)
        self.trust_end_user_id = trust_end_user_id
        self._warned: set[str] = set()
        hm, owned = resolve_memory(memory, db_path, config, embedder)
        self.memory = hm
        self._owned = owned
        self.handler = MemoryHandler(
            hm,
            defaults=IdentityDefaults(user_id, session_id, agent_id),
            top_k=top_k,
            pool=InlinePool(hm, top_k=top_k, max_identities=max_identities),
        )

    @property
    def top_k(self) -> int:
        return self.handler.top_k

    def close(self) -> None:
        """Close the memory if this callback opened it (from ``db_path`` / ``config``)."""
        if self._owned and not self.memory.closed:
            self.memory.sync.close()

    async def aclose(self) -> None:
        if self._owned and not self.memory.closed:
            await self.memory.close()

    def _warn_once(self, topic: str, message: str) -> None:
        if topic not in self._warned:
            self._warned.add(topic)
            logger.warning(message)

    # -- SDK and Router (and proxy) deployment hooks --------------------------------------------

    async def async_pre_call_deployment_hook(
        self, kwargs: dict[str, Any], call_type: Any
    ) -> dict[str, Any] | None:
        if call_type_name(call_type) not in CHAT_CALL_TYPES or get_state(kwargs) is not None:
            return None
        if is_proxy_request(kwargs):
            return None  # the proxy's identity comes from async_pre_call_hook only
        if kwargs.get("stream"):
            self._warn_once(
                "stream",
                "headroom: HeadroomCallback cannot strip SDK or Router streams, so streaming "
                "acompletion calls get no memory (nothing injected or stored); use "
                "headroom_litellm.acompletion or headroom_litellm.HeadroomRouter for streams",
            )
            return None
        return await self.handler.aprepare_request(kwargs)

    async def async_post_call_success_deployment_hook(
        self, request_data: dict[str, Any], response: Any, call_type: Any
    ) -> Any:
        if call_type_name(call_type) not in CHAT_CALL_TYPES:
            return None
        return await self.handler.aprocess_response(request_data, response, state_only=True)

    def log_pre_api_call(self, model: Any, messages: Any, kwargs: dict[str, Any]) -> None:
        if kwargs.get("call_type") == "completion" and get_state(kwargs) is None:
            self._warn_once(
                "sync",
                "headroom: HeadroomCallback cannot change sync litellm.completion / "
                "Router.completion calls, so they get no memory; call headroom_litellm.completion "
                "(or wrap the router in headroom_litellm.HeadroomRouter) instead",
            )

    # -- proxy hooks -----------------------------------------------------------------------------

    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict[str, Any], call_type: Any
    ) -> dict[str, Any] | None:
        drop_client_state(data)
        if call_type_name(call_type) not in CHAT_CALL_TYPES:
            self.handler.mark_handled(data)
            return data
        try:
            identity = key_identity(
                user_api_key_dict,
                data,
                self.handler.defaults,
                trust_end_user_id=self.trust_end_user_id,
            )
        except Exception:
            logger.exception("headroom: cannot resolve the proxy identity; no memory for it")
            identity = None
        prepared = None
        if identity is not None:
            prepared = await self.handler.aprepare_request(data, identity=identity)
        if prepared is None:
            self.handler.mark_handled(data)
            return data
        data.update(prepared)
        return data

    async def async_post_call_success_hook(
        self, data: dict[str, Any], user_api_key_dict: Any, response: Any
    ) -> Any:
        if not isinstance(data.get("messages"), list):
            return response
        return await self.handler.aprocess_response(data, response, state_only=True)

    async def async_post_call_streaming_iterator_hook(
        self, user_api_key_dict: Any, response: Any, request_data: dict[str, Any]
    ) -> AsyncGenerator[Any, None]:
        stream = response
        if isinstance(request_data, dict) and isinstance(request_data.get("messages"), list):
            stream = self.handler.wrap_async_stream(request_data, response, state_only=True)
        async for chunk in stream:
            yield chunk
