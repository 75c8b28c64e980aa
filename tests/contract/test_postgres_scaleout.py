"""PostgreSQL scale-out: the striped change sequence under concurrent writers, and the SQL of every
per-user operation carrying ``user_id`` (what a user-sharded Citus deployment routes by)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import event

from headroom.memory import HierarchicalMemory, MemoryConfig, MemoryFilter
from headroom.memory.ports import VectorFilter
from headroom.testing import HashEmbedder

pytestmark = pytest.mark.postgres

WRITERS, BATCHES, BATCH = 3, 25, 4

WRITER = """
import sys, time
from pathlib import Path
from headroom.memory import HierarchicalMemory, MemoryConfig
from headroom.testing import HashEmbedder

url, tag, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
hm = HierarchicalMemory.create_sync(
    MemoryConfig(db_path=url, vector_dimension=32, cache_enabled=False), embedder=HashEmbedder(32)
)
while not go.exists():
    time.sleep(0.005)
for b in range({batches}):
    hm.sync.add_batch(
        [{{"content": f"{{tag}} batch {{b}} item {{i}}", "user_id": tag}} for i in range({batch})]
    )
hm.sync.close()
"""


@pytest.fixture
def backend() -> str:
    """PostgreSQL only: ``store_url`` is a fresh schema's URL."""
    return "postgres"


def test_a_reader_never_misses_a_write_counted_in_the_sequence(
    store_url: str, tmp_path: Path
) -> None:
    """Concurrent writer processes (one transaction of BATCH rows each) and a reader in this one.

    Each committed write adds exactly 1 to the sequence, so after reading ``S`` the reader must
    see at least ``(S - S0) * BATCH`` rows; and when the sequence reads ``S`` again afterwards,
    nothing committed in between, so the rows counted in between were exactly those.
    """
    hm = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=store_url, vector_dimension=32, cache_enabled=False),
        embedder=HashEmbedder(32),
    )
    store = hm._engine.store  # type: ignore[attr-defined]
    everything = MemoryFilter(include_superseded=True)
    s0 = store.current_seq()
    go = tmp_path / "go"
    code = textwrap.dedent(WRITER.format(batches=BATCHES, batch=BATCH))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, store_url, f"w{i}", str(go)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(WRITERS)
    ]
    time.sleep(2.0)  # the writers have opened their memories
    go.touch()
    observations = 0
    exact = 0
    last = s0
    while any(p.poll() is None for p in procs) or observations < 5:
        seq = store.current_seq()
        rows = store.count(everything)
        again = store.current_seq()
        assert last <= seq <= again, "the sequence went backwards"
        assert rows >= (seq - s0) * BATCH, f"seq {seq} counts writes the reader did not see"
        assert rows <= (again - s0) * BATCH, f"rows visible that seq {again} does not count"
        if again == seq:
            assert rows == (seq - s0) * BATCH
            exact += 1
        last = again
        observations += 1
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert store.current_seq() - s0 == WRITERS * BATCHES  # exactly one per committed write
    assert store.count(everything) == WRITERS * BATCHES * BATCH
    assert observations >= 5 and exact >= 1
    hm.sync.close()


def test_writers_on_different_backends_do_not_share_a_counter_row(store_url: str) -> None:
    """Two open write transactions bump different stripes (no row lock between them)."""
    import psycopg

    from headroom.memory.adapters.postgres.schema import SEQ_STRIPES

    hm = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=store_url, vector_dimension=32), embedder=HashEmbedder(32)
    )
    hm.sync.close()
    libpq = store_url.replace("postgresql+psycopg://", "postgresql://")
    conns = [psycopg.connect(libpq) for _ in range(SEQ_STRIPES + 1)]
    try:
        by_stripe: dict[int, Any] = {}
        for conn in conns:  # two backends whose pids fall on different stripes
            pid = conn.info.backend_pid
            by_stripe.setdefault(pid % SEQ_STRIPES, conn)
        assert len(by_stripe) >= 2
        first, second = list(by_stripe.values())[:2]
        bump = (
            "UPDATE headroom_meta SET value = (CAST(value AS BIGINT) + 1)::text WHERE key = "
            f"CASE WHEN pg_backend_pid() % {SEQ_STRIPES} = 0 THEN 'seq' "
            f"ELSE 'seq:' || (pg_backend_pid() % {SEQ_STRIPES}) END"
        )
        first.execute(bump)  # type: ignore[arg-type]  # open transaction, row lock held
        second.execute("SET lock_timeout = '2s'")
        second.execute(bump)  # type: ignore[arg-type]  # would time out on a shared row
        assert second.execute("SELECT 1").fetchone() == (1,)
        first.commit()
        second.commit()
    finally:
        for conn in conns:
            conn.close()
    reopened = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=store_url, vector_dimension=32), embedder=HashEmbedder(32)
    )
    assert reopened._engine.store.current_seq() == 2  # type: ignore[attr-defined]
    reopened.sync.close()


# -- user_id in every per-user statement (Citus routing) -------------------------------------

TABLE_ACCESS = re.compile(r"\b(FROM|UPDATE|INTO)\s+memories\b", re.IGNORECASE)


class Statements:
    def __init__(self, hm: HierarchicalMemory) -> None:
        self.engine = hm._engine.store.engine  # type: ignore[attr-defined]
        self.seen: list[str] = []
        event.listen(self.engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if TABLE_ACCESS.search(statement):
            self.seen.append(" ".join(statement.split()))

    def take(self) -> list[str]:
        seen, self.seen = self.seen, []
        return seen

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)


