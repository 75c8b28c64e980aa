"""Input validation for the public API: clear, typed errors before anything is written.

Every public entry point (HierarchicalMemory and its ``.sync`` twin, ``Memory``, ``with_memory``,
``MemoryFilter``, the CLI) checks its arguments here, so bad input raises a
:class:`~headroom.memory.errors.ValidationError` whose message names the argument, never a raw
``TypeError`` / ``UnicodeEncodeError`` / database error. Rules:

* text (content, ids, queries, metadata strings, entity refs) must be valid Unicode: a lone
  surrogate (``"\\ud800"``) is rejected, never silently replaced (the inline layer, which reads
  model and user text, replaces them with U+FFFD before calling the engine: :func:`clean_text`);
* numbers must be finite; metadata must be plain JSON (str keys; str, int, finite float, bool,
  None, lists and dicts of those, at most ``MAX_JSON_DEPTH`` deep; integers within 64 bits);
* timestamps must be timezone-aware ``datetime`` objects;
* an AGENT- or TURN-level memory needs ``session_id`` (see :func:`derive_scope`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from .errors import ValidationError
from .models import MemoryCategory, ScopeLevel

__all__ = [
    "check_bool",
    "check_config_fields",
    "check_content",
    "check_entity_refs",
    "check_filter",
    "check_filter_fields",
    "check_id",
    "check_import_links",
    "check_importance",
    "check_int",
    "check_kwargs",
    "check_metadata",
    "check_mode",
    "check_number",
    "check_optional_id",
    "check_query",
    "check_record",
    "check_search_args",
    "check_text",
    "check_timestamp",
    "check_top_k",
    "clean_text",
    "derive_scope",
]

MAX_CONTENT_CHARS = 100_000
MAX_ID_CHARS = 255
MAX_TOP_K = 10_000
MAX_LIMIT = 2**62
MAX_JSON_DEPTH = 32
ADD_KWARGS = ("session_id", "agent_id", "turn_id", "category", "importance", "entity_refs",
              "metadata", "valid_from", "scope", "context")  # fmt: skip
SEARCH_FILTER_KWARGS = ("categories", "min_importance", "include_superseded", "valid_at",
                        "metadata", "entity_refs")  # fmt: skip
UPDATE_KWARGS = ("user_id", "content", "category", "importance", "entity_refs", "metadata")
SUPERSEDE_KWARGS = ("user_id", "category", "importance", "entity_refs", "metadata", "valid_from")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
SEARCH_MODES = ("hybrid", "semantic", "text")
ORDER_BY = ("created_at", "-created_at", "importance", "-importance")


def _type(value: Any) -> str:
    return type(value).__name__


def check_text(value: Any, name: str) -> str:
    """A ``str`` of valid Unicode (no lone surrogates)."""
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string, got {_type(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(
            f"{name} contains a lone surrogate at position {exc.start} (invalid Unicode)"
        ) from None
    return value


def clean_text(value: str) -> str:
    """``value`` with lone surrogates replaced by U+FFFD (for text read from models and users)."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return _SURROGATE_RE.sub("\ufffd", value)


def check_content(content: Any, name: str = "content") -> str:
    check_text(content, name)
    stripped = content.strip()
    if not stripped:
        raise ValidationError(f"{name} must not be empty")
    if len(stripped) > MAX_CONTENT_CHARS:
        raise ValidationError(f"{name} is longer than {MAX_CONTENT_CHARS} characters")
    if "\x00" in stripped:
        raise ValidationError(f"{name} must not contain NUL characters")
    return stripped


def check_id(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{name} must be a non-empty string, got {value!r}")
    if len(value) > MAX_ID_CHARS:
        raise ValidationError(f"{name} is longer than {MAX_ID_CHARS} characters")
    check_text(value, name)
    if "\x00" in value:
        raise ValidationError(f"{name} must not contain NUL characters")
    return value


def check_optional_id(value: Any, name: str) -> str | None:
    return None if value is None else check_id(value, name)


def check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"{name} must be True or False, got {value!r}")
    return value


