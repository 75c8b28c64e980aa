"""Compatibility alias: the test doubles live in :mod:`headroom.testing`."""

from __future__ import annotations

from headroom.testing import (
    ContextMemory,
    FailingEmbedder,
    FakeOpenAIServer,
    FixedEmbedder,
    HashEmbedder,
    Responder,
    ScriptedAssistant,
    parse_injected_memories,
    split_text,
)

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
