"""Damaged or foreign files (issue #11, fault 8): a FAISS index copied from another database is
rebuilt, a dropped FTS table is rebuilt on open, read-only opening never writes (and writes raise
ReadOnlyError), a 0-byte file opens with a warning, and StorageError messages carry no SQL."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from pathlib import Path

import pytest

from headroom.cli.main import main as cli_main
from headroom.memory import (
    HierarchicalMemory,
    MemoryConfig,
    MemoryFilter,
    ReadOnlyError,
    StorageError,
)
from headroom.testing import HashEmbedder

DIM = 64


def _open(db: Path, **overrides: object) -> HierarchicalMemory:
    cfg = MemoryConfig(db_path=db, vector_dimension=DIM).with_overrides(**overrides)
    return HierarchicalMemory.create_sync(cfg, embedder=HashEmbedder(DIM))


def _fill(db: Path, words: list[str]) -> None:
    hm = _open(db)
    hm.sync.add_batch([{"content": f"note about {w}", "user_id": "u"} for w in words])
    hm.sync.close()


def _snapshot(directory: Path) -> dict[str, bytes]:
    """Every file's bytes; SQLite's WAL index files (-shm, and an empty -wal) may appear when a
    reader opens a WAL database on a writable filesystem, and carry no data."""
    files = {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}
    return {
        name: data
        for name, data in files.items()
        if not name.endswith("-shm") and not (name.endswith("-wal") and not data)
    }


WORDS_A = [f"alpha{i} river{i % 7}" for i in range(120)]
WORDS_B = [f"bravo{i} mountain{i % 5}" for i in range(120)]


def test_an_index_copied_from_another_database_is_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = tmp_path / "a" / "m.db", tmp_path / "b" / "m.db"
    a.parent.mkdir()
    b.parent.mkdir()
    _fill(a, WORDS_A)
    _fill(b, WORDS_B)  # same sequence number and count, other vectors
    for suffix in (".faiss", ".faiss.json"):
        shutil.copy(f"{a}{suffix}", f"{b}{suffix}")
    with caplog.at_level(logging.WARNING):
        hm = _open(b)
    try:
        assert "another database" in caplog.text
        wrong = 0
        for word in WORDS_B:
            top = hm.sync.search(f"note about {word}", "u", top_k=1, mode="semantic")
            wrong += top[0].content != f"note about {word}"
        assert wrong == 0
    finally:
        hm.sync.close()


def test_a_dropped_fts_table_is_rebuilt_on_open(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    _fill(db, WORDS_A)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE memory_fts")
    hm = _open(db)
    try:
        assert len(hm.sync.text_search("note", "u", top_k=500)) == len(WORDS_A)
        assert hm.sync.text_search("alpha7", "u")[0].content == "note about alpha7 river0"
    finally:
        hm.sync.close()


def test_read_only_opening_never_writes(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    _fill(db, WORDS_A)
    Path(f"{db}.faiss").unlink()  # a missing index is rebuilt in memory only
    before = _snapshot(tmp_path)
    hm = _open(db, read_only=True)
    try:
        assert hm.sync.search("alpha3", "u", top_k=1)[0].content.startswith("note about alpha3")
        assert hm.sync.count(MemoryFilter(user_id="u")) == len(WORDS_A)
        first = hm.sync.query(MemoryFilter(user_id="u", limit=1))[0]
        for write in (
            lambda: hm.sync.add("new fact", "u"),
            lambda: hm.sync.update(first.id, importance=0.9),
            lambda: hm.sync.supersede(first.id, "changed"),
            lambda: hm.sync.delete(first.id),
            lambda: hm.sync.clear_scope("u"),
        ):
            with pytest.raises(ReadOnlyError, match="read-only"):
                write()
    finally:
        hm.sync.close()
    base = ["--db", str(db), "--embedder", "hash"]
    for argv in (["list"], ["search", "alpha3", "--user", "u"], ["show", first.id],
                 ["history", first.id], ["stats"], ["export"]):  # fmt: skip
        assert cli_main(["memory", *argv, *base]) == 0
    assert _snapshot(tmp_path) == before


def test_read_only_opening_of_a_missing_or_foreign_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no memory database"):
        _open(tmp_path / "missing.db", read_only=True)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(StorageError, match="not a headroom memory database"):
        _open(other, read_only=True)


def test_a_zero_byte_file_opens_empty_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "empty.db"
    db.write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        hm = _open(db)
    try:
        assert "0-byte" in caplog.text
        assert hm.sync.count(MemoryFilter()) == 0
    finally:
        hm.sync.close()


def test_storage_errors_carry_no_sql(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    _fill(db, WORDS_A[:3])
    hm = _open(db, busy_timeout_ms=50)
    blocker = sqlite3.connect(db, timeout=0)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StorageError) as info:
            hm.sync.add("blocked", "u")
        message = str(info.value)
        assert "locked" in message
        assert "[SQL" not in message and "sqlalche.me" not in message and "INSERT" not in message
    finally:
        blocker.rollback()
        blocker.close()
        hm.sync.close()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError) as info:
        _open(garbage)
    assert "[SQL" not in str(info.value) and "sqlalche.me" not in str(info.value)


def test_read_only_falls_back_to_immutable_when_sqlite_cannot_open_the_wal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a read-only filesystem SQLite cannot create the WAL index, so mode=ro fails; simulate
    # that failure (tests run as root, for whom chmod does not make a directory read-only).
    from headroom.memory.adapters.sqlite import store as store_module

    db = tmp_path / "m.db"
    _fill(db, WORDS_A[:10])
    real = store_module.create_sqlite_engine
    urls: list[str] = []

    def flaky(url: str, **kwargs: object):  # type: ignore[no-untyped-def]
        urls.append(url)
        if "immutable=1" not in url:
            url = f"sqlite:///file:{tmp_path}/no-such-dir/x.db?mode=ro&uri=true"
        return real(url, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store_module, "create_sqlite_engine", flaky)
    hm = _open(db, read_only=True)
    try:
        assert any("immutable=1" in u for u in urls)
        assert hm.sync.count(MemoryFilter(user_id="u")) == 10
        with pytest.raises(ReadOnlyError):
            hm.sync.add("x", "u")
    finally:
        hm.sync.close()