def check_number(
    value: Any, name: str, *, low: float | None = None, high: float | None = None
) -> float:
    """A finite real number (not a bool, not a string) within ``low..high``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{name} must be a number, got {_type(value)} {value!r}")
    try:
        number = float(value)
    except OverflowError:
        raise ValidationError(f"{name} is too large: {value!r}") from None
    if not math.isfinite(number):
        raise ValidationError(f"{name} must be a finite number, got {value!r}")
    if (low is not None and number < low) or (high is not None and number > high):
        raise ValidationError(f"{name} must be within {low}..{high}, got {value!r}")
    return number


def check_int(value: Any, name: str, *, low: int, high: int) -> int:
    """An ``int`` (not a bool, float or string) within ``low..high``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name} must be an integer, got {_type(value)} {value!r}")
    if not low <= value <= high:
        raise ValidationError(f"{name} must be within {low}..{high}, got {value!r}")
    return int(value)


def check_importance(value: Any, name: str = "importance") -> float:
    return check_number(value, name, low=0.0, high=1.0)


def check_top_k(value: Any) -> int:
    return check_int(value, "top_k", low=1, high=MAX_TOP_K)


def check_mode(value: Any) -> str:
    if value not in SEARCH_MODES:
        raise ValidationError(f"mode must be one of {', '.join(SEARCH_MODES)}; got {value!r}")
    return str(value)


def check_query(value: Any) -> str:
    return check_text(value, "query")


def check_search_args(query: Any, top_k: Any, min_similarity: Any, mode: Any) -> None:
    """The arguments of ``search`` besides the filter."""
    check_query(query)
    check_top_k(top_k)
    check_number(min_similarity, "min_similarity")
    check_mode(mode)


def _check_json(value: Any, name: str, depth: int) -> Any:
    if depth > MAX_JSON_DEPTH:
        raise ValidationError(f"{name} is nested deeper than {MAX_JSON_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return check_text(value, name)
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise ValidationError(f"{name} must fit in 64 bits (a JSON number SQL can compare)")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"{name} must be a finite number (JSON has no NaN/Infinity)")
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(f"{name} keys must be strings, got {_type(key)} {key!r}")
            check_text(key, f"{name} key")
            out[key] = _check_json(item, f"{name}[{key!r}]", depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_check_json(item, f"{name}[{i}]", depth + 1) for i, item in enumerate(value)]
    raise ValidationError(
        f"{name} must be JSON (str, number, bool, None, list, dict), got {_type(value)}"
    )


def check_metadata(value: Any, name: str = "metadata") -> dict[str, Any]:
    """Plain JSON with str keys and finite numbers (what the store can always read back)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(f"{name} must be a dict, got {_type(value)}")
    data: dict[str, Any] = _check_json(value, name, 0)
    try:
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:  # pragma: no cover - checked above
        raise ValidationError(f"{name} must be JSON-serialisable: {exc}") from exc
    return data


def check_entity_refs(value: Any, name: str = "entity_refs") -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValidationError(f"{name} must be a list of strings, got {_type(value)}")
    refs = []
    for i, ref in enumerate(value):
        if not isinstance(ref, str) or not ref.strip():
            raise ValidationError(f"{name}[{i}] must be a non-empty string, got {ref!r}")
        check_text(ref, f"{name}[{i}]")
        if len(ref) > MAX_CONTENT_CHARS:
            raise ValidationError(f"{name}[{i}] is too long")
        refs.append(ref.strip())
    return refs


def check_timestamp(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValidationError(f"{name} must be a datetime, got {_type(value)} {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{name} must be timezone-aware (e.g. datetime.now(UTC))")
    return value


def _check_str_list(value: Any, name: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValidationError(f"{name} must be a list of strings, got {_type(value)}")
    return [check_id(v, f"{name}[{i}]") for i, v in enumerate(value)]


def check_filter_fields(f: Any) -> None:
    """Validate and normalise a MemoryFilter's fields in place (called on construction and use)."""
    for name in ("user_id", "session_id", "agent_id", "turn_id"):
        check_optional_id(getattr(f, name), name)
    check_bool(f.exact_scope, "exact_scope")
    check_bool(f.include_superseded, "include_superseded")
    if f.scope_levels is not None:
        if isinstance(f.scope_levels, str) or not isinstance(f.scope_levels, Sequence):
            raise ValidationError("scope_levels must be a list of scope levels")
        f.scope_levels = [ScopeLevel.parse(s) for s in f.scope_levels]
    if f.categories is not None:
        if isinstance(f.categories, str) or not isinstance(f.categories, Sequence):
            raise ValidationError("categories must be a list of categories")
        f.categories = [MemoryCategory.parse(c) for c in f.categories]
    for name in ("min_importance", "max_importance"):
        if getattr(f, name) is not None:
            check_number(getattr(f, name), name)
    for name in ("valid_at", "created_after", "created_before"):
        check_timestamp(getattr(f, name), name)
    if f.metadata is not None:
        meta = check_metadata(f.metadata)
        for key, value in meta.items():
            if isinstance(value, list | dict):
                raise ValidationError(f"metadata[{key!r}] filter must be a JSON scalar")
        f.metadata = meta
    if f.entity_refs is not None:
        f.entity_refs = check_entity_refs(f.entity_refs)
    f.ids = _check_str_list(f.ids, "ids")
    if f.limit is not None:
        check_int(f.limit, "limit", low=0, high=MAX_LIMIT)
    check_int(f.offset, "offset", low=0, high=MAX_LIMIT)
    if f.order_by not in ORDER_BY:
        raise ValidationError(f"unknown order_by {f.order_by!r}; use one of {list(ORDER_BY)}")


