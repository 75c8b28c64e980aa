"""``headroom mcp``: one memory shared by every coding agent, over the Model Context Protocol.

Needs the ``mcp`` extra (``pip install "headroom-core[mcp]"``). :func:`build_server` returns the
SDK's ``MCPServer`` (tools remember, recall, forget, history, list_memories, update and the
``headroom://memories`` resource); :func:`run` serves it over stdio or streamable HTTP. The user a
call acts for comes from the server's options or a bearer token, never from a tool argument
(:mod:`headroom.mcp.identity`).
"""

from __future__ import annotations

from headroom.mcp.identity import Identity, TokenFile
from headroom.mcp.server import AppState, McpOptions, build_server, open_memory, run
from headroom.mcp.tools import MemoryTools

__all__ = [
    "AppState",
    "Identity",
    "McpOptions",
    "MemoryTools",
    "TokenFile",
    "build_server",
    "open_memory",
    "run",
]
