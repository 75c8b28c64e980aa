"""The edits: correct (update in place), supersede, delete, and export a user as JSON lines.

Each is a POST carrying the page's ``csrf`` value, the memory ``id`` and the ``user_id`` whose page
it came from (the engine refuses another user's memory: 403). The first POST only validates and
answers with a confirmation page showing what will change; nothing is written until the same form
comes back with ``confirm=yes``. With ``--read-only`` every edit is a 403 (export still works:
it changes nothing). Written changes are in the database at once, so ``headroom memory list``
sees them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from headroom.memory.errors import SupersededError, ValidationError
from headroom.memory.models import Memory, MemoryCategory
from headroom.memory.ports import MemoryFilter
from headroom.memory.validation import check_content, check_id, check_importance
from headroom.ui.app import link, render, state_of
from headroom.ui.security import tokens_equal
from headroom.ui.views import require_memory

__all__ = ["delete_memory", "export_user", "supersede_memory", "update_memory"]

_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


async def _form(request: Request, *, edit: bool = True) -> FormData:
    state = state_of(request)
    if edit and state.read_only:
        raise HTTPException(403, "the inspector was started with --read-only: edits are disabled")
    form = await request.form()
    csrf = form.get("csrf")
    if not isinstance(csrf, str) or not tokens_equal(csrf, state.csrf):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
    return form


def _field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be text")
    return value


def _ids(form: FormData) -> tuple[str, str]:
    return check_id(_field(form, "id"), "id"), check_id(_field(form, "user_id"), "user_id")


def _confirmed(form: FormData) -> bool:
    return _field(form, "confirm") == "yes"


def _changes(form: FormData, current: Memory, *, content_required: bool) -> dict[str, Any]:
    """The validated fields of the form that differ from ``current``."""
    changes: dict[str, Any] = {}
    content = _field(form, "content")
    if content is not None or content_required:
        text = check_content(content if content is not None else "")
        if text != current.content or content_required:
            changes["content"] = text
    category = (_field(form, "category") or "").strip()
    if category and MemoryCategory.parse(category) is not current.category:
        changes["category"] = MemoryCategory.parse(category)
    importance = (_field(form, "importance") or "").strip()
    if importance:
        try:
            parsed = float(importance)
        except ValueError:
            raise ValidationError(
                f"importance must be a number in 0..1, got {importance!r}"
            ) from None
        number = check_importance(parsed)
        if number != current.importance:
            changes["importance"] = number
    return changes


def _done(user_id: str, memory_id: str | None, what: str) -> Response:
    target = (
        link("/memory", user=user_id, id=memory_id, done=what)
        if memory_id
        else link("/memories", user=user_id, done=what)
    )
    return RedirectResponse(target, status_code=303)


def _confirm_page(
    request: Request, *, action: str, title: str, rows: list[tuple[str, str, str]],
    hidden: dict[str, str], user_id: str, memory_id: str | None, danger: bool = False,
) -> Response:  # fmt: skip
    return render(
        request,
        "confirm.html",
        {
            "action": action,
            "heading": title,
            "rows": rows,
            "hidden": hidden,
            "user": user_id,
            "memory_id": memory_id,
            "danger": danger,
        },
    )


def _show(value: Any) -> str:
    return getattr(value, "value", None) or str(value)


async def update_memory(request: Request) -> Response:
    form = await _form(request)
    memory_id, user_id = _ids(form)
    current = await require_memory(request, memory_id, user_id)
    changes = _changes(form, current, content_required=False)
    if not changes:
        raise ValidationError("nothing to change: the form holds the memory's current values")
    if "content" in changes and not current.is_current:
        raise SupersededError(f"memory {memory_id!r} is superseded; its content is history")
    if not _confirmed(form):
        rows = [(name, _show(getattr(current, name)), _show(new)) for name, new in changes.items()]
        hidden = {"id": memory_id, "user_id": user_id,
                  **{k: _show(v) for k, v in changes.items()}}  # fmt: skip
        return _confirm_page(
            request, action="/update", title="Correct this memory (same version)?", rows=rows,
            hidden=hidden, user_id=user_id, memory_id=memory_id,
        )  # fmt: skip
    updated = await state_of(request).memory.update(memory_id, user_id=user_id, **changes)
    return _done(user_id, updated.id, "corrected")


async def supersede_memory(request: Request) -> Response:
    form = await _form(request)
    memory_id, user_id = _ids(form)
    current = await require_memory(request, memory_id, user_id)
    if not current.is_current:
        raise SupersededError(
            f"memory {memory_id!r} is already superseded; supersede its current version instead"
        )
    changes = _changes(form, current, content_required=True)
    if not _confirmed(form):
        rows = [("content", current.content, changes["content"])]
        rows += [(k, _show(getattr(current, k)), _show(v)) for k, v in changes.items()
                 if k != "content"]  # fmt: skip
        hidden = {"id": memory_id, "user_id": user_id,
                  **{k: _show(v) for k, v in changes.items()}}  # fmt: skip
        return _confirm_page(
            request, action="/supersede", title="Replace this fact with a new version?",
            rows=rows, hidden=hidden, user_id=user_id, memory_id=memory_id,
        )  # fmt: skip
    content = changes.pop("content")
    new = await state_of(request).memory.supersede(memory_id, content, user_id=user_id, **changes)
    return _done(user_id, new.id, "superseded")


async def delete_memory(request: Request) -> Response:
    form = await _form(request)
    memory_id, user_id = _ids(form)
    current = await require_memory(request, memory_id, user_id)
    history = _field(form, "history") in ("on", "yes", "1", "true")
    memory = state_of(request).memory
    if not _confirmed(form):
        chain = await memory.get_history(memory_id, user_id=user_id) if history else [current]
        rows = [("delete", m.content, f"valid {m.valid_from:%Y-%m-%d %H:%M} ({m.id})")
                for m in chain]  # fmt: skip
        hidden = {"id": memory_id, "user_id": user_id, "history": "on" if history else ""}
        what = f"all {len(chain)} versions" if history else "this version"
        return _confirm_page(
            request, action="/delete", title=f"Delete {what}? This cannot be undone.",
            rows=rows, hidden=hidden, user_id=user_id, memory_id=memory_id, danger=True,
        )  # fmt: skip
    await memory.delete(memory_id, user_id=user_id, include_history=history)
    return _done(user_id, None, "deleted")


async def export_user(request: Request) -> Response:
    form = await _form(request, edit=False)
    user_id = check_id(_field(form, "user_id"), "user_id")
    if not _confirmed(form):
        return RedirectResponse(link("/export", user=user_id), status_code=303)
    memories = await state_of(request).memory.query(
        MemoryFilter(user_id=user_id, include_superseded=True)
    )
    body = "".join(json.dumps(m.to_dict(), ensure_ascii=False) + "\n" for m in memories)
    name = _FILENAME_UNSAFE.sub("_", user_id)[:64] or "user"
    return Response(
        body,
        media_type="application/x-ndjson",
        headers={"content-disposition": f'attachment; filename="headroom-{name}.jsonl"'},
    )
