"""``headroom ui``: a local web inspector for a memory database (``pip install "headroom-core[ui]"``).

Pages: the users (counts by scope and category, last activity), a user's memories (filters, current
or all versions, "as of" a date), one memory with its version chain drawn as a timeline, a search
playground (fused ranking with text rank, vector rank, similarity and score per result, and what
``with_memory`` would inject within its token budget), and edits (correct, supersede, delete,
export) behind a confirmation. The server binds 127.0.0.1 and checks a per-launch token on every
request (see :mod:`headroom.ui.security`).

Starlette, Jinja2 and uvicorn are imported when the app is created, so importing this package is
cheap; without the extra, :func:`create_app` raises MissingDependencyError naming the install line.
Every asset ships in the package (no CDN, no build step): ``static/htmx.min.js`` is htmx 2.0.11
from the npm package ``htmx.org`` (0BSD, ``static/htmx.LICENSE.txt``), the rest is ours.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from headroom.memory.core import HierarchicalMemory

__all__ = ["create_app"]


def create_app(memory: HierarchicalMemory, *, token: str, **options: Any) -> Starlette:
    """The inspector app for an open ``memory`` (see :func:`headroom.ui.app.create_app`)."""
    from headroom.ui.app import create_app as _create_app

    return _create_app(memory, token=token, **options)
