"""Who is calling: the server's options and the transport decide, never a tool argument.

- The **user** (whose memories a call reads and writes) is ``--user`` on stdio, or over HTTP the
  user a bearer token maps to in the tokens file (:class:`TokenFile`).
- The **agent** (stored as provenance) is ``--agent`` when given, else the ``clientInfo.name`` the
  client sent in ``initialize`` ("claude-code", "codex-mcp-client", "gemini-cli-mcp-client"...).
- The **session** (for session- and agent-scoped memories) is ``--session`` when given, else the
  HTTP ``Mcp-Session-Id`` of the connection, else one id per server process.

Tokens file (TOML), one line per token::

    [tokens]
    "3q2-9Xk...32+ random characters..." = "team"
    "Vb8_Jm...another token..." = "alice"

Generate a token with ``python -c "import secrets; print(secrets.token_urlsafe(32))"``.
"""

from __future__ import annotations

import hmac
import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headroom.memory.errors import ConfigurationError, ValidationError
from headroom.memory.validation import check_id

__all__ = ["MIN_TOKEN_CHARS", "Identity", "TokenFile", "agent_name"]

logger = logging.getLogger(__name__)

MIN_TOKEN_CHARS = 24
MAX_AGENT_CHARS = 64


@dataclass(frozen=True)
class Identity:
    """The caller of one tool call: the user whose memories it may touch, agent and session."""

    user_id: str
    agent_id: str
    session_id: str


def agent_name(raw: Any) -> str | None:
    """A client-supplied agent name made safe to store (trimmed, bounded, printable) or None."""
    if not isinstance(raw, str):
        return None
    name = "".join(ch for ch in raw.strip() if ch.isprintable())[:MAX_AGENT_CHARS].strip()
    return name or None


class TokenFile:
    """Bearer tokens mapped to users, loaded from a small TOML file (see the module docstring)."""

    def __init__(self, tokens: dict[str, str], source: str = "<memory>") -> None:
        if not tokens:
            raise ConfigurationError(f"{source}: no tokens; add a [tokens] table")
        checked: dict[str, str] = {}
        for token, user in tokens.items():
            if not isinstance(token, str) or len(token) < MIN_TOKEN_CHARS:
                raise ConfigurationError(
                    f"{source}: every token must be a string of at least {MIN_TOKEN_CHARS} "
                    "characters (generate one with secrets.token_urlsafe(32))"
                )
            if not isinstance(user, str):
                raise ConfigurationError(f"{source}: the user of a token must be a string")
            try:
                checked[token] = check_id(user.strip(), "user")
            except ValidationError as exc:
                raise ConfigurationError(f"{source}: {exc}") from exc
        self._tokens = checked
        self.source = source

    @classmethod
    def load(cls, path: str | Path) -> TokenFile:
        """Read ``path``; a missing or malformed file is a ConfigurationError."""
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigurationError(f"tokens file {str(p)!r} does not exist") from exc
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigurationError(f"cannot read tokens file {str(p)!r}: {exc}") from exc
        table = data.get("tokens")
        if not isinstance(table, dict):
            raise ConfigurationError(f"{p}: expected a [tokens] table of token = user lines")
        return cls(table, source=str(p))

    @property
    def users(self) -> set[str]:
        return set(self._tokens.values())

    def user_for(self, token: str) -> str | None:
        """The user ``token`` maps to, or None (compared in constant time against every token)."""
        found = None
        candidate = token.encode()
        for known, user in self._tokens.items():
            if hmac.compare_digest(candidate, known.encode()):
                found = user
        return found

    def verifier(self) -> Any:
        """This file as the MCP SDK's ``TokenVerifier`` (imported lazily: needs the mcp extra)."""
        from mcp.server.auth.provider import AccessToken

        tokens = self

        class _Verifier:
            async def verify_token(self, token: str) -> AccessToken | None:
                user = tokens.user_for(token)
                if user is None:
                    logger.info("headroom mcp: rejected an unknown bearer token")
                    return None
                return AccessToken(
                    token=token, client_id=f"headroom-user:{user}", scopes=[], subject=user
                )

        return _Verifier()