def unrouted(statements: list[str]) -> list[str]:
    """Statements on ``memories`` that do not name ``user_id`` (in WHERE, or the INSERT's row)."""
    bad = []
    for sql in statements:
        if sql.upper().startswith("INSERT"):
            ok = "user_id" in sql.split("VALUES")[0]
        else:
            ok = "user_id" in re.split(r"\bWHERE\b", sql, maxsplit=1, flags=re.IGNORECASE)[-1]
            ok = ok and bool(re.search(r"\bWHERE\b", sql, re.IGNORECASE))
        if not ok:
            bad.append(sql)
    return bad


@pytest.fixture
def traced(store_url: str) -> Iterator[tuple[HierarchicalMemory, Statements]]:
    hm = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=store_url, vector_dimension=32), embedder=HashEmbedder(32)
    )
    statements = Statements(hm)
    yield hm, statements
    statements.close()
    hm.sync.close()


def test_every_per_user_write_and_lookup_filters_by_user_id(
    traced: tuple[HierarchicalMemory, Statements],
) -> None:
    hm, sql = traced
    s = hm.sync
    a = s.add("User lives in Paris", "alice", session_id="s1")
    s.add_batch([{"content": "User likes tea", "user_id": "alice"}])
    s.add("Bob likes chess", "bob")
    new = s.supersede(a.id, "User lives in Berlin", user_id="alice")
    s.update(new.id, user_id="alice", importance=0.9)
    s.update(new.id, user_id="alice", content="User lives in Berlin, Mitte")
    s.get(new.id, user_id="alice")
    s.get_history(new.id, user_id="alice")
    s.query(MemoryFilter(user_id="alice"))
    s.count(MemoryFilter(user_id="alice", include_superseded=True))
    s.delete(new.id, user_id="alice", include_history=True)
    s.clear_scope("alice", session_id="s1")
    seen = sql.take()
    assert len(seen) >= 12
    assert unrouted(seen) == []
    s.stats(user_id="alice")
    # the user's counts are routed; vector_index_size is the whole index's size (all shards)
    assert unrouted(sql.take()) == [
        "SELECT count(*) AS count_1 FROM memories WHERE memories.embedding IS NOT NULL"
    ]
    assert [m.content for m in s.query(MemoryFilter(user_id="bob"))] == ["Bob likes chess"]


def test_a_user_routed_get_still_tells_denied_from_missing(
    traced: tuple[HierarchicalMemory, Statements],
) -> None:
    from headroom.memory import AccessDeniedError

    hm, sql = traced
    bob = hm.sync.add("Bob likes chess", "bob")
    sql.take()
    with pytest.raises(AccessDeniedError):
        hm.sync.get(bob.id, user_id="alice")  # one routed miss, then one look-up by id alone
    seen = sql.take()
    assert len(seen) == 2 and unrouted(seen) == seen[1:]
    assert hm.sync.get("0" * 32, user_id="alice") is None
    sql.take()
    assert hm.sync.get(bob.id, user_id="bob") is not None and unrouted(sql.take()) == []


def test_search_statements_filter_by_user_id(
    traced: tuple[HierarchicalMemory, Statements],
) -> None:
    hm, sql = traced
    hm.sync.add_batch(
        [{"content": c, "user_id": "alice"} for c in ("User likes sailing", "User owns a boat")]
    )
    sql.take()
    assert hm.sync.search("sailing boat", "alice")
    seen = sql.take()
    assert any("search_tsv" in s for s in seen) and any("<=>" in s for s in seen)
    assert unrouted(seen) == []  # the fetches by primary key carry the user too


def test_search_statements_all_filter_by_user_id(
    traced: tuple[HierarchicalMemory, Statements],
) -> None:
    hm, sql = traced
    hm.sync.add_batch(
        [{"content": c, "user_id": "alice"} for c in ("User likes sailing", "User owns a boat")]
    )
    sql.take()
    hm.sync.search("sailing boat", "alice")
    assert unrouted(sql.take()) == []


def test_store_lookups_by_pk_take_the_owner(
    traced: tuple[HierarchicalMemory, Statements],
) -> None:
    hm, sql = traced
    mine = hm.sync.add("User likes sailing", "alice")
    theirs = hm.sync.add("Bob likes sailing", "bob")
    store = hm._engine.store  # type: ignore[attr-defined]
    index: Any = hm._engine.vector_index  # type: ignore[attr-defined]
    pks = [int(p) for p in store.matching_pks(MemoryFilter(include_superseded=True))]
    sql.take()
    got = store.get_by_pks(pks, user_id="alice")
    vectors = store.get_vectors(pks, user_id="alice")
    q = HashEmbedder(32).embed(["sailing"])[0]
    hits = index.search(q, 5, VectorFilter(allowed_ids=np.asarray(pks), user_id="alice"))
    assert store.get(theirs.id, user_id="alice") is None
    assert store.get(mine.id, user_id="alice").id == mine.id
    assert unrouted(sql.take()) == []
    assert [m.id for m in got.values()] == [mine.id]
    assert list(vectors) == list(got) == [pk for pk, _ in hits]
    assert store.delete([theirs.id], user_id="alice") == 0  # not alice's: untouched
    assert hm.sync.get(theirs.id) is not None


def test_keys_include_the_distribution_column(
    traced: tuple[HierarchicalMemory, Statements],
) -> None:
    """Citus: every primary key / unique index of a distributed table includes user_id."""
    hm, _ = traced
    store = hm._engine.store  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT i.relname, ARRAY(SELECT a.attname FROM pg_attribute a "
            "WHERE a.attrelid = x.indrelid AND a.attnum = ANY(x.indkey)) "
            "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = 'memories'::regclass AND (x.indisunique OR x.indisprimary)"
        ).all()
    assert len(rows) == 2 and all("user_id" in cols for _, cols in rows), rows
