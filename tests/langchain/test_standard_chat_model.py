"""langchain-tests' ``ChatModelUnitTests`` against HeadroomChatModel wrapping a real ChatOpenAI.

The suite builds the model class from the standard params (``temperature``, ``max_tokens``,
``stop``, ``timeout``, ``max_retries``, ``api_key``...): those belong to the wrapped model, so the
class under test is HeadroomChatModel with a ChatOpenAI built from them, over a real Headroom
memory. Everything the suite checks (``_get_ls_params``, ``bind_tools``, ``with_structured_output``,
init) runs HeadroomChatModel's own code.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_openai import ChatOpenAI
from langchain_tests.unit_tests import ChatModelUnitTests

from headroom.inline.memory import InlineMemory
from headroom.memory import HierarchicalMemory, MemoryConfig
from headroom.testing import HashEmbedder
from headroom_langchain import HeadroomChatModel

_STATE: dict[str, Any] = {}


def _inline() -> InlineMemory:
    if "inline" not in _STATE:
        tmp = tempfile.mkdtemp(prefix="headroom-lc-std-")
        config = MemoryConfig(db_path=Path(tmp) / "memory.db", vector_dimension=64)
        _STATE["memory"] = HierarchicalMemory.create_sync(config, embedder=HashEmbedder(64))
        _STATE["inline"] = InlineMemory(_STATE["memory"], user_id="standard-tests")
    inline: InlineMemory = _STATE["inline"]
    return inline


@pytest.fixture(scope="module", autouse=True)
def _close_memory() -> Iterator[None]:
    yield
    memory = _STATE.pop("memory", None)
    _STATE.pop("inline", None)
    if memory is not None:
        memory.sync.close()


class HeadroomChatOpenAI(HeadroomChatModel):
    """HeadroomChatModel over ``ChatOpenAI(**standard_params)``."""

    def __init__(self, **params: Any) -> None:
        super().__init__(model=ChatOpenAI(**params), inline=_inline())


class TestHeadroomChatModelStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[HeadroomChatOpenAI]:
        return HeadroomChatOpenAI

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "gpt-4o-mini", "api_key": "test"}
