"""Translate a :class:`MemoryFilter` into a SQL WHERE clause over the ``memories`` table.

This is where the scope-visibility rules live (see :class:`~headroom.memory.ports.MemoryFilter`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, exists, func, literal_column, or_, select
from sqlalchemy.sql.elements import ColumnElement

from headroom.memory.adapters.sql.tables import MemoryRow
from headroom.memory.models import ScopeLevel
from headroom.memory.ports import MemoryFilter

__all__ = ["filter_clause", "order_clause"]

T = MemoryRow.__table__.c  # type: ignore[attr-defined]


def _null_safe_eq(column: Any, value: str | None) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


def _visibility_clause(f: MemoryFilter) -> ColumnElement[bool] | None:
    """What a request at (session, agent, turn) can see inside one user's memories."""
    if f.session_id is None and f.agent_id is None and f.turn_id is None:
        return None  # user-only request: every scope of the user
    visible: list[ColumnElement[bool]] = [T.scope_level == ScopeLevel.USER.value]
    if f.session_id is not None:
        visible.append(
            and_(T.scope_level == ScopeLevel.SESSION.value, T.session_id == f.session_id)
        )
    if f.agent_id is not None:
        visible.append(
            and_(
                T.scope_level == ScopeLevel.AGENT.value,
                T.agent_id == f.agent_id,
                _null_safe_eq(T.session_id, f.session_id),
            )
        )
    if f.turn_id is not None:
        visible.append(
            and_(
                T.scope_level == ScopeLevel.TURN.value,
                T.turn_id == f.turn_id,
                _null_safe_eq(T.session_id, f.session_id),
                _null_safe_eq(T.agent_id, f.agent_id),
            )
        )
    return or_(*visible)


def _json_key_path(key: str) -> str:
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def filter_clause(f: MemoryFilter) -> ColumnElement[bool]:
    """The WHERE clause selecting exactly the memories the filter describes."""
    conds: list[ColumnElement[bool]] = []
    if f.user_id is not None:
        conds.append(T.user_id == f.user_id)
    if f.exact_scope:
        for column, value in (
            (T.session_id, f.session_id),
            (T.agent_id, f.agent_id),
            (T.turn_id, f.turn_id),
        ):
            if value is not None:
                conds.append(column == value)
    else:
        vis = _visibility_clause(f)
        if vis is not None:
            conds.append(vis)
    if f.scope_levels is not None:
        conds.append(T.scope_level.in_([ScopeLevel.parse(s).value for s in f.scope_levels]))
    if f.categories is not None:
        conds.append(T.category.in_([getattr(c, "value", c) for c in f.categories]))
    if f.min_importance is not None:
        conds.append(T.importance >= f.min_importance)
    if f.max_importance is not None:
        conds.append(T.importance <= f.max_importance)
    if not f.include_superseded:
        conds.append(T.superseded_by.is_(None))
    if f.valid_at is not None:
        conds.append(T.valid_from <= f.valid_at)
        conds.append(or_(T.valid_until.is_(None), T.valid_until > f.valid_at))
    if f.created_after is not None:
        conds.append(T.created_at >= f.created_after)
    if f.created_before is not None:
        conds.append(T.created_at < f.created_before)
    if f.ids is not None:
        conds.append(T.id.in_(list(f.ids)))
    for key, value in (f.metadata or {}).items():
        extracted = func.json_extract(T.metadata_json, _json_key_path(str(key)))
        if value is None:
            conds.append(extracted.is_(None))
        elif isinstance(value, bool):
            conds.append(extracted == int(value))
        else:
            conds.append(extracted == value)
    if f.entity_refs:
        each = func.json_each(T.entity_refs).table_valued("value")
        conds.append(
            exists(
                select(literal_column("1"))
                .select_from(each)
                .where(each.c.value.in_(list(f.entity_refs)))
            )
        )
    if not conds:  # name the table, so `SELECT count(*) WHERE ...` counts its rows
        return T.pk.is_not(None)  # type: ignore[no-any-return]
    return and_(*conds)


def order_clause(order_by: str) -> list[Any]:
    mapping = {
        "created_at": [T.created_at.asc(), T.pk.asc()],
        "-created_at": [T.created_at.desc(), T.pk.desc()],
        "importance": [T.importance.asc(), T.pk.asc()],
        "-importance": [T.importance.desc(), T.pk.asc()],
        "valid_from": [T.valid_from.asc(), T.pk.asc()],
        "-valid_from": [T.valid_from.desc(), T.pk.desc()],
    }
    try:
        return mapping[order_by]
    except KeyError:
        from headroom.memory.errors import ValidationError

        raise ValidationError(
            f"unknown order_by {order_by!r}; use one of {sorted(mapping)}"
        ) from None
