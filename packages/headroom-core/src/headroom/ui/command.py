"""``headroom ui``: open the database, print the URL with this launch's token, serve until Ctrl-C."""

from __future__ import annotations

import argparse
import re
import signal
import threading
import webbrowser
from types import FrameType

from headroom.cli.errors import CliError

__all__ = ["display_name", "run"]

_USERINFO = re.compile(r"^([a-z][a-z0-9+.-]*://)[^@/]*@", re.IGNORECASE)


def display_name(db: str) -> str:
    """The database as shown in the page header: a URL without its user and password."""
    return _USERINFO.sub(r"\1", str(db))


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    from headroom.cli.memory import open_memory
    from headroom.ui import server
    from headroom.ui.app import create_app
    from headroom.ui.security import TOKEN_PARAM, new_token

    if args.port is not None and not 0 <= args.port <= 65535:
        raise CliError(f"--port must be within 0..65535, got {args.port}", 2)
    memory = open_memory(args.db, args.embedder)
    try:
        try:
            sock = server.bind(args.port or 0)
        except OSError as exc:
            raise CliError(f"cannot listen on {server.HOST}:{args.port}: {exc.strerror}") from exc
        # SIGTERM ends like Ctrl-C (also before uvicorn has started), so the memory is closed.
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _stop) if main_thread else None
        try:
            token = new_token()
            app = create_app(
                memory, token=token, read_only=args.read_only, title=display_name(args.db)
            )
            port = sock.getsockname()[1]
            url = f"http://{server.HOST}:{port}/?{TOKEN_PARAM}={token}"
            mode = " (read-only)" if args.read_only else ""
            print(f"headroom ui: inspecting {display_name(args.db)}{mode}")
            print(f"  open {url}")
            print("  (the token in this URL is this launch's password; Ctrl-C stops)", flush=True)
            if args.open:
                webbrowser.open(url)
            server.serve(app, sock)
        except KeyboardInterrupt:
            pass
        finally:
            if main_thread:
                signal.signal(signal.SIGTERM, previous)
            sock.close()
        print("headroom ui: stopped", flush=True)
        return 0
    finally:
        memory.sync.close()
