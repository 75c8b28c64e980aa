"""Headroom memory for LiteLLM: every provider, the SDK, the Router and the proxy.

Set ``LITELLM_LOCAL_MODEL_COST_MAP=True`` where no network is wanted (LiteLLM otherwise fetches
its model cost map on import).

Which entry point to use:

* sync ``litellm.completion``, any SDK streaming, sync ``Router.completion``: LiteLLM callbacks
  cannot change these, so call :func:`completion` / :func:`acompletion` (same arguments as
  LiteLLM's, plus ``user_id=``, ``session_id=``, ``agent_id=``, ``memory=`` or ``db_path=`` /
  ``config=``, ``top_k=``) or wrap the router in :class:`HeadroomRouter`;
* non-streaming ``litellm.acompletion`` / ``Router.acompletion`` of code you do not control:
  register :class:`HeadroomCallback` in ``litellm.callbacks`` (it never injects into SDK streams,
  which it cannot strip, and warns once when it sees a sync ``completion``);
* the LiteLLM proxy (streaming or not): :class:`HeadroomCallback` in the proxy's ``config.yaml``
  (``litellm_settings: callbacks: my_module.headroom_callback``).

In the SDK, the user of each request comes from ``metadata={"headroom_user_id": ...}`` (also
``headroom_session_id`` / ``headroom_agent_id``), else the request's ``user`` field, else the
defaults given; requests without a user pass through untouched. In the proxy, the user is the
authenticated key's (``user_api_key_dict``: its user, else ``team:<id>``, else ``key:<hash>``);
``HeadroomCallback(trust_end_user_id=True)`` opts in to client-chosen end users. Failures of the
memory layer are logged and never fail the LLM call. Injection and extraction are the core's
(:class:`headroom.inline.memory.InlineMemory`), identical to ``with_memory``.
"""

from __future__ import annotations

from ._identity import METADATA_KEYS
from ._memory import Identity, IdentityDefaults, MemoryRegistry
from .callback import HeadroomCallback
from .wrappers import (
    AsyncHeadroomStream,
    HeadroomRouter,
    HeadroomStream,
    acompletion,
    close_all,
    completion,
    default_registry,
)

__all__ = [
    "METADATA_KEYS",
    "AsyncHeadroomStream",
    "HeadroomCallback",
    "HeadroomRouter",
    "HeadroomStream",
    "Identity",
    "IdentityDefaults",
    "MemoryRegistry",
    "acompletion",
    "close_all",
    "completion",
    "default_registry",
]
