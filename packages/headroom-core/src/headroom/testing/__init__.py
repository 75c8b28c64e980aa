"""Test doubles a user may import: no model, no network, no extra.

- :class:`HashEmbedder` / :class:`FailingEmbedder`: deterministic embedders for unit tests;
- :class:`FakeOpenAIServer`: an OpenAI-compatible HTTP server on 127.0.0.1 (standard library
  only), driven by :class:`ScriptedAssistant` or any responder function.

Not collected by pytest and free of pytest imports.
"""

from __future__ import annotations

from headroom.testing.embedders import FailingEmbedder, FixedEmbedder, HashEmbedder
from headroom.testing.fake_openai import FakeOpenAIServer, Responder, split_text
from headroom.testing.scripted import ContextMemory, ScriptedAssistant, parse_injected_memories

__all__ = [
    "ContextMemory",
    "FailingEmbedder",
    "FakeOpenAIServer",
    "FixedEmbedder",
    "HashEmbedder",
    "Responder",
    "ScriptedAssistant",
    "parse_injected_memories",
    "split_text",
]
