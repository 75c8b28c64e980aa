"""Who a LiteLLM request belongs to, and the state that travels from the request to the reply.

Identity, field by field, first found wins:

1. explicit keywords of the wrappers (``user_id=``, ``session_id=``, ``agent_id=``);
2. ``metadata["headroom_user_id" | "headroom_session_id" | "headroom_agent_id"]`` in the
   request's ``metadata``, ``litellm_metadata`` or ``litellm_params["metadata"]``;
3. for the user only: the request's OpenAI ``user`` field;
4. the defaults of the callback / wrapper.

A request with no user at the end is not touched (and nothing is stored): memories are never kept
under a shared identity.

In the LiteLLM proxy the client is not trusted: :func:`key_identity` takes the user from the
authenticated key (``user_api_key_dict``) instead; only session and agent ids (which narrow what a
user sees, never widen it) come from the request. ``trust_end_user_id=True`` (opt-in) lets the
client name the end user (metadata ``headroom_user_id``, the ``user`` field, or the end user
LiteLLM resolved).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from typing import Any

from ._memory import Identity, IdentityDefaults

__all__ = [
    "METADATA_KEYS",
    "STATE_KEY",
    "drop_client_state",
    "get_state",
    "is_proxy_request",
    "key_identity",
    "key_principal",
    "put_state",
    "resolve_identity",
]

METADATA_KEYS = {
    "user_id": "headroom_user_id",
    "session_id": "headroom_session_id",
    "agent_id": "headroom_agent_id",
}
STATE_KEY = "headroom_state"
"""Metadata key under which the request hooks leave the identity and the injected references."""

_METADATA_FIELDS = ("metadata", "litellm_metadata")
_PROXY_MARKERS = ("user_api_key_hash", "user_api_key")
"""Metadata the LiteLLM proxy adds to every authenticated request (clients cannot remove it)."""


def _metadata_dicts(request: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for name in _METADATA_FIELDS:
        value = request.get(name)
        if isinstance(value, Mapping):
            yield value
    params = request.get("litellm_params")
    if isinstance(params, Mapping):
        value = params.get("metadata")
        if isinstance(value, Mapping):
            yield value


def _from_metadata(request: Mapping[str, Any], key: str) -> str | None:
    for metadata in _metadata_dicts(request):
        value = metadata.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def resolve_identity(
    request: Mapping[str, Any],
    defaults: IdentityDefaults | None = None,
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    agent_id: str | None = None,
) -> Identity | None:
    """The identity of ``request``, or ``None`` when no user can be found."""
    user = user_id or _from_metadata(request, METADATA_KEYS["user_id"])
    if not user:
        field = request.get("user")
        user = field if isinstance(field, str) and field.strip() else None
    if not user and defaults is not None:
        user = defaults.user_id
    if not user:
        return None
    session = session_id or _from_metadata(request, METADATA_KEYS["session_id"])
    agent = agent_id or _from_metadata(request, METADATA_KEYS["agent_id"])
    if defaults is not None:
        session = session or defaults.session_id
        agent = agent or defaults.agent_id
    return Identity(user_id=user, session_id=session, agent_id=agent)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def key_principal(user_api_key_dict: Any) -> str | None:
    """The memory user of a proxy key: its user id, else ``team:<team_id>``, else ``key:<hash>``."""
    if user_api_key_dict is None:
        return None
    user = _text(getattr(user_api_key_dict, "user_id", None))
    if user:
        return user
    team = _text(getattr(user_api_key_dict, "team_id", None))
    if team:
        return f"team:{team}"
    secret = _text(getattr(user_api_key_dict, "token", None)) or _text(
        getattr(user_api_key_dict, "api_key", None)
    )
    if secret:
        return "key:" + hashlib.sha256(secret.encode()).hexdigest()[:32]
    return None


def key_identity(
    user_api_key_dict: Any,
    request: Mapping[str, Any],
    defaults: IdentityDefaults | None = None,
    *,
    trust_end_user_id: bool = False,
) -> Identity | None:
    """The identity of a proxy request: the user from the authenticated key (see the module doc)."""
    user = None
    if trust_end_user_id:
        user = (
            _from_metadata(request, METADATA_KEYS["user_id"])
            or _text(request.get("user"))
            or _text(getattr(user_api_key_dict, "end_user_id", None))
        )
    user = user or key_principal(user_api_key_dict)
    if not user:
        return None
    session = _from_metadata(request, METADATA_KEYS["session_id"])
    agent = _from_metadata(request, METADATA_KEYS["agent_id"])
    if defaults is not None:
        session = session or defaults.session_id
        agent = agent or defaults.agent_id
    return Identity(user_id=user, session_id=session, agent_id=agent)


def is_proxy_request(request: Mapping[str, Any]) -> bool:
    """Whether the LiteLLM proxy authenticated ``request`` (its metadata names the key)."""
    return any(
        any(marker in metadata for marker in _PROXY_MARKERS)
        for metadata in _metadata_dicts(request)
    )


def drop_client_state(request: dict[str, Any]) -> None:
    """Remove any ``headroom_state`` a client put in the request's metadata (never trusted)."""
    for name in _METADATA_FIELDS:
        value = request.get(name)
        if isinstance(value, Mapping) and STATE_KEY in value:
            request[name] = {k: v for k, v in value.items() if k != STATE_KEY}
    params = request.get("litellm_params")
    if isinstance(params, dict):
        value = params.get("metadata")
        if isinstance(value, Mapping) and STATE_KEY in value:
            params["metadata"] = {k: v for k, v in value.items() if k != STATE_KEY}


def get_state(request: Mapping[str, Any]) -> dict[str, Any] | None:
    """The state a request hook left in ``request``'s metadata, if any."""
    for metadata in _metadata_dicts(request):
        state = metadata.get(STATE_KEY)
        if isinstance(state, Mapping):
            return dict(state)
    return None


def put_state(request: dict[str, Any], state: Mapping[str, Any]) -> None:
    """Record ``state`` in ``request``'s metadata (a copy of it: the caller's dict is not mutated)."""
    name = next(
        (n for n in _METADATA_FIELDS if isinstance(request.get(n), Mapping)), _METADATA_FIELDS[0]
    )
    existing = request.get(name)
    request[name] = {**(existing if isinstance(existing, Mapping) else {}), STATE_KEY: dict(state)}


def make_state(
    owner: str, identity: Identity | None, refs: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The state of a handled request (``identity=None``: handled, nothing to do for it)."""
    return {
        "owner": owner,
        "user_id": identity.user_id if identity else None,
        "session_id": identity.session_id if identity else None,
        "agent_id": identity.agent_id if identity else None,
        "refs": dict(refs or {}),
    }


def identity_of_state(state: Mapping[str, Any]) -> Identity | None:
    user = state.get("user_id")
    if not isinstance(user, str) or not user:
        return None
    session = state.get("session_id")
    agent = state.get("agent_id")
    return Identity(
        user_id=user,
        session_id=session if isinstance(session, str) else None,
        agent_id=agent if isinstance(agent, str) else None,
    )


def refs_of_state(state: Mapping[str, Any]) -> dict[str, str]:
    refs = state.get("refs")
    if not isinstance(refs, Mapping):
        return {}
    return {str(k): str(v) for k, v in refs.items()}
