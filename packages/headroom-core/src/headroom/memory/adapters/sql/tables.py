"""SQLModel table definitions and row <-> :class:`Memory` conversion for the SQL store."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Column, Index, LargeBinary, String, Text
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from headroom.memory.models import Memory, MemoryCategory, ScopeLevel

__all__ = [
    "MEMORY_SELECT_SQL",
    "DeletionRow",
    "MemoryRow",
    "MetaRow",
    "UTCText",
    "format_ts",
    "memory_to_values",
    "row_to_memory",
    "table_metadata",
    "values_to_memory",
]

table_metadata = SQLModel.metadata


def format_ts(value: datetime) -> str:
    """Fixed-width ISO UTC text, so lexicographic order is time order."""
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def parse_ts(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value).astimezone(UTC)


class UTCText(TypeDecorator[datetime]):
    """Timezone-aware datetimes stored as fixed-width ISO-8601 UTC text."""

    impl = String(32)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> str | None:
        return None if value is None else format_ts(value)

    def process_result_value(self, value: str | None, dialect: Any) -> datetime | None:
        return parse_ts(value)


class MemoryRow(SQLModel, table=True):
    __tablename__ = "memories"
    __table_args__ = (
        Index("ix_memories_user_scope", "user_id", "scope_level", "superseded_by"),
        Index("ix_memories_user_session", "user_id", "session_id"),
    )

    pk: int | None = Field(default=None, primary_key=True)
    id: str = Field(sa_column=Column(String(64), unique=True, nullable=False, index=True))
    user_id: str = Field(sa_column=Column(String(255), nullable=False))
    session_id: str | None = Field(default=None, sa_column=Column(String(255)))
    agent_id: str | None = Field(default=None, sa_column=Column(String(255), index=True))
    turn_id: str | None = Field(default=None, sa_column=Column(String(255)))
    scope_level: str = Field(sa_column=Column(String(16), nullable=False))
    category: str = Field(sa_column=Column(String(32), nullable=False))
    importance: float = 0.5
    content: str = Field(sa_column=Column(Text, nullable=False))
    search_text: str = Field(sa_column=Column(Text, nullable=False))
    entity_refs: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    metadata_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCText(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCText(), nullable=False))
    valid_from: datetime = Field(sa_column=Column(UTCText(), nullable=False))
    valid_until: datetime | None = Field(default=None, sa_column=Column(UTCText()))
    supersedes: str | None = Field(default=None, sa_column=Column(String(64)))
    superseded_by: str | None = Field(default=None, sa_column=Column(String(64)))
    promoted_from: str | None = Field(default=None, sa_column=Column(String(16)))
    embedding: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    change_seq: int = Field(default=0, index=True)


class MetaRow(SQLModel, table=True):
    __tablename__ = "headroom_meta"

    key: str = Field(primary_key=True)
    value: str


class DeletionRow(SQLModel, table=True):
    """Log of deleted primary keys, so derived indexes in any process can catch up."""

    __tablename__ = "memory_deletions"

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(index=True)
    pk: int


def memory_to_values(memory: Memory, search_text: str) -> dict[str, Any]:
    """Column values for a memory (without pk, embedding and change_seq)."""
    return {
        "id": memory.id,
        "user_id": memory.user_id,
        "session_id": memory.session_id,
        "agent_id": memory.agent_id,
        "turn_id": memory.turn_id,
        "scope_level": memory.scope_level.value,
        "category": memory.category.value,
        "importance": float(memory.importance),
        "content": memory.content,
        "search_text": search_text,
        "entity_refs": json.dumps(list(memory.entity_refs), ensure_ascii=False),
        "metadata_json": json.dumps(memory.metadata, ensure_ascii=False, sort_keys=True),
        "created_at": memory.created_at,
        "updated_at": memory.updated_at,
        "valid_from": memory.valid_from,
        "valid_until": memory.valid_until,
        "supersedes": memory.supersedes,
        "superseded_by": memory.superseded_by,
        "promoted_from": memory.promoted_from.value if memory.promoted_from else None,
    }


def row_to_memory(row: Any) -> Memory:
    """Build a :class:`Memory` from a result row (mapping access)."""
    m = row._mapping if hasattr(row, "_mapping") else row
    return Memory(
        id=m["id"],
        content=m["content"],
        user_id=m["user_id"],
        session_id=m["session_id"],
        agent_id=m["agent_id"],
        turn_id=m["turn_id"],
        scope_level=ScopeLevel(m["scope_level"]),
        category=MemoryCategory(m["category"]),
        importance=float(m["importance"]),
        entity_refs=json.loads(m["entity_refs"]),
        metadata=json.loads(m["metadata_json"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        valid_from=m["valid_from"],
        valid_until=m["valid_until"],
        supersedes=m["supersedes"],
        superseded_by=m["superseded_by"],
        promoted_from=ScopeLevel(m["promoted_from"]) if m["promoted_from"] else None,
    )


MEMORY_SELECT_SQL = (
    "SELECT pk, id, user_id, session_id, agent_id, turn_id, scope_level, category, importance, "
    "content, entity_refs, metadata_json, created_at, updated_at, valid_from, valid_until, "
    "supersedes, superseded_by, promoted_from FROM memories"
)
"""The driver-level SELECT whose rows :func:`values_to_memory` reads (pk first)."""
_SCOPES = {s.value: s for s in ScopeLevel}
_CATEGORIES = {c.value: c for c in MemoryCategory}


def _json(text: str, empty: Any) -> Any:
    return empty if text in ("[]", "{}") else json.loads(text)


def values_to_memory(v: Sequence[Any]) -> Memory:
    """Build a :class:`Memory` from a raw driver row of :data:`MEMORY_SELECT_SQL` (the hot read
    path: no SQLAlchemy result processing)."""
    return Memory(
        id=v[1], content=v[9], user_id=v[2], session_id=v[3], agent_id=v[4], turn_id=v[5],
        scope_level=_SCOPES[v[6]], category=_CATEGORIES[v[7]], importance=float(v[8]),
        entity_refs=_json(v[10], []), metadata=_json(v[11], {}),
        created_at=_ts(v[12]), updated_at=_ts(v[13]), valid_from=_ts(v[14]),
        valid_until=_ts(v[15]) if v[15] is not None else None,
        supersedes=v[16], superseded_by=v[17],
        promoted_from=_SCOPES[v[18]] if v[18] else None,
    )  # fmt: skip


def _ts(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is UTC else parsed.astimezone(UTC)


def vector_to_bytes(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


def bytes_to_vectors(blobs: list[bytes], dimension: int) -> np.ndarray:
    if not blobs:
        return np.zeros((0, dimension), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dimension).copy()
