"""Fixtures for the LlamaIndex adapter tests: a HashEmbedder memory and a scripted LLM."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.base.llms.types import (
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.llms.custom import CustomLLM

from headroom.memory import HierarchicalMemory, MemoryConfig
from headroom.testing import HashEmbedder


class ScriptedLLM(CustomLLM):
    """Replies from a script (a list used in order, or a function of the prompt); records prompts.

    CustomLLM (like MockLLM) needs its own ``__init__`` for extra state.
    """

    chunk_size: int = 0

    def __init__(self, script: list[str] | Callable[[str], str], *, chunk_size: int = 3) -> None:
        super().__init__(chunk_size=chunk_size)
        self._script = script
        self._prompts: list[str] = []

    @property
    def prompts(self) -> list[str]:
        return self._prompts

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="scripted", context_window=8192, num_output=256)

    def _reply(self, prompt: str) -> str:
        self._prompts.append(prompt)
        if callable(self._script):
            return self._script(prompt)
        return self._script.pop(0) if self._script else "ok"

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self._reply(prompt))

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        text = self._reply(prompt)
        size = self.chunk_size or len(text) or 1

        def gen() -> Generator[CompletionResponse, None, None]:
            sent = ""
            for start in range(0, len(text), size):
                delta = text[start : start + size]
                sent += delta
                yield CompletionResponse(text=sent, delta=delta)

        return gen()


@pytest.fixture
def embedder() -> HashEmbedder:
    return HashEmbedder(64)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "memory.db"


@pytest.fixture
def hm(db_path: Path, embedder: HashEmbedder) -> Iterator[HierarchicalMemory]:
    memory = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=db_path, vector_dimension=64), embedder=embedder
    )
    yield memory
    memory.sync.close()


@pytest.fixture
def scripted() -> type[ScriptedLLM]:
    """The ScriptedLLM class (test modules cannot import conftest under importlib mode)."""
    return ScriptedLLM


@pytest.fixture
def pg_chat_url(postgres_server: str) -> Iterator[Callable[[], str]]:
    """Each call: a PostgreSQL URL on a fresh schema of its own (dropped afterwards)."""
    import psycopg

    schemas: list[str] = []

    def make() -> str:
        schemas.append(f"chat_{uuid.uuid4().hex[:12]}")
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schemas[-1]}")  # type: ignore[arg-type]
        sep = "&" if "?" in postgres_server else "?"
        return f"{postgres_server}{sep}options=-csearch_path%3D{schemas[-1]}%2Cpublic"

    yield make
    for schema in schemas:
        try:
            with psycopg.connect(postgres_server, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")  # type: ignore[arg-type]
        except psycopg.Error:  # cleanup must not fail the test
            pass


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def chat_location(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a chat store lives: a SQLite file, or a PostgreSQL URL on a fresh schema of its own."""
    if request.param == "sqlite":
        return tmp_path / "chat.db"
    return str(request.getfixturevalue("pg_chat_url")())
