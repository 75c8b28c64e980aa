"""``headroom mcp``: serve the memory to coding agents over MCP (stdio, or streamable HTTP).

Stdlib-only at import (the SDK is imported when the command runs). :data:`SETUP` is printed by
``headroom mcp --help`` and copied in the README (a test keeps the two the same).
"""

from __future__ import annotations

import argparse
import os
import sys

from headroom.cli.errors import CliError

__all__ = ["SETUP", "add_parser", "cmd_mcp"]

SETUP = """\
setup (paste one; --user names whose memories the server serves, --db where they live):

  Claude Code:
    claude mcp add --scope user headroom -- headroom mcp --db ~/.headroom/memory.db --user me

  Codex (~/.codex/config.toml):
    [mcp_servers.headroom]
    command = "headroom"
    args = ["mcp", "--db", "~/.headroom/memory.db", "--user", "me"]

  Gemini CLI (~/.gemini/settings.json):
    {"mcpServers": {"headroom": {"command": "headroom",
      "args": ["mcp", "--db", "~/.headroom/memory.db", "--user", "me"]}}}

  Any client (mcp.json):
    {"mcpServers": {"headroom": {"command": "headroom",
      "args": ["mcp", "--db", "~/.headroom/memory.db", "--user", "me"]}}}

  One shared server over HTTP, a user per bearer token (tokens.toml: [tokens] "<token>" = "me"):
    headroom mcp --http --port 8765 --db ~/.headroom/memory.db --tokens tokens.toml
    claude mcp add --transport http headroom http://127.0.0.1:8765/mcp \\
      --header "Authorization: Bearer $HEADROOM_TOKEN"
    Codex:  [mcp_servers.headroom]
            url = "http://127.0.0.1:8765/mcp"
            bearer_token_env_var = "HEADROOM_TOKEN"
    Gemini: {"mcpServers": {"headroom": {"httpUrl": "http://127.0.0.1:8765/mcp",
              "headers": {"Authorization": "Bearer <token>"}}}}
"""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "mcp",
        help="serve the memory to coding agents over MCP (Claude Code, Codex, Gemini CLI...)",
        description="Serve one memory to every coding agent over the Model Context Protocol.\n"
        "Tools: remember, recall, forget, history, list_memories, update; resource\n"
        "headroom://memories. The user comes from --user (stdio) or the bearer token (--http\n"
        "--tokens), never from a tool call; the agent is the client's name (or --agent), stored\n"
        'as provenance. Needs: pip install "headroom-core[mcp]".',
        epilog=SETUP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db", default="headroom_memory.db", metavar="PATH",
                   help="memory database, created if missing (default: %(default)s)")  # fmt: skip
    p.add_argument("--embedder", choices=["local", "onnx", "hash"], default="onnx",
                   help="embedder: onnx (default), local, or hash (a fake for tests only)")  # fmt: skip
    p.add_argument("--user", default=None,
                   help="whose memories to serve (default: $HEADROOM_USER or your login name)")  # fmt: skip
    p.add_argument("--agent", help="agent name to store as provenance (default: the client's name)")
    p.add_argument("--session", help="session id for session/agent-scoped memories "
                   "(default: one per server process, or the HTTP session)")  # fmt: skip
    p.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    p.add_argument("--host", default="127.0.0.1", help="HTTP address (default: %(default)s)")
    p.add_argument("--port", type=int, default=8765, help="HTTP port (default: %(default)s)")
    p.add_argument("--tokens", metavar="FILE",
                   help="TOML file mapping bearer tokens to users (HTTP); required off loopback")  # fmt: skip
    p.add_argument("--dedup-threshold", type=float, default=0.9, metavar="COSINE",
                   help="merge a new memory into a stored one this similar (default: %(default)s)")  # fmt: skip
    p.add_argument("--max-content", type=int, default=10_000, metavar="CHARS",
                   help="longest memory accepted (default: %(default)s)")  # fmt: skip
    p.set_defaults(func=cmd_mcp)


def _default_user() -> str:
    env = os.environ.get("HEADROOM_USER", "").strip()
    if env:
        return env
    try:
        import getpass

        return getpass.getuser() or "default"
    except (OSError, KeyError):  # no login name (containers)
        return "default"


def cmd_mcp(args: argparse.Namespace) -> int:
    try:
        from headroom.mcp import McpOptions, TokenFile, run
        from headroom.mcp.server import check_transport
    except ImportError as exc:
        raise CliError(f"{exc}", 2) from exc
    from headroom.memory.validation import check_id

    if not 0.0 < args.dedup_threshold <= 1.01:
        raise CliError("--dedup-threshold must be in (0, 1] (above 1 disables merging)", 2)
    if args.max_content < 1:
        raise CliError("--max-content must be positive", 2)
    if not 0 < args.port < 65536:
        raise CliError("--port must be 1..65535", 2)
    db = args.db if "://" in args.db else os.path.expanduser(args.db)
    options = McpOptions(
        db=db, embedder=args.embedder, user=check_id(args.user if args.user is not None else _default_user(), "--user"),
        agent=args.agent, session=args.session,
        tokens=TokenFile.load(os.path.expanduser(args.tokens)) if args.tokens else None,
        dedup_threshold=args.dedup_threshold, max_content_chars=args.max_content,
    )  # fmt: skip
    check_transport(options, http=args.http, host=args.host)
    if args.http:
        who = f"users from {args.tokens}" if args.tokens else f"user {options.user!r}"
        print(
            f"headroom mcp: http://{args.host}:{args.port}/mcp ({who}, memory {db})",
            file=sys.stderr,
        )
    run(options, http=args.http, host=args.host, port=args.port)
    return 0
