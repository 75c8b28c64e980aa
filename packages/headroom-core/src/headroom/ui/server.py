"""Binding the loopback socket and running the app with uvicorn until Ctrl-C or SIGTERM."""

from __future__ import annotations

import logging
import signal
import socket
from types import FrameType
from typing import Any

from headroom.memory.errors import MissingDependencyError

__all__ = ["HOST", "bind", "serve"]

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"


def bind(port: int = 0) -> socket.socket:
    """A listening TCP socket on 127.0.0.1 (``port`` 0: a free port chosen by the system)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve(app: Any, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` until interrupted; raises KeyboardInterrupt once stopped."""
    try:
        import uvicorn
    except ImportError as exc:
        raise MissingDependencyError("uvicorn", "ui") from exc
    config = uvicorn.Config(
        app, loop="asyncio", http="h11", lifespan="off", log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal with the handlers
    # it found installed: make SIGTERM end like Ctrl-C so callers' cleanup (closing the memory) runs.
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        logger.info("headroom ui listening on %s:%d", *sock.getsockname()[:2])
        server.run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)
