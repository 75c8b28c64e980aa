"""Structured outputs of the MCP tools (pydantic models: the SDK derives each tool's outputSchema)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from headroom.memory.models import Memory

__all__ = [
    "ForgetResult",
    "HistoryResult",
    "ListResult",
    "MemoryOut",
    "RecallHit",
    "RecallResult",
    "RememberResult",
    "UpdateResult",
    "memory_out",
]


class MemoryOut(BaseModel):
    """One stored memory (one version of a fact)."""

    id: str
    content: str
    category: str
    scope: str = Field(description="user (every session and agent), session or agent")
    importance: float
    agent: str | None = Field(description="the agent that stored this version (provenance)")
    agents: list[str] = Field(description="every agent that stated this fact (merged duplicates)")
    session: str | None
    created_at: datetime
    valid_from: datetime
    valid_until: datetime | None = Field(description="set once the fact was superseded")
    supersedes: str | None = Field(description="id of the version this one replaced")
    superseded_by: str | None = Field(description="id of the version that replaced this one")
    current: bool


def memory_out(memory: Memory) -> MemoryOut:
    meta = memory.metadata
    stored_by = meta.get("stored_by") if isinstance(meta.get("stored_by"), str) else None
    agents = [a for a in meta.get("agents", []) if isinstance(a, str)]
    agent = stored_by or memory.agent_id
    if agent and agent not in agents:
        agents.insert(0, agent)
    return MemoryOut(
        id=memory.id,
        content=memory.content,
        category=memory.category.value,
        scope=memory.scope_level.value,
        importance=memory.importance,
        agent=agent,
        agents=agents,
        session=memory.session_id,
        created_at=memory.created_at,
        valid_from=memory.valid_from,
        valid_until=memory.valid_until,
        supersedes=memory.supersedes,
        superseded_by=memory.superseded_by,
        current=memory.is_current,
    )


class RememberResult(BaseModel):
    action: Literal["stored", "merged", "superseded"] = Field(
        description="stored: new fact; merged: a near-duplicate already existed and was kept "
        "(this agent added to its agents); superseded: replaced the fact named by supersedes"
    )
    memory: MemoryOut


class RecallHit(BaseModel):
    memory: MemoryOut
    score: float
    similarity: float
    history: list[MemoryOut] | None = Field(
        default=None, description="earlier versions, oldest first (with include_history)"
    )


class RecallResult(BaseModel):
    query: str
    results: list[RecallHit]


class ForgetResult(BaseModel):
    id: str
    deleted: int = Field(description="how many versions were deleted")


class HistoryResult(BaseModel):
    id: str
    versions: list[MemoryOut] = Field(description="the version chain, oldest first")


class ListResult(BaseModel):
    memories: list[MemoryOut]
    total: int
    next_offset: int | None = Field(description="pass as offset for the next page; null at the end")


class UpdateResult(BaseModel):
    memory: MemoryOut = Field(description="the memory after the change")
    superseded_id: str | None = Field(
        description="the previous version's id when the change made a new version"
    )
