"""Input validation for the public API: clear, typed errors before anything is written."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from .errors import ValidationError
from .models import ScopeLevel

__all__ = [
    "check_content",
    "check_entity_refs",
    "check_id",
    "check_importance",
    "check_metadata",
    "check_optional_id",
    "check_timestamp",
    "derive_scope",
]

MAX_CONTENT_CHARS = 100_000
MAX_ID_CHARS = 255


def check_content(content: Any) -> str:
    if not isinstance(content, str):
        raise ValidationError(f"content must be a string, got {type(content).__name__}")
    stripped = content.strip()
    if not stripped:
        raise ValidationError("content must not be empty")
    if len(stripped) > MAX_CONTENT_CHARS:
        raise ValidationError(f"content is longer than {MAX_CONTENT_CHARS} characters")
    if "\x00" in stripped:
        raise ValidationError("content must not contain NUL characters")
    return stripped


def check_id(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{name} must be a non-empty string, got {value!r}")
    if len(value) > MAX_ID_CHARS:
        raise ValidationError(f"{name} is longer than {MAX_ID_CHARS} characters")
    return value


def check_optional_id(value: Any, name: str) -> str | None:
    return None if value is None else check_id(value, name)


def check_importance(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"importance must be a number in 0..1, got {value!r}")
    number = float(value)
    if math.isnan(number) or not 0.0 <= number <= 1.0:
        raise ValidationError(f"importance must be within 0..1, got {value!r}")
    return number


def check_metadata(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(f"metadata must be a dict, got {type(value).__name__}")
    data = {str(k): v for k, v in value.items()}
    try:
        json.dumps(data)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"metadata must be JSON-serialisable: {exc}") from exc
    return data


def check_entity_refs(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValidationError("entity_refs must be a list of strings")
    refs = []
    for ref in value:
        if not isinstance(ref, str) or not ref.strip():
            raise ValidationError(f"entity_refs items must be non-empty strings, got {ref!r}")
        refs.append(ref.strip())
    return refs


def check_timestamp(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValidationError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{name} must be timezone-aware (e.g. datetime.now(UTC))")
    return value


def derive_scope(
    scope: ScopeLevel | str | None,
    session_id: str | None,
    agent_id: str | None,
    turn_id: str | None,
) -> ScopeLevel:
    """The scope level of a new memory: explicit, or the narrowest id given."""
    if scope is None:
        if turn_id is not None:
            return ScopeLevel.TURN
        if agent_id is not None:
            return ScopeLevel.AGENT
        if session_id is not None:
            return ScopeLevel.SESSION
        return ScopeLevel.USER
    level = ScopeLevel.parse(scope)
    required = {
        ScopeLevel.SESSION: ("session_id", session_id),
        ScopeLevel.AGENT: ("agent_id", agent_id),
        ScopeLevel.TURN: ("turn_id", turn_id),
    }.get(level)
    if required is not None and required[1] is None:
        raise ValidationError(f"a {level.value}-level memory needs {required[0]}")
    return level
