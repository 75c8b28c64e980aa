"""The Headroom MCP server on the official Python SDK (``mcp`` v2, ``MCPServer``).

:func:`build_server` returns an ``MCPServer`` whose typed lifespan opens the memory once (or
borrows one passed in), shared by every connection; :func:`run` serves it over stdio or streamable
HTTP. Tools: remember, recall, forget, history, list_memories, update; resource
``headroom://memories`` (the caller's current memories as Markdown).
"""

from __future__ import annotations

import contextvars
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import Field

from headroom.memory.errors import (
    AccessDeniedError,
    ConfigurationError,
    HeadroomError,
    MemoryNotFoundError,
    MissingDependencyError,
    SupersededError,
    ValidationError,
)

from .identity import Identity, TokenFile, agent_name
from .models import (
    ForgetResult,
    HistoryResult,
    ListResult,
    RecallResult,
    RememberResult,
    UpdateResult,
)
from .tools import MemoryTools

try:
    from mcp.server.auth.middleware.auth_context import get_access_token
    from mcp.server.auth.settings import AuthSettings
    from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
    from mcp.server.mcpserver import Context, MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.server.mcpserver.resources import FunctionResource
except ImportError as exc:  # pragma: no cover - only without the extra
    raise MissingDependencyError("mcp", "mcp") from exc

if TYPE_CHECKING:
    from headroom.memory.core import HierarchicalMemory

