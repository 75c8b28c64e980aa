"""Who may talk to the inspector: the per-launch token, the CSRF value and the security headers.

The server binds 127.0.0.1 only, but any web page the user visits can still send requests to
localhost. So every request must prove it comes from someone who saw the URL ``headroom ui``
printed:

* the URL carries ``?token=<random per launch>``; the guard checks it in constant time, stores it
  in an HttpOnly ``SameSite=Lax`` cookie (named per launch, so two inspectors do not clash) and
  redirects to the same page without the token, so it does not linger in the address bar;
* every other request needs that cookie; a missing or wrong token is a 403 before any route runs;
* requests that change something (POST) additionally need the form field ``csrf`` (derived from the
  token, embedded in the pages) and, when the browser sends an ``Origin``, it must be this server;
* the ``Host`` header must name the loopback address (no DNS-rebinding).

Responses carry a strict Content-Security-Policy (scripts and styles from this server only, no
inline script), ``X-Frame-Options: DENY`` and ``Cache-Control: no-store``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from html import escape
from urllib.parse import urlencode

from starlette.datastructures import URL, Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "SECURITY_HEADERS",
    "TOKEN_PARAM",
    "TokenGuard",
    "cookie_name_for",
    "csrf_token_for",
    "new_token",
    "tokens_equal",
]

TOKEN_PARAM = "token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",  # no-referrer would make browsers send "Origin: null"
    "cache-control": "no-store",
}


def new_token() -> str:
    """A fresh random token for one launch (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def csrf_token_for(token: str) -> str:
    """The CSRF form value of a launch: derived from its token, useless without it."""
    return hmac.new(token.encode(), b"headroom-ui-csrf", hashlib.sha256).hexdigest()


def cookie_name_for(token: str) -> str:
    """The launch's cookie name (cookies ignore ports: two inspectors must not overwrite each other)."""
    return "headroom_ui_" + hashlib.sha256(token.encode()).hexdigest()[:12]


def tokens_equal(given: str | None, expected: str) -> bool:
    """Constant-time comparison; ``None`` never matches."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def _deny(status: int, title: str, detail: str) -> Response:
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>headroom ui: "
        f"{escape(title)}</title></head><body><h1>{status} {escape(title)}</h1>"
        f"<p>{escape(detail)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


class TokenGuard:
    """ASGI middleware enforcing the token, the Origin check and the allowed Host names."""

    def __init__(self, app: ASGIApp, *, token: str, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.token = token
        self.cookie = cookie_name_for(token)
        self.allowed_hosts = {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        denied = self._check(request)
        if denied is not None:
            await denied(scope, receive, send)
            return
        given = request.query_params.get(TOKEN_PARAM)
        if given is not None:
            # A valid token in the URL: remember it in the cookie, drop it from the address bar.
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != TOKEN_PARAM]
            target = URL(path=request.url.path, query=urlencode(rest))
            response = RedirectResponse(str(target), status_code=303, headers=SECURITY_HEADERS)
            response.set_cookie(self.cookie, self.token, httponly=True, samesite="lax", path="/")
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _check(self, request: Request) -> Response | None:
        host = (request.headers.get("host") or "").rsplit(":", 1)[0].strip("[]").lower()
        if host not in self.allowed_hosts:
            return _deny(400, "bad host", "The inspector only answers requests to 127.0.0.1.")
        given = request.query_params.get(TOKEN_PARAM)
        if given is not None:
            if not tokens_equal(given, self.token):
                return _deny(403, "wrong token", "This link's token is not the one printed by "
                             "`headroom ui` for this launch. Open the URL it printed.")  # fmt: skip
            if request.method not in SAFE_METHODS:
                return _deny(403, "token in URL", "Changes need the page's form, not a link.")
            return None
        if not tokens_equal(request.cookies.get(self.cookie), self.token):
            return _deny(403, "missing token", "Open the URL printed by `headroom ui` (it "
                         "contains this launch's token).")  # fmt: skip
        if request.method not in SAFE_METHODS:
            origin = Headers(scope=request.scope).get("origin")
            if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
                return _deny(403, "cross-site request", f"Requests from {origin} are refused.")
        return None
