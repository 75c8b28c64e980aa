"""The read-only pages: users, a user's memories, one memory with its versions, search, export.

Query parameters carry user and memory ids (any string is a valid id, slashes included). A page
asked for by htmx (``HX-Request``) gets only the fragment it swaps in; a full page otherwise, so
every page also works without JavaScript.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from headroom.memory.errors import MemoryNotFoundError, ValidationError
from headroom.memory.models import Memory
from headroom.memory.ports import MemoryFilter
from headroom.memory.validation import check_id
from headroom.ui import data
from headroom.ui.app import render, state_of

__all__ = [
    "export_confirm",
    "memories_page",
    "memory_page",
    "require_memory",
    "search_page",
    "users_page",
]

_MODES = ("hybrid", "semantic", "text")


def _wants_fragment(request: Request) -> bool:
    headers = request.headers
    return "hx-request" in headers and "hx-history-restore-request" not in headers


def _param_id(request: Request, name: str) -> str:
    return check_id(request.query_params.get(name), name)


async def require_memory(request: Request, memory_id: str, user_id: str) -> Memory:
    """The memory, if it exists and belongs to ``user_id`` (404 / 403 otherwise)."""
    found = await state_of(request).memory.get(memory_id, user_id=user_id)
    if found is None:
        raise MemoryNotFoundError(f"no memory with id {memory_id!r}")
    return found


async def users_page(request: Request) -> Response:
    memory = state_of(request).memory
    summaries, complete = await data.user_summaries(memory)
    stats = await memory.stats()
    ctx = {"users": summaries, "stats": stats, "complete": complete, "limit": data.SCAN_LIMIT}
    return render(request, "users.html", ctx)


async def memories_page(request: Request) -> Response:
    f = data.parse_filters(request.query_params)
    memories, total = await data.list_memories(state_of(request).memory, f)
    ctx = {
        "user": f.user_id,
        "f": f,
        "memories": memories,
        "total": total,
        "page_size": data.PAGE_SIZE,
    }
    if _wants_fragment(request):
        return render(request, "_memory_rows.html", ctx)
    ctx["agents"] = await _provenance(request, f.user_id)
    return render(request, "memories.html", ctx)


async def _provenance(request: Request, user_id: str) -> dict[str, list[str]]:
    """The sessions and agents this user's memories came from (for the filter pickers)."""
    seen = await state_of(request).memory.query(
        MemoryFilter(user_id=user_id, include_superseded=True, limit=5000, order_by="-created_at")
    )
    return {
        "sessions": sorted({m.session_id for m in seen if m.session_id}),
        "agents": sorted({m.agent_id for m in seen if m.agent_id}),
    }


async def memory_page(request: Request) -> Response:
    user_id = _param_id(request, "user")
    memory_id = _param_id(request, "id")
    target = await require_memory(request, memory_id, user_id)
    chain = await state_of(request).memory.get_history(memory_id, user_id=user_id)
    timeline = data.build_timeline(chain, memory_id)
    return render(
        request,
        "memory.html",
        {"user": user_id, "m": target, "chain": chain, "timeline": timeline},
    )


async def search_page(request: Request) -> Response:
    params = request.query_params
    user_id = _param_id(request, "user")
    query = params.get("q", "")
    session = params.get("session", "").strip()
    agent = params.get("agent", "").strip()
    mode = params.get("mode", "").strip()
    if mode and mode not in _MODES:
        raise ValidationError(f"mode must be one of {', '.join(_MODES)}; got {mode!r}")
    top_k = data.parse_int(params.get("top_k"), "top_k", 10, 1, 100)
    inject_top_k = data.parse_int(params.get("inject_top_k"), "inject_top_k", 5, 1, 50)
    budget = data.parse_int(params.get("budget"), "budget", 600, 1, 100_000)
    explanation = None
    if query.strip():
        explanation = await data.explain_search(
            state_of(request).memory, query, user_id, session_id=session or None,
            agent_id=agent or None, mode=mode or None, top_k=top_k,
            inject_top_k=inject_top_k, token_budget=budget,
        )  # fmt: skip
    ctx = {
        "user": user_id, "q": query, "session": session, "agent": agent, "mode": mode,
        "top_k": top_k, "inject_top_k": inject_top_k, "budget": budget, "x": explanation,
        "default_mode": state_of(request).memory.config.search_mode,
    }  # fmt: skip
    name = "_search_results.html" if _wants_fragment(request) else "search.html"
    return render(request, name, ctx)


async def export_confirm(request: Request) -> Response:
    user_id = _param_id(request, "user")
    count = await state_of(request).memory.count(
        MemoryFilter(user_id=user_id, include_superseded=True)
    )
    return render(request, "export.html", {"user": user_id, "count": count})
