"""The inspector's Starlette application: pages, edits, static files, errors and the token guard.

:func:`create_app` takes an open :class:`~headroom.memory.HierarchicalMemory` (the caller keeps
owning it) and the launch's token. Every handler uses the memory's async methods, so the event
loop never blocks on SQLite, FAISS or the embedder.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from headroom.memory.errors import (
    AccessDeniedError,
    HeadroomError,
    MemoryNotFoundError,
    MissingDependencyError,
    SupersededError,
    ValidationError,
)

try:
    import jinja2
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles
    from starlette.templating import Jinja2Templates
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise MissingDependencyError(exc.name or "starlette", "ui") from exc

from headroom.memory.core import HierarchicalMemory
from headroom.ui import data
from headroom.ui.security import TokenGuard, csrf_token_for

__all__ = ["LOOPBACK_HOSTS", "UIState", "create_app", "link", "render", "state_of"]

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
_STATUS = {
    ValidationError: 400,
    AccessDeniedError: 403,
    MemoryNotFoundError: 404,
    SupersededError: 409,
}


@dataclass
class UIState:
    memory: HierarchicalMemory
    token: str
    csrf: str
    read_only: bool
    templates: Jinja2Templates
    title: str


def state_of(request: Request) -> UIState:
    state: UIState = request.app.state.ui
    return state


def link(path: str, **params: Any) -> str:
    """``path?query`` with the non-empty ``params`` URL-encoded (ids may hold any character)."""
    query = urlencode({k: v for k, v in params.items() if v is not None and v != ""})
    return f"{path}?{query}" if query else path


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["link"] = link
    env.globals["scopes"] = [s.value for s in data.ScopeLevel]
    env.globals["categories"] = [c.value for c in data.MemoryCategory]
    env.filters["when"] = data.short_time
    env.filters["until"] = data.relative_end
    env.filters["pretty_json"] = lambda v: json.dumps(v, indent=2, ensure_ascii=False)
    return Jinja2Templates(env=env)


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> Response:
    """Render a template with the launch's common context (csrf, read-only flag, title)."""
    state = state_of(request)
    ctx = {"csrf": state.csrf, "read_only": state.read_only, "title": state.title}
    ctx.update(context or {})
    return state.templates.TemplateResponse(request, name, ctx, status_code=status_code)


async def _headroom_error(request: Request, exc: Exception) -> Response:
    status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 500)
    if status == 500:
        logger.warning("headroom ui: %s on %s", type(exc).__name__, request.url.path)
    return render(
        request,
        "error.html",
        {"status": status, "kind": type(exc).__name__, "message": str(exc)},
        status_code=status,
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return render(
        request,
        "error.html",
        {"status": exc.status_code, "kind": "HTTP error", "message": exc.detail},
        status_code=exc.status_code,
    )


def create_app(
    memory: HierarchicalMemory,
    *,
    token: str,
    read_only: bool = False,
    title: str = "",
    allowed_hosts: Sequence[str] = LOOPBACK_HOSTS,
) -> Starlette:
    """The inspector for ``memory``. Requests must carry ``token`` (see :mod:`.security`)."""
    from headroom.ui import edits, views

    if not token or len(token) < 16:
        raise ValidationError("the inspector token must be at least 16 characters")
    routes = [
        Route("/", views.users_page, name="users"),
        Route("/memories", views.memories_page, name="memories"),
        Route("/memory", views.memory_page, name="memory"),
        Route("/search", views.search_page, name="search"),
        Route("/export", views.export_confirm, name="export_confirm"),
        Route("/export", edits.export_user, methods=["POST"], name="export"),
        Route("/update", edits.update_memory, methods=["POST"], name="update"),
        Route("/supersede", edits.supersede_memory, methods=["POST"], name="supersede"),
        Route("/delete", edits.delete_memory, methods=["POST"], name="delete"),
        Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(TokenGuard, token=token, allowed_hosts=allowed_hosts)],
        exception_handlers={HeadroomError: _headroom_error, HTTPException: _http_error},
    )
    app.state.ui = UIState(
        memory=memory,
        token=token,
        csrf=csrf_token_for(token),
        read_only=read_only,
        templates=_templates(),
        title=title,
    )
    return app
