"""Parsing the JSON items of a ``<memory>`` block (see :mod:`headroom.inline.extraction`)."""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from typing import Any

from headroom.memory.errors import ValidationError
from headroom.memory.models import MemoryCategory, ScopeLevel
from headroom.memory.validation import clean_text

__all__ = ["ExtractedMemory", "add_unique", "parse_memory_items"]

logger = logging.getLogger(__name__)

_FENCE_RE = re.compile(r"^```[A-Za-z0-9_-]*|```$")
_TRAILING_COMMA_RE = re.compile(r",\s*([}\]])")
_ACCEPTED_SCOPES = {s.value: s for s in (ScopeLevel.USER, ScopeLevel.SESSION, ScopeLevel.AGENT)}
_CONTENT_KEYS = ("content", "text", "fact", "memory")


@dataclass(frozen=True)
class ExtractedMemory:
    """One fact the model asked to remember; unset fields are left to the caller's defaults."""

    content: str
    category: MemoryCategory | None = None
    importance: float | None = None
    scope: ScopeLevel | None = None
    supersedes: str | None = None
    """The short reference (``"m2"``) of an injected memory that this fact replaces."""
    entities: tuple[str, ...] = ()


def parse_memory_items(payload: str) -> list[ExtractedMemory]:
    """Parse the JSON inside a ``<memory>`` block; malformed input gives ``[]``, never an error.

    Accepts ``{"memories": [...]}``, a bare list, or a single item object; items are objects
    (``content``/``text``/``fact``, ``category``, ``importance``, ``scope``, ``supersedes``,
    ``entities``) or plain strings. Invalid fields are dropped, importance is clamped to 0..1,
    empty items are dropped and duplicates (same normalised content) are kept once.
    """
    if not isinstance(payload, str):
        return []
    try:
        data = _loads(_strip_fences(payload))
    except (ValueError, RecursionError, TypeError) as exc:
        logger.debug("unparseable memory block (%s): %r", exc, payload[:200])
        return []
    if isinstance(data, dict):
        raw_items: Any = data.get("memories")
        if raw_items is None and any(k in data for k in _CONTENT_KEYS):
            raw_items = [data]
    else:
        raw_items = data
    if not isinstance(raw_items, list):
        logger.debug("memory block holds no list of items: %r", payload[:200])
        return []
    items: list[ExtractedMemory] = []
    seen: set[str] = set()
    for raw in raw_items:
        try:
            item = _parse_item(raw)
        except Exception as exc:
            logger.debug("skipping unparseable memory item (%s): %r", exc, raw)
            continue
        add_unique(items, seen, item)
    return items


def add_unique(items: list[ExtractedMemory], seen: set[str], item: ExtractedMemory | None) -> None:
    if item is not None and (key := _normalise(item.content)) not in seen:
        seen.add(key)
        items.append(item)


def _strip_fences(payload: str) -> str:
    return _FENCE_RE.sub("", payload.strip()).strip()


def _loads(text: str) -> Any:
    if not text:
        raise ValueError("empty block")
    decoder = json.JSONDecoder()
    error: ValueError = ValueError("no JSON value")
    for candidate in dict.fromkeys([text, _TRAILING_COMMA_RE.sub(r"\1", text)]):
        try:
            return json.loads(candidate)
        except ValueError as exc:
            error = exc
        starts = [i for i in (candidate.find("{"), candidate.find("[")) if i >= 0]
        if starts:
            try:
                return decoder.raw_decode(candidate[min(starts) :])[0]
            except ValueError as exc:
                error = exc
    raise error


def _parse_item(raw: Any) -> ExtractedMemory | None:
    if isinstance(raw, str):
        content = clean_text(raw).strip()
        return ExtractedMemory(content=content) if content else None
    if not isinstance(raw, dict):
        logger.debug("skipping memory item of type %s", type(raw).__name__)
        return None
    content = ""
    for key in _CONTENT_KEYS:
        value = raw.get(key)
        if isinstance(value, str) and value.strip():
            content = clean_text(value).strip()
            break
    if not content:
        return None
    return ExtractedMemory(
        content=content,
        category=_category(raw.get("category")),
        importance=_importance(raw.get("importance")),
        scope=_scope(raw.get("scope")),
        supersedes=_reference(raw.get("supersedes")),
        entities=_entities(raw.get("entities")),
    )


def _category(value: Any) -> MemoryCategory | None:
    if not isinstance(value, str):
        return None
    try:
        return MemoryCategory.parse(value)
    except ValidationError:
        logger.debug("dropping unknown memory category %r", value)
        return None


def _importance(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int):  # may be too large for a float
        return float(min(1, max(0, value)))
    if not isinstance(value, float) or not math.isfinite(value):
        return None
    return min(1.0, max(0.0, value))


def _scope(value: Any) -> ScopeLevel | None:
    return _ACCEPTED_SCOPES.get(value.strip().lower()) if isinstance(value, str) else None


def _reference(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"m{value}"
    ref = value.strip().strip("[]()").strip().lower() if isinstance(value, str) else ""
    return ref or None


def _entities(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return ()
    return tuple(
        dict.fromkeys(clean_text(e).strip() for e in value if isinstance(e, str) and e.strip())
    )


def _normalise(content: str) -> str:
    return " ".join(content.casefold().split()).rstrip(".!")
