"""The PostgreSQL form of :func:`headroom.memory.adapters.sql.filters.filter_clause`.

Scope, category, importance and time conditions are the shared ones; the JSON conditions
(metadata keys, entity references) use jsonb instead of SQLite's json_extract / json_each.
"""

from __future__ import annotations

import json
from dataclasses import replace

from sqlalchemy import and_, cast, literal, or_
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import Text

from headroom.memory.adapters.sql.filters import filter_clause
from headroom.memory.adapters.sql.tables import MemoryRow
from headroom.memory.ports import MemoryFilter

__all__ = ["pg_filter_clause"]

T = MemoryRow.__table__.c  # type: ignore[attr-defined]


def pg_filter_clause(f: MemoryFilter) -> ColumnElement[bool]:
    """The WHERE clause selecting exactly the memories the filter describes (PostgreSQL)."""
    conds: list[ColumnElement[bool]] = [filter_clause(replace(f, metadata=None, entity_refs=None))]
    meta = cast(T.metadata_json, JSONB)
    for key, value in (f.metadata or {}).items():
        extracted = meta.op("->")(literal(str(key), Text))
        if value is None:
            conds.append(or_(extracted.is_(None), extracted == cast(literal("null"), JSONB)))
        else:
            wanted = [json.dumps(value)]
            if isinstance(value, bool):  # SQLite compares JSON booleans as 0/1
                wanted.append(json.dumps(int(value)))
            conds.append(or_(*(extracted == cast(literal(w), JSONB) for w in wanted)))
    if f.entity_refs:
        refs = cast(T.entity_refs, JSONB)
        conds.append(
            refs.op("?|")(cast(literal([str(r) for r in f.entity_refs], ARRAY(Text)), ARRAY(Text)))
        )
    return and_(*conds) if len(conds) > 1 else conds[0]
