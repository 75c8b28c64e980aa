"""Value types of the memory engine: the :class:`Memory` record, categories, scopes, results."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

__all__ = [
    "Memory",
    "MemoryCategory",
    "ScopeLevel",
    "SearchResult",
    "utcnow",
]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class MemoryCategory(str, Enum):
    """What kind of knowledge a memory holds."""

    PREFERENCE = "preference"  # likes, dislikes, preferred approaches
    FACT = "fact"  # identity, role, constraints
    CONTEXT = "context"  # current goals, ongoing tasks
    ENTITY = "entity"  # information about entities
    DECISION = "decision"  # decisions made
    INSIGHT = "insight"  # derived insights

    @classmethod
    def parse(cls, value: MemoryCategory | str | None) -> MemoryCategory:
        """Accept an enum member or its name/value in any case (``"fact"``, ``"FACT"``)."""
        from .errors import ValidationError

        if value is None:
            return cls.FACT
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            key = value.strip().lower()
            for member in cls:
                if member.value == key:
                    return member
        allowed = ", ".join(m.value for m in cls)
        raise ValidationError(f"unknown memory category {value!r}; expected one of: {allowed}")


class ScopeLevel(str, Enum):
    """Where a memory is visible, broadest first: USER > SESSION > AGENT > TURN."""

    USER = "user"
    SESSION = "session"
    AGENT = "agent"
    TURN = "turn"

    @classmethod
    def parse(cls, value: ScopeLevel | str) -> ScopeLevel:
        from .errors import ValidationError

        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            key = value.strip().lower()
            for member in cls:
                if member.value == key:
                    return member
        allowed = ", ".join(m.value for m in cls)
        raise ValidationError(f"unknown scope level {value!r}; expected one of: {allowed}")

    @property
    def depth(self) -> int:
        """0 for USER ... 3 for TURN."""
        return _SCOPE_DEPTH[self]


_SCOPE_DEPTH = {ScopeLevel.USER: 0, ScopeLevel.SESSION: 1, ScopeLevel.AGENT: 2, ScopeLevel.TURN: 3}


@dataclass
class Memory:
    """One stored memory (one version of it: supersession creates a new record).

    ``session_id``/``agent_id``/``turn_id`` record where the memory came from. Its visibility is
    decided by ``scope_level``: a USER-level memory with a ``session_id`` is visible in every
    session of the user, the session id is kept only as provenance.
    """

    id: str
    content: str
    user_id: str
    session_id: str | None = None
    agent_id: str | None = None
    turn_id: str | None = None
    scope_level: ScopeLevel = ScopeLevel.USER
    category: MemoryCategory = MemoryCategory.FACT
    importance: float = 0.5
    entity_refs: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    valid_from: datetime = field(default_factory=utcnow)
    valid_until: datetime | None = None
    supersedes: str | None = None
    superseded_by: str | None = None
    promoted_from: ScopeLevel | None = None
    """Set when auto-bubbling promoted the memory to USER level: the scope it was added at."""
    context: str | None = field(default=None, compare=False)
    """Text indexed for full-text search with the memory but never shown (e.g. the previous turn
    of the conversation it came from). Set on add only; it lives in the index, not in exports."""

    @property
    def is_current(self) -> bool:
        """True while the memory has not been superseded."""
        return self.superseded_by is None and self.valid_until is None

    def is_valid_at(self, when: datetime) -> bool:
        """Whether this version was the current one at ``when``."""
        if when < self.valid_from:
            return False
        return self.valid_until is None or when < self.valid_until

    def copy(self) -> Memory:
        return copy.deepcopy(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (ISO timestamps, enum values)."""
        return {
            "id": self.id,
            "content": self.content,
            "user_id": self.user_id,
            "session_id": self.session_id,
            "agent_id": self.agent_id,
            "turn_id": self.turn_id,
            "scope_level": self.scope_level.value,
            "category": self.category.value,
            "importance": self.importance,
            "entity_refs": list(self.entity_refs),
            "metadata": copy.deepcopy(self.metadata),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "supersedes": self.supersedes,
            "superseded_by": self.superseded_by,
            "promoted_from": self.promoted_from.value if self.promoted_from else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Memory:
        def ts(value: Any) -> datetime | None:
            if value is None:
                return None
            parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

        return cls(
            id=data["id"],
            content=data["content"],
            user_id=data["user_id"],
            session_id=data.get("session_id"),
            agent_id=data.get("agent_id"),
            turn_id=data.get("turn_id"),
            scope_level=ScopeLevel.parse(data.get("scope_level", "user")),
            category=MemoryCategory.parse(data.get("category", "fact")),
            importance=float(data.get("importance", 0.5)),
            entity_refs=list(data.get("entity_refs") or []),
            metadata=dict(data.get("metadata") or {}),
            created_at=ts(data.get("created_at")) or utcnow(),
            updated_at=ts(data.get("updated_at")) or utcnow(),
            valid_from=ts(data.get("valid_from")) or utcnow(),
            valid_until=ts(data.get("valid_until")),
            supersedes=data.get("supersedes"),
            superseded_by=data.get("superseded_by"),
            promoted_from=ScopeLevel.parse(data["promoted_from"])
            if data.get("promoted_from")
            else None,
        )

    def __repr__(self) -> str:
        return (
            f"Memory(id={self.id!r}, content={self.content!r}, scope={self.scope_level.value}, "
            f"category={self.category.value}, valid_until={self.valid_until!r}, "
            f"is_current={self.is_current})"
        )


@dataclass
class SearchResult:
    """A search hit: the memory, its cosine ``similarity`` to the query and the final ``score``.

    ``score`` is what results are ordered by (fused rank score for hybrid search, bm25-derived for
    text search, cosine for semantic search). Attribute access falls through to the memory, so
    ``result.content`` and ``result.importance`` work like on a :class:`Memory`.
    """

    memory: Memory
    similarity: float
    score: float
    text_rank: int | None = None
    vector_rank: int | None = None

    @property
    def content(self) -> str:
        return self.memory.content

    @property
    def id(self) -> str:
        return self.memory.id

    @property
    def importance(self) -> float:
        return self.memory.importance

    @property
    def category(self) -> MemoryCategory:
        return self.memory.category

    @property
    def metadata(self) -> dict[str, Any]:
        return self.memory.metadata
