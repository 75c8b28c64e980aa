"""A PostgreSQL backend killed mid-operation (``pg_terminate_backend`` from another connection).

Each operation either succeeds after one retry (the killed transaction never reached COMMIT, so
the server rolled it back) or fails with a StorageError, and the store holds all of a write or
none of it: never a half-written batch, a closed version without its successor, or a duplicate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event

from headroom.memory import HierarchicalMemory, MemoryConfig, MemoryFilter, StorageError
from headroom.testing import HashEmbedder

pytestmark = pytest.mark.postgres

EVERYTHING = MemoryFilter(user_id="u", include_superseded=True)


@pytest.fixture
def backend() -> str:
    """PostgreSQL only: ``store_url`` is a fresh schema's URL."""
    return "postgres"


@pytest.fixture
def hm(store_url: str) -> Iterator[HierarchicalMemory]:
    memory = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=store_url, vector_dimension=64, cache_enabled=False),
        embedder=HashEmbedder(64),
    )
    yield memory
    memory.sync.close()


def terminate(admin_url: str, pid: int) -> None:
    """End backend ``pid`` and wait until it is gone (PostgreSQL >= 14)."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


class Killer:
    """Terminates the backend about to run the next ``times`` statements matching ``when``."""

    def __init__(
        self, engine: Engine, admin_url: str, when: Callable[[str], bool], times: int = 1
    ) -> None:
        self.left, self.killed = times, 0
        self._engine, self._admin, self._when = engine, admin_url, when
        event.listen(engine, "before_cursor_execute", self._before)

    def _before(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if self.left and self._when(statement):
            self.left -= 1
            self.killed += 1
            terminate(self._admin, conn.connection.dbapi_connection.info.backend_pid)

    def remove(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._before)


def store_engine(hm: HierarchicalMemory) -> Engine:
    return hm._engine.store.engine  # type: ignore[attr-defined,no-any-return]


def seq_bump(sql: str) -> bool:
    return sql.startswith("UPDATE headroom_meta")


def memories_insert(sql: str) -> bool:
    return sql.startswith("INSERT INTO memories")


def test_add_batch_killed_before_commit_is_retried_once(
    hm: HierarchicalMemory, postgres_server: str
) -> None:
    killer = Killer(store_engine(hm), postgres_server, seq_bump)  # rows inserted, not committed
    added = hm.sync.add_batch([{"content": f"User fact {i}", "user_id": "u"} for i in range(5)])
    killer.remove()
    assert killer.killed == 1
    stored = hm.sync.query(EVERYTHING)
    assert sorted(m.id for m in stored) == sorted(m.id for m in added)  # once, not twice


def test_add_batch_killed_twice_fails_cleanly_and_writes_nothing(
    hm: HierarchicalMemory, postgres_server: str
) -> None:
    hm.sync.add("User likes tea", "u")
    killer = Killer(store_engine(hm), postgres_server, memories_insert, times=2)
    with pytest.raises(StorageError, match="connection dropped"):
        hm.sync.add_batch([{"content": f"User fact {i}", "user_id": "u"} for i in range(5)])
    killer.remove()
    assert killer.killed == 2
    assert [m.content for m in hm.sync.query(EVERYTHING)] == ["User likes tea"]
    hm.sync.add("User likes coffee", "u")  # the pool replaced the dead connections
    assert hm.sync.count(EVERYTHING) == 2


def test_a_connection_lost_while_committing_is_a_clear_error(
    hm: HierarchicalMemory, postgres_server: str
) -> None:
    engine = store_engine(hm)
    state = {"left": 1}

    def before_commit(conn: Any) -> None:
        if state["left"]:
            state["left"] -= 1
            terminate(postgres_server, conn.connection.dbapi_connection.info.backend_pid)

    event.listen(engine, "commit", before_commit)
    try:
        with pytest.raises(StorageError, match="while committing"):
            hm.sync.add("User likes tea", "u")
    finally:
        event.remove(engine, "commit", before_commit)
    # the COMMIT never reached the server here, so the transaction was rolled back
    assert hm.sync.count(EVERYTHING) == 0
    hm.sync.add("User likes tea", "u")
    assert hm.sync.count(EVERYTHING) == 1


def test_supersede_killed_mid_transaction(hm: HierarchicalMemory, postgres_server: str) -> None:
    old = hm.sync.add("User lives in Paris", "u")
    killer = Killer(store_engine(hm), postgres_server, memories_insert)  # after closing `old`
    new = hm.sync.supersede(old.id, "User lives in Berlin")
    killer.remove()
    assert killer.killed == 1
    assert [m.id for m in hm.sync.get_history(new.id)] == [old.id, new.id]
    assert hm.sync.count(EVERYTHING) == 2

    killer = Killer(store_engine(hm), postgres_server, memories_insert, times=2)
    with pytest.raises(StorageError):
        hm.sync.supersede(new.id, "User lives in Rome")
    killer.remove()
    current = hm.sync.query(MemoryFilter(user_id="u"))
    assert [m.id for m in current] == [new.id]  # still current: no closed version left behind
    assert current[0].superseded_by is None and hm.sync.count(EVERYTHING) == 2


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param(lambda sql: "websearch_to_tsquery" in sql, id="text"),
        pytest.param(lambda sql: "<=>" in sql, id="vector"),
        pytest.param(lambda sql: "FROM memories" in sql and "ANY" in sql, id="rows"),
    ],
)
def test_search_killed_mid_request_is_retried(
    hm: HierarchicalMemory, postgres_server: str, statement: Callable[[str], bool]
) -> None:
    hm.sync.add_batch(
        [{"content": c, "user_id": "u"} for c in ("User likes sailing", "User owns a boat")]
    )
    expected = [(r.memory.id, round(r.score, 6)) for r in hm.sync.search("sailing boat", "u")]
    assert expected
    killer = Killer(store_engine(hm), postgres_server, statement)
    got = [(r.memory.id, round(r.score, 6)) for r in hm.sync.search("sailing boat", "u")]
    killer.remove()
    assert killer.killed == 1 and got == expected
    killer = Killer(store_engine(hm), postgres_server, statement, times=2)
    with pytest.raises(StorageError, match="connection dropped"):
        hm.sync.search("sailing boat", "u")
    killer.remove()


def test_idle_connections_killed_between_operations(
    hm: HierarchicalMemory, postgres_server: str
) -> None:
    old = hm.sync.add("User lives in Paris", "u")
    for operation in (
        lambda: hm.sync.search("Paris", "u"),
        lambda: hm.sync.supersede(old.id, "User lives in Lyon"),
        lambda: hm.sync.add("User likes tea", "u"),
    ):
        kill_idle(postgres_server)
        operation()
    assert hm.sync.count(EVERYTHING) == 3


def kill_idle(admin_url: str) -> int:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
            "WHERE application_name = 'headroom' AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row else 0


def test_langchain_history_killed_mid_append(store_url: str, postgres_server: str) -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.messages import AIMessage, HumanMessage

    from headroom_langchain.chat_history import HeadroomChatMessageHistory

    history = HeadroomChatMessageHistory("s1", db_path=store_url, user_id="alice")
    history.add_messages([HumanMessage("hi")])
    engine = history._store._engine
    killer = Killer(engine, postgres_server, lambda sql: sql.startswith("INSERT INTO"))
    with pytest.raises(StorageError, match="cannot append"):
        history.add_messages([HumanMessage("two"), AIMessage("three")])
    killer.remove()
    assert killer.killed == 1
    assert [m.content for m in history.messages] == ["hi"]  # none of the failed append
    assert kill_idle(postgres_server) >= 1
    history.add_messages([HumanMessage("two"), AIMessage("three")])  # pool reconnects
    assert [m.content for m in history.messages] == ["hi", "two", "three"]
    history.close()


def test_llamaindex_chat_store_killed_mid_write_and_between(
    store_url: str, postgres_server: str
) -> None:
    pytest.importorskip("llama_index.core")
    from llama_index.core.llms import ChatMessage

    from headroom_llamaindex.chat_store import HeadroomChatStore

    store = HeadroomChatStore(db_path=store_url)
    store.add_message("k", ChatMessage(role="user", content="one"))
    db = store._db
    real_execute = db._pg.execute  # type: ignore[union-attr]
    kills = {"left": 1}

    def execute(sql: str, parameters: Any = (), /) -> Any:
        if kills["left"] and sql.lstrip().upper().startswith("INSERT"):
            kills["left"] -= 1
            terminate(postgres_server, db._pg.conn.info.backend_pid)  # type: ignore[union-attr]
        return real_execute(sql, parameters)

    db._pg.execute = execute  # type: ignore[method-assign,union-attr]
    store.add_message("k", ChatMessage(role="user", content="two"))  # rolled back, run again
    assert kills["left"] == 0
    assert [m.content for m in store.get_messages("k")] == ["one", "two"]
    kill_idle(postgres_server)
    store.add_message("k", ChatMessage(role="user", content="three"))  # a new connection
    kill_idle(postgres_server)
    assert [m.content for m in store.get_messages("k")] == ["one", "two", "three"]
    conn = db._pg.conn  # type: ignore[union-attr]
    real_commit = conn.commit

    def commit() -> None:  # the link drops just before COMMIT reaches the server
        terminate(postgres_server, conn.info.backend_pid)
        real_commit()

    conn.commit = commit  # type: ignore[method-assign]
    with pytest.raises(StorageError, match="while committing"):
        store.add_message("k", ChatMessage(role="user", content="four"))
    assert [m.content for m in store.get_messages("k")] == ["one", "two", "three"]
    store.close()
