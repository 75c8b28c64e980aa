"""Full-text search whose cost follows the user's data: owner token, df pruning, capped queries."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from headroom.memory import HierarchicalMemory, MemoryConfig
from headroom.memory.adapters.sqlite.fts5 import (
    MAX_CANDIDATE_TERMS,
    MAX_QUERY_TERMS,
    fts5_query,
    owner_token,
    query_words,
)
from headroom.testing import HashEmbedder


def _open(path: Path) -> HierarchicalMemory:
    return HierarchicalMemory.create_sync(
        MemoryConfig(db_path=path, vector_dimension=64), embedder=HashEmbedder(64)
    )


def test_query_words_are_linear_capped_and_deduplicated() -> None:
    words = [f"word{i}" for i in range(20_000)]
    huge = " ".join(words)  # ~190 KB, 20k distinct words
    picked = query_words(huge)
    assert len(picked) == MAX_CANDIDATE_TERMS
    assert len(set(picked)) == len(picked)
    query = fts5_query(huge)
    assert query is not None and query.count(" OR ") == MAX_QUERY_TERMS - 1
    assert query_words("The the THE cat cat") == ["cat"]
    assert query_words("the and of") == ["the", "and", "of"]  # only stopwords: keep them


def test_huge_message_costs_about_what_a_short_one_does(hm: HierarchicalMemory) -> None:
    hm.sync.add_batch(
        [{"content": f"User likes topic{i} and tea", "user_id": "u"} for i in range(200)]
    )
    huge = " ".join(f"zz{i} topic{i}" for i in range(12_000))  # ~125 KB
    start = time.perf_counter()
    results = hm.sync.search(huge, "u", mode="text")
    assert results  # the capped query still finds matching rows
    # a linear query builder: far below the seconds a quadratic one took (generous bound)
    assert time.perf_counter() - start < 2.0


def test_terms_in_most_rows_are_dropped_and_rare_ones_rank(hm: HierarchicalMemory) -> None:
    rows = [{"content": f"User enjoys hobby number {i}", "user_id": "alice"} for i in range(40)]
    rows.append({"content": "User keeps a pet iguana", "user_id": "alice"})
    hm.sync.add_batch(rows)
    index = hm._engine.text_index
    with hm._engine.store.engine.connect() as conn:
        assert index._informative(conn, ["user", "iguana"]) == ["iguana"]  # type: ignore[union-attr]
        # nothing informative: only the rarest ("enjoys", 40 rows, vs "user", 41) is kept
        assert index._informative(conn, ["user", "enjoys"]) == ["enjoys"]  # type: ignore[union-attr]
        assert index._informative(conn, ["unicorn"]) == []  # in no row
    hits = hm.sync.search("does the user have an iguana", "alice", mode="text")
    assert hits[0].memory.content == "User keeps a pet iguana"
    assert len(hm.sync.search("user", "alice", mode="text", top_k=50)) == 41


def test_other_users_rows_never_reach_ranking(hm: HierarchicalMemory) -> None:
    hm.sync.add_batch([{"content": "Zebra facts", "user_id": "bob"} for _ in range(30)])
    hm.sync.add("Zebra in the garden", "ünïcode user/1")
    hits = hm.sync.search("zebra", "ünïcode user/1", mode="text")
    assert [h.memory.content for h in hits] == ["Zebra in the garden"]
    assert hm.sync.search("zebra", "carol", mode="text") == []
    with hm._engine.store.engine.connect() as conn:
        count = conn.exec_driver_sql(
            "SELECT count(*) FROM memory_fts WHERE memory_fts MATCH ?",
            (f'owner : "{owner_token("bob")}"',),
        ).scalar_one()
    assert count == 30


def test_updates_and_deletes_keep_the_owner_column_in_step(hm: HierarchicalMemory) -> None:
    m = hm.sync.add("Walrus memo", "dave")
    hm.sync.update(m.id, content="Narwhal memo", user_id="dave")
    assert hm.sync.search("walrus", "dave", mode="text") == []
    assert hm.sync.search("narwhal", "dave", mode="text")[0].memory.id == m.id
    hm.sync.delete(m.id, user_id="dave")
    assert hm.sync.search("narwhal", "dave", mode="text") == []
    assert hm._engine.text_index.check()  # type: ignore[union-attr]


def test_old_fts_layout_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    hm = _open(path)
    hm.sync.add("Heron sighting by the lake", "erin")
    hm.sync.close()
    con = sqlite3.connect(path)  # rewrite the index in the previous layout (no owner column)
    con.executescript(
        """DROP TRIGGER memories_fts_ai; DROP TRIGGER memories_fts_ad; DROP TRIGGER memories_fts_au;
        DROP TABLE memory_fts;
        CREATE VIRTUAL TABLE memory_fts USING fts5(search_text, content='memories',
            content_rowid='pk', tokenize='porter unicode61');
        INSERT INTO memory_fts(memory_fts) VALUES ('rebuild');"""
    )
    con.close()
    hm = _open(path)
    try:
        assert hm.sync.search("heron", "erin", mode="text")[0].memory.content.startswith("Heron")
        assert hm._engine.text_index.check()  # type: ignore[union-attr]
    finally:
        hm.sync.close()


def test_cached_row_ids_follow_the_change_sequence(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    hm, other = _open(path), _open(path)  # a second process-like writer on the same file
    try:
        hm.sync.add("Otter notes", "fay")
        assert len(hm.sync.search("otter", "fay", mode="semantic")) == 1
        other.sync.add("Otter photos", "fay")
        assert len(hm.sync.search("otter", "fay", mode="semantic")) == 2
        first = hm.sync.search("otter", "fay", mode="semantic")[0].memory
        other.sync.delete(first.id, user_id="fay")
        assert first.id not in {
            r.memory.id for r in hm.sync.search("otter", "fay", mode="semantic")
        }
    finally:
        hm.sync.close()
        other.sync.close()


def test_close_after_a_read_only_session_does_not_rewrite_the_vector_index(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    hm = _open(path)
    hm.sync.add("Puffin colony", "gus")
    hm.sync.close()

    def index_files() -> dict[str, int]:  # the base, its sidecar and the delta log
        return {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir() if ".faiss" in p.name}

    before = index_files()
    hm = _open(path)
    assert hm.sync.search("puffin", "gus")
    hm.sync.close()
    assert index_files() == before
    hm = _open(path)
    hm.sync.add("Puffin chick", "gus")
    hm.sync.close()
    assert index_files() != before


def test_cached_frequencies_never_hide_a_new_word(hm: HierarchicalMemory) -> None:
    hm.sync.add_batch([{"content": f"User note {i}", "user_id": "hal"} for i in range(50)])
    assert hm.sync.search("quokka", "hal", mode="text") == []
    hm.sync.add("User saw a quokka", "hal")  # one row: far below the 1% refresh threshold
    assert hm.sync.search("quokka", "hal", mode="text")[0].memory.content == "User saw a quokka"