def check_filter(value: Any) -> Any:
    """A MemoryFilter (None gives the empty filter), its fields checked again."""
    from .ports import MemoryFilter

    if value is None:
        return MemoryFilter()
    if not isinstance(value, MemoryFilter):
        raise ValidationError(f"filter must be a MemoryFilter, got {_type(value)}")
    check_filter_fields(value)
    return value


def check_record(memory: Any) -> None:
    """An exported :class:`Memory` record, checked like add() arguments (ids, text, JSON, dates,
    scope) and normalised in place (enum fields given as strings, lists, floats); import_memories
    runs it on a copy of every record before inserting any."""
    check_id(memory.id, "id")
    check_id(memory.user_id, "user_id")
    session = check_optional_id(memory.session_id, "session_id")
    agent = check_optional_id(memory.agent_id, "agent_id")
    turn = check_optional_id(memory.turn_id, "turn_id")
    memory.scope_level = derive_scope(memory.scope_level, session, agent, turn)
    if memory.promoted_from is not None:
        memory.promoted_from = ScopeLevel.parse(memory.promoted_from)
    memory.content = check_content(memory.content)
    memory.importance = check_importance(memory.importance)
    memory.category = MemoryCategory.parse(memory.category)
    memory.entity_refs = check_entity_refs(memory.entity_refs)
    memory.metadata = check_metadata(memory.metadata)
    for name in ("created_at", "updated_at", "valid_from"):
        if check_timestamp(getattr(memory, name), name) is None:
            raise ValidationError(f"{name} is required")
    check_timestamp(memory.valid_until, "valid_until")
    check_optional_id(memory.supersedes, "supersedes")
    check_optional_id(memory.superseded_by, "superseded_by")


def check_import_links(records: Sequence[Any], stored: Any) -> None:
    """Supersession links of imported records never cross users: a link to another user's
    memory (in the batch, or ``stored(id)`` in the store) rejects the whole import."""
    owners = {m.id: m.user_id for m in records}
    for memory in records:
        for link in ("supersedes", "superseded_by"):
            target = getattr(memory, link)
            if target is None:
                continue
            owner = owners.get(target)
            if owner is None:
                found = stored(target)
                owner = found.user_id if found is not None else None
            if owner is not None and owner != memory.user_id:
                raise ValidationError(
                    f"import record {memory.id!r}: {link} {target!r} belongs to another "
                    "user; supersession links never cross users (nothing was imported)"
                )