__all__ = ["AppState", "McpOptions", "build_server", "check_transport", "open_memory", "run"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
INSTRUCTIONS = (
    "Headroom is the user's long-term memory, shared by every coding agent they use. "
    "Call recall before answering questions about the user, their projects or preferences. "
    "Call remember for durable facts, preferences and decisions (one short fact each). When a "
    "recalled fact is stale, pass its id as supersedes (or call update) instead of storing a "
    "contradiction. Results show which agent stored each fact."
)

Category = Literal["preference", "fact", "context", "entity", "decision", "insight"]
Scope = Literal["user", "session", "agent"]
SCOPE_HELP = (
    "user: every session and agent (default); session: this session only; "
    "agent: this agent in this session"
)
MemoryId = Annotated[str, Field(description="a memory id returned by another tool")]


@dataclass
class McpOptions:
    """How ``headroom mcp`` opens the memory and decides identity (see :mod:`.identity`)."""

    db: str = "headroom_memory.db"
    embedder: str = "onnx"
    user: str = "default"
    agent: str | None = None
    session: str | None = None
    tokens: TokenFile | None = None
    dedup_threshold: float = 0.9
    max_content_chars: int = 10_000


@dataclass
class AppState:
    """What the lifespan yields: the open memory and the tools over it."""

    options: McpOptions
    tools: MemoryTools
    process_session: str = field(default_factory=lambda: f"mcp-{uuid.uuid4().hex[:12]}")


async def open_memory(options: McpOptions) -> HierarchicalMemory:
    """Open (creating if needed) the memory named by ``options.db`` with ``options.embedder``."""
    from headroom.memory.config import EmbedderBackend, MemoryConfig
    from headroom.memory.core import HierarchicalMemory
    from headroom.memory.opening import config_for

    hashed = options.embedder == "hash"
    if hashed:
        base = MemoryConfig(vector_dimension=64)
    else:
        base = MemoryConfig(embedder_backend=EmbedderBackend(options.embedder))
    # config_for is the one place that turns --db (a file, or a postgresql:// URL where that
    # backend exists) into a config, as for every other entry point.
    cfg = config_for(options.db, base)
    if "://" in options.db and isinstance(cfg.db_path, Path):
        raise ConfigurationError(f"{options.db.split('://')[0]}:// URLs are not supported here")
    if hashed:
        from headroom.testing import HashEmbedder

        return await HierarchicalMemory.create(cfg, embedder=HashEmbedder(64))
    return await HierarchicalMemory.create(cfg)


# The request being handled, for the resource reader (static resources get no Context).
_current: contextvars.ContextVar[ServerRequestContext[Any, Any] | None] = contextvars.ContextVar(
    "headroom_mcp_request", default=None
)


def _identity(rctx: ServerRequestContext[AppState, Any]) -> Identity:
    state = rctx.lifespan_context
    opts = state.options
    if opts.tokens is not None:
        token = get_access_token()
        if token is None or not token.subject:
            raise AccessDeniedError("not authenticated: send Authorization: Bearer <token>")
        user = token.subject
    else:
        user = opts.user
    agent = agent_name(opts.agent)
    if agent is None:
        params = rctx.session.client_params
        agent = agent_name(params.client_info.name) if params is not None else None
    session = opts.session
    if session is None:
        headers = getattr(rctx.request, "headers", None)
        raw = headers.get("mcp-session-id") if headers is not None else None
        session = raw[:128] if isinstance(raw, str) and raw.strip() else state.process_session
    return Identity(user_id=user, agent_id=agent or "unknown-agent", session_id=session)


async def _call(
    ctx: Context[AppState, Any], op: Callable[[MemoryTools, Identity], Awaitable[T]]
) -> T:
    """Run one tool for the caller; Headroom errors become MCP tool errors with a clear message."""
    rctx = ctx.request_context
    try:
        who = _identity(rctx)
        return await op(rctx.lifespan_context.tools, who)
    except (AccessDeniedError, MemoryNotFoundError, ValidationError, SupersededError) as exc:
        raise ToolError(str(exc)) from None
    except HeadroomError as exc:
        logger.warning("headroom mcp: tool failed: %s: %s", type(exc).__name__, exc)
        raise ToolError(f"{type(exc).__name__}: {exc}") from None


def build_server(
    options: McpOptions, memory: HierarchicalMemory | None = None
) -> MCPServer[AppState]:
    """The MCP server. With ``memory`` the caller keeps owning it; else the lifespan opens
    ``options.db`` once and closes it at shutdown."""

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppState]) -> AsyncIterator[AppState]:
        hm = memory if memory is not None else await open_memory(options)
        tools = MemoryTools(
            hm, dedup_threshold=options.dedup_threshold, max_content_chars=options.max_content_chars
        )
        try:
            yield AppState(options=options, tools=tools)
        finally:
            if memory is None:
                await hm.close()

    auth_kwargs: dict[str, Any] = {}
    if options.tokens is not None:
        auth_kwargs = dict(
            token_verifier=options.tokens.verifier(),
            auth=AuthSettings(issuer_url="http://127.0.0.1", resource_server_url=None),  # type: ignore[arg-type]
        )
    server: MCPServer[AppState] = MCPServer(
        "headroom",
        title="Headroom memory",
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level="WARNING",
        **auth_kwargs,
    )

    async def remember_request(
        ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        token = _current.set(ctx)
        try:
            return await call_next(ctx)
        finally:
            _current.reset(token)

    server.middleware.append(remember_request)

    @server.tool(
        description="Store a durable fact, preference or decision about the user or "
        "project (one short fact). A near-duplicate of a stored fact is merged, not "
        "stored twice. To correct a stale fact, pass its id as supersedes."
    )
    async def remember(
        content: Annotated[str, Field(description="the fact, e.g. 'Project uses uv, not pip'")],
        ctx: Context[AppState, Any],
        category: Category | None = None,
        importance: Annotated[
            float | None, Field(ge=0, le=1, description="0..1, default 0.5")
        ] = None,
        scope: Annotated[Scope, Field(description=SCOPE_HELP)] = "user",
        supersedes: Annotated[str | None, Field(description="id of the fact this replaces")] = None,
    ) -> RememberResult:
        return await _call(
            ctx,
            lambda t, who: t.remember(
                who,
                content,
                category=category,
                importance=importance,
                scope=scope,
                supersedes=supersedes,
            ),
        )

    @server.tool(
        description="Find the stored memories most relevant to a query. With valid_at, "
        "what was true at that time; with include_history, each hit's other versions."
    )
    async def recall(
        query: str,
        ctx: Context[AppState, Any],
        top_k: Annotated[int, Field(ge=1, le=50)] = 5,
        category: Category | None = None,
        valid_at: Annotated[datetime | None, Field(description="ISO 8601 time")] = None,
        include_history: bool = False,
    ) -> RecallResult:
        return await _call(
            ctx,
            lambda t, who: t.recall(
                who,
                query,
                top_k=top_k,
                category=category,
                valid_at=valid_at,
                include_history=include_history,
            ),
        )

    @server.tool(description="Delete a memory (with include_history, every version of the fact).")
    async def forget(
        id: MemoryId, ctx: Context[AppState, Any], include_history: bool = False
    ) -> ForgetResult:
        return await _call(ctx, lambda t, who: t.forget(who, id, include_history=include_history))

    @server.tool(description="The version chain of a fact, oldest first: what it said and when.")
    async def history(id: MemoryId, ctx: Context[AppState, Any]) -> HistoryResult:
        return await _call(ctx, lambda t, who: t.history(who, id))

    @server.tool(
        description="List stored memories, newest first, with optional filters and paging."
    )
    async def list_memories(
        ctx: Context[AppState, Any],
        category: Category | None = None,
        scope: Scope | None = None,
        include_superseded: bool = False,
        limit: Annotated[int, Field(ge=1, le=200)] = 20,
        offset: Annotated[int, Field(ge=0)] = 0,
    ) -> ListResult:
        return await _call(
            ctx,
            lambda t, who: t.list_memories(
                who,
                category=category,
                scope=scope,
                include_superseded=include_superseded,
                limit=limit,
                offset=offset,
            ),
        )

    @server.tool(
        description="Change a memory. New content supersedes it (the old version stays in "
        "its history) unless keep_history is false (a typo fix in place); category and "
        "importance change in place."
    )
    async def update(
        id: MemoryId,
        ctx: Context[AppState, Any],
        content: str | None = None,
        category: Category | None = None,
        importance: Annotated[float | None, Field(ge=0, le=1)] = None,
        keep_history: bool = True,
    ) -> UpdateResult:
        return await _call(
            ctx,
            lambda t, who: t.update(
                who,
                id,
                content=content,
                category=category,
                importance=importance,
                keep_history=keep_history,
            ),
        )

    async def read_memories() -> str:
        rctx = _current.get()
        if rctx is None:  # pragma: no cover - only reachable outside a request
            raise RuntimeError("no request in progress")
        return await rctx.lifespan_context.tools.snapshot(_identity(rctx))

    server.add_resource(
        FunctionResource.from_function(
            read_memories,
            uri="headroom://memories",
            name="memories",
            title="Your memories",
            mime_type="text/markdown",
            description="The current memories this agent can see, most important first.",
        )
    )
    return server


def check_transport(options: McpOptions, *, http: bool, host: str) -> None:
    """Refuse tokens on stdio, and HTTP off loopback without tokens (ValidationError)."""
    if options.tokens is not None and not http:
        raise ValidationError("--tokens is for --http (on stdio the user is --user)")
    if http and host not in LOOPBACK and options.tokens is None:
        raise ValidationError(f"serving on {host} needs --tokens (bearer tokens mapped to users)")


def run(
    options: McpOptions, *, http: bool = False, host: str = "127.0.0.1", port: int = 8765
) -> None:
    """Serve until interrupted: stdio (default) or streamable HTTP at ``http://host:port/mcp``."""
    import anyio

    check_transport(options, http=http, host=host)
    if "://" not in options.db:
        Path(options.db).parent.mkdir(parents=True, exist_ok=True)
    server = build_server(options)
    if http:
        logger.info("headroom mcp: streamable HTTP on http://%s:%d/mcp", host, port)
        anyio.run(lambda: server.run_streamable_http_async(host=host, port=port))
    else:
        anyio.run(server.run_stdio_async)
