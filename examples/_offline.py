"""Offline by default: the examples talk to a scripted OpenAI-compatible server on 127.0.0.1.

``openai_endpoint()`` does nothing when ``OPENAI_API_KEY`` is set (the examples then call the real
OpenAI API). Otherwise it starts :class:`headroom.testing.FakeOpenAIServer` (a scripted assistant
that follows Headroom's memory protocol) and points the OpenAI SDK, LiteLLM and llama-index at it
through the usual environment variables (``OPENAI_BASE_URL``, ``OPENAI_API_BASE``,
``OPENAI_API_KEY``), so the code of each example is exactly what you would write for OpenAI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before anything imports litellm

from headroom.testing import FakeOpenAIServer

_VARS = ("OPENAI_BASE_URL", "OPENAI_API_BASE", "OPENAI_API_KEY")


def offline() -> bool:
    """True when the examples run against the scripted server (no ``OPENAI_API_KEY``)."""
    return os.environ.get("OPENAI_API_KEY", "").startswith("sk-offline")


@contextmanager
def openai_endpoint() -> Iterator[None]:
    """The real OpenAI API if ``OPENAI_API_KEY`` is set, else a scripted server on 127.0.0.1."""
    if os.environ.get("OPENAI_API_KEY"):
        yield
        return
    saved = {name: os.environ.get(name) for name in _VARS}
    with FakeOpenAIServer(chunk_size=5) as server:
        os.environ.update(
            OPENAI_BASE_URL=server.base_url,
            OPENAI_API_BASE=server.base_url,
            OPENAI_API_KEY="sk-offline-scripted",
        )
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