def check_kwargs(kwargs: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    """Reject keyword arguments a method does not take (named in the message)."""
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValidationError(
            f"{where}() got unexpected argument(s) {', '.join(unknown)}; "
            f"it accepts {', '.join(allowed)}"
        )


_CONFIG_INTS = {  # field: (low, high)
    "vector_dimension": (1, 65_536), "vector_cache_size_kb": (0, 2**40), "hnsw_m": (2, 4096),
    "hnsw_ef_construction": (1, 2**20), "hnsw_ef_search": (1, 2**20), "hnsw_min_entries": (0, 2**62),
    "embedder_batch_size": (1, 2**20), "cache_max_size": (0, 2**40), "hybrid_candidates": (1, MAX_TOP_K),
    "rrf_k": (0, 2**20), "busy_timeout_ms": (0, 2**31 - 1), "read_threads": (1, 64),
    "text_postings_max": (0, 2**40),
}  # fmt: skip
_CONFIG_OPTIONAL_INTS = {"hnsw_max_entries": (0, 2**62), "embedder_threads": (1, 1024)}
_CONFIG_FLOATS = {  # field: (low, high)
    "http_timeout": (0.001, 86_400.0), "bubble_threshold": (0.0, 1.0),
    "hybrid_text_weight": (0.0, 1e6), "hybrid_vector_weight": (0.0, 1e6),
    "importance_weight": (-1e6, 1e6),
    "entity_boost": (0.0, 1e6), "date_boost": (0.0, 1e6),
}  # fmt: skip
_CONFIG_TEXT = ("embedder_model", "ollama_base_url")
_CONFIG_OPTIONAL_TEXT = ("openai_api_key", "openai_base_url", "embedder_entry_point")


def check_config_fields(cfg: Any) -> None:
    """Type and range checks of MemoryConfig fields (MemoryConfig turns them into
    ConfigurationError); each message names the field."""
    import os

    if not isinstance(cfg.db_path, str | os.PathLike):
        raise ValidationError(f"db_path must be a str or Path, got {_type(cfg.db_path)}")
    path = os.fspath(cfg.db_path)
    if not isinstance(path, str) or not path.strip() or "\x00" in path:
        raise ValidationError(f"db_path must be a non-empty path without NUL, got {path!r}")
    check_text(path, "db_path")
    for name, (low, high) in _CONFIG_INTS.items():
        check_int(getattr(cfg, name), name, low=low, high=high)
    for name, (low, high) in _CONFIG_OPTIONAL_INTS.items():
        if getattr(cfg, name) is not None:
            check_int(getattr(cfg, name), name, low=low, high=high)
    for name, (low_f, high_f) in _CONFIG_FLOATS.items():
        check_number(getattr(cfg, name), name, low=low_f, high=high_f)
    if cfg.recency_half_life_days is not None:
        check_number(cfg.recency_half_life_days, "recency_half_life_days", low=1e-6)
    for name in ("cache_enabled", "auto_bubble", "read_only"):
        check_bool(getattr(cfg, name), name)
    for name in _CONFIG_TEXT:
        check_text(getattr(cfg, name), name)
    for name in _CONFIG_OPTIONAL_TEXT:
        if getattr(cfg, name) is not None:
            check_text(getattr(cfg, name), name)
    if not isinstance(cfg.extra, Mapping):
        raise ValidationError(f"extra must be a dict, got {_type(cfg.extra)}")


def derive_scope(
    scope: ScopeLevel | str | None,
    session_id: str | None,
    agent_id: str | None,
    turn_id: str | None,
) -> ScopeLevel:
    """The scope level of a new memory: explicit, or the narrowest id given.

    A memory lives in a path user > session > agent > turn, so an AGENT- or TURN-level memory needs
    ``session_id`` (a turn may skip the agent). Ids narrower than the memory's level are kept as
    provenance: ``scope="user"`` with ``agent_id`` and no session is fine.
    """
    if scope is None:
        if turn_id is not None:
            level = ScopeLevel.TURN
        elif agent_id is not None:
            level = ScopeLevel.AGENT
        elif session_id is not None:
            level = ScopeLevel.SESSION
        else:
            level = ScopeLevel.USER
    else:
        level = ScopeLevel.parse(scope)
    required = {
        ScopeLevel.SESSION: ("session_id", session_id),
        ScopeLevel.AGENT: ("agent_id", agent_id),
        ScopeLevel.TURN: ("turn_id", turn_id),
    }.get(level)
    if required is not None and required[1] is None:
        raise ValidationError(f"a {level.value}-level memory needs {required[0]}")
    if level in (ScopeLevel.AGENT, ScopeLevel.TURN) and session_id is None:
        given = "turn_id" if level is ScopeLevel.TURN else "agent_id"
        raise ValidationError(
            f"a {level.value}-level memory needs session_id ({given} without session_id); "
            "pass session_id, or scope='user' to keep the ids as provenance only"
        )
    return level
