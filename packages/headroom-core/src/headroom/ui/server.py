"""Binding the loopback socket and running the app with uvicorn until Ctrl-C or SIGTERM."""

from __future__ import annotations

import logging
import socket
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


def serve(app: Any, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` until SIGINT/SIGTERM.

    uvicorn shuts down gracefully on either signal, then re-raises it with the handlers that were
    installed before (so Ctrl-C ends as KeyboardInterrupt once the server has stopped).
    """
    try:
        import uvicorn
    except ImportError as exc:
        raise MissingDependencyError("uvicorn", "ui") from exc
    config = uvicorn.Config(
        app, loop="asyncio", http="h11", lifespan="off", log_level="warning", access_log=False
    )
    logger.info("headroom ui listening on %s:%d", *sock.getsockname()[:2])
    uvicorn.Server(config).run(sockets=[sock])
