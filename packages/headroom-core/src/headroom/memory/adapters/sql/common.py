"""Dialect-neutral pieces of the SQL stores (SQLite and PostgreSQL): the meta rows and their
check, the memory columns and query statement, the supersede UPDATE, the stats shape and the
connection lifecycle both stores share."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Select, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from headroom.memory.adapters.sql.filters import order_clause
from headroom.memory.adapters.sql.tables import DeletionRow, MemoryRow, MetaRow
from headroom.memory.errors import DimensionMismatchError, StorageError, SupersededError
from headroom.memory.models import Memory, ScopeLevel
from headroom.memory.ports import FloatArray, MemoryFilter

__all__ = [
    "MEMORY_COLUMNS",
    "SCHEMA_VERSION",
    "TABLE",
    "D",
    "M",
    "SqlStoreBase",
    "check_dimension",
    "check_meta",
    "close_superseded",
    "context_of_search_text",
    "count_stats",
    "default_search_text",
    "keep_indexed_context",
    "new_meta_rows",
    "query_statement",
]

SCHEMA_VERSION = "1"
TABLE = MemoryRow.__table__  # type: ignore[attr-defined]
T = TABLE.c
M = MetaRow.__table__  # type: ignore[attr-defined]
D = DeletionRow.__table__  # type: ignore[attr-defined]

MEMORY_COLUMNS = (
    T.pk, T.id, T.user_id, T.session_id, T.agent_id, T.turn_id, T.scope_level, T.category,
    T.importance, T.content, T.entity_refs, T.metadata_json, T.created_at, T.updated_at,
    T.valid_from, T.valid_until, T.supersedes, T.superseded_by, T.promoted_from,
)  # fmt: skip
"""Every column :func:`~headroom.memory.adapters.sql.tables.row_to_memory` reads."""


def default_search_text(memory: Memory) -> str:
    """The text the full-text index sees: content, entity references and the memory's date."""
    parts = [memory.content]
    if memory.entity_refs:
        parts.append(" ".join(memory.entity_refs))
    when = memory.valid_from
    parts.append(f"{when.day} {when.strftime('%B')} {when.year}")
    if memory.context:  # indexed, never shown; kept by update() (see context_of_search_text)
        parts.append(CONTEXT_MARK + memory.context)
    return "\n".join(parts)


CONTEXT_MARK = "\u241e"  # a symbol: the FTS tokenizer skips it; marks where the context starts


def context_of_search_text(search_text: str) -> str | None:
    """The ``context`` part of a stored ``search_text`` (None when there is none)."""
    _head, mark, tail = search_text.partition("\n" + CONTEXT_MARK)
    return tail if mark else None


def keep_indexed_context(conn: Connection, memory: Memory) -> Memory:
    """``memory`` with the ``context`` indexed with its stored row (records read back carry
    none); ``memory`` itself when it has a context or the row has none."""
    if memory.context is not None:
        return memory
    old = conn.execute(select(T.search_text).where(T.id == memory.id)).scalar()
    return replace(memory, context=context_of_search_text(old)) if old else memory


def new_meta_rows(embedder_model: str, dimension: int) -> list[dict[str, str]]:
    """The ``headroom_meta`` rows of a new database."""
    return [
        {"key": "schema_version", "value": SCHEMA_VERSION},
        {"key": "seq", "value": "0"},
        {"key": "embedder_model", "value": embedder_model},
        {"key": "dimension", "value": str(dimension)},
    ]


def check_meta(
    where: str | Path, meta: dict[str, str], embedder_model: str, dimension: int
) -> None:
    """Raise DimensionMismatchError when the database was embedded with another model/dimension."""
    stored_dim = int(meta.get("dimension", dimension))
    stored_model = meta.get("embedder_model", embedder_model)
    if stored_dim != dimension:
        raise DimensionMismatchError(
            f"the database {where} holds {stored_dim}-dimensional vectors "
            f"(model {stored_model!r}) but the configured embedder produces {dimension} "
            "dimensions; use the same embedder, or a new database"
        )
    if _model_key(stored_model) != _model_key(embedder_model):
        raise DimensionMismatchError(
            f"the database {where} was embedded with {stored_model!r} but the configured "
            f"embedder is {embedder_model!r}; vectors of different models are not comparable"
        )


def _model_key(name: str) -> str:
    return name.strip().lower().removeprefix("sentence-transformers/")


def check_dimension(vector: FloatArray, dimension: int) -> None:
    if vector.shape[-1] != dimension:
        raise DimensionMismatchError(
            f"vector of dimension {vector.shape[-1]} for a store of dimension {dimension}"
        )


def query_statement(where: ColumnElement[bool], f: MemoryFilter) -> Select[Any]:
    """``MemoryStore.query``: the memories matching ``where``, ordered and paged as ``f`` says."""
    stmt = select(*MEMORY_COLUMNS).where(where).order_by(*order_clause(f.order_by))
    if f.limit is not None:
        stmt = stmt.limit(f.limit)
    if f.offset:
        stmt = stmt.offset(f.offset)
    return stmt


def close_superseded(conn: Connection, old: Memory, *, by_user: bool = False, **extra: Any) -> None:
    """Close ``old``; SupersededError if it was superseded (or deleted) meanwhile. ``by_user``
    also names the owner in the statement (a store sharded by user routes it to one shard)."""
    owner = [T.user_id == old.user_id] if by_user else []
    closed = conn.execute(
        TABLE.update()
        .where(*owner, T.id == old.id, T.superseded_by.is_(None))
        .values(
            valid_until=old.valid_until,
            superseded_by=old.superseded_by,
            updated_at=old.updated_at,
            **extra,
        )
    )
    if closed.rowcount == 0:
        raise SupersededError(f"memory {old.id!r} is already superseded (or was deleted)")


def count_stats(
    conn: Connection,
    user_id: str | None,
    clause: Callable[[MemoryFilter], ColumnElement[bool]],
    db_size_bytes: int,
) -> dict[str, Any]:
    """The ``MemoryStore.stats`` shape: counts by category and scope, versions and users."""
    where = clause(MemoryFilter(user_id=user_id, include_superseded=True))
    current = clause(MemoryFilter(user_id=user_id))
    superseded = conn.execute(
        select(func.count()).where(where, T.superseded_by.is_not(None))
    ).scalar_one()
    cats = conn.execute(select(T.category, func.count()).where(current).group_by(T.category)).all()
    scopes = conn.execute(
        select(T.scope_level, func.count()).where(current).group_by(T.scope_level)
    ).all()
    users = conn.execute(select(func.count(func.distinct(T.user_id))).where(where)).scalar_one()
    categories = {str(c): int(n) for c, n in cats}
    scope_levels = {s.value: 0 for s in ScopeLevel}
    scope_levels.update({str(s): int(n) for s, n in scopes})
    return {
        "total": sum(categories.values()),
        "superseded": int(superseded),
        "versions": sum(categories.values()) + int(superseded),
        "categories": categories,
        "scope_levels": scope_levels,
        "users": int(users),
        "db_size_bytes": int(db_size_bytes),
    }


class SqlStoreBase:
    """The engine lifecycle, read transactions and vector batching of both SQL stores."""

    _engine: Engine | None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise StorageError("the store is not open")
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def snapshot_vectors(self) -> tuple[int, list[int], FloatArray]:
        raise NotImplementedError

    def iter_vectors(self, batch_size: int = 10_000) -> Iterator[tuple[list[int], FloatArray]]:
        _, pks, vecs = self.snapshot_vectors()
        for start in range(0, len(pks), batch_size):
            yield pks[start : start + batch_size], vecs[start : start + batch_size]
