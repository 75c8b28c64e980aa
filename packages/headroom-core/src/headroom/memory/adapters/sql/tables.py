"""SQLModel table definitions and row <-> :class:`Memory` conversion for the SQL store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Column, Index, LargeBinary, String, Text
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from headroom.memory.models import Memory, MemoryCategory, ScopeLevel

__all__ = [
    "DeletionRow",
    "MemoryRow",
    "MetaRow",
    "UTCText",
    "format_ts",
    "memory_to_values",
    "row_to_memory",
    "table_metadata",
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


def vector_to_bytes(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


def bytes_to_vectors(blobs: list[bytes], dimension: int) -> np.ndarray:
    if not blobs:
        return np.zeros((0, dimension), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dimension).copy()
