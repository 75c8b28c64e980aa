"""Who a LiteLLM request belongs to, and the state that travels from the request to the reply.

Identity, field by field, first found wins:

1. explicit keywords of the wrappers (``user_id=``, ``session_id=``, ``agent_id=``);
2. ``metadata["headroom_user_id" | "headroom_session_id" | "headroom_agent_id"]`` in the
   request's ``metadata``, ``litellm_metadata`` or ``litellm_params["metadata"]``;
3. for the user only: the request's OpenAI ``user`` field;
4. the defaults of the callback / wrapper.

A request with no user at the end is not touched (and nothing is stored): memories are never kept
under a shared identity.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ._memory import Identity, IdentityDefaults

__all__ = [
    "METADATA_KEYS",
    "STATE_KEY",
    "get_state",
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


def make_state(owner: str, identity: Identity, refs: Mapping[str, str]) -> dict[str, Any]:
    return {
        "owner": owner,
        "user_id": identity.user_id,
        "session_id": identity.session_id,
        "agent_id": identity.agent_id,
        "refs": dict(refs),
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
