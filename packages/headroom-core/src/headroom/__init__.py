"""Headroom: hierarchical, temporal, inline-extracted memory for LLM applications.

``with_memory(OpenAI(), user_id="alice")`` returns a client used exactly like the original, which
remembers. The engine lives in :mod:`headroom.memory`. Names are imported lazily, so
``import headroom`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from headroom.openai.wrapper import MemoryWrapper, WrapperMemoryAPI, with_memory

__version__ = "0.1.0"

__all__ = [
    "MemoryWrapper",
    "WrapperMemoryAPI",
    "__version__",
    "with_memory",
]

_LAZY = {
    "with_memory": "headroom.openai.wrapper",
    "MemoryWrapper": "headroom.openai.wrapper",
    "WrapperMemoryAPI": "headroom.openai.wrapper",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'headroom' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
