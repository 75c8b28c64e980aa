"""The ``headroom memory ...`` commands, run in-process on a temp database with the hash embedder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from headroom.cli import main
from headroom.cli.memory import open_memory
from headroom.memory.errors import ValidationError
from headroom.memory.models import Memory


@pytest.fixture
def populated(tmp_path: Path) -> dict[str, Any]:
    """alice: 3 facts (one superseded once), a session note; bob: 1 fact."""
    db = tmp_path / "cli.db"
    hm = open_memory(db, "hash", create=True)
    try:
        python = hm.sync.add("User prefers Python for backend work", "alice", category="preference")
        berlin = hm.sync.add("User lives in Berlin", "alice")
        lisbon = hm.sync.supersede(berlin.id, "User lives in Lisbon")
        note = hm.sync.add(
            "Debugging the billing export today", "alice", session_id="s1", category="context"
        )
        bob = hm.sync.add("User likes Rust", "bob", category="preference")
    finally:
        hm.sync.close()
    return {
        "db": db,
        "python": python,
        "berlin": berlin,
        "lisbon": lisbon,
        "note": note,
        "bob": bob,
    }


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def mem(db: Path, *args: str) -> list[str]:
    return ["memory", args[0], "--db", str(db), "--embedder", "hash", *args[1:]]


def test_list_shows_current_versions_of_a_user(
    capsys: pytest.CaptureFixture[str], populated: dict[str, Any]
) -> None:
    code, out, _ = run(capsys, *mem(populated["db"], "list", "--user", "alice", "--json"))
    assert code == 0
    contents = {m["content"] for m in json.loads(out)}
    assert contents == {
        "User prefers Python for backend work",
        "User lives in Lisbon",
        "Debugging the billing export today",
    }

    code, out, _ = run(capsys, *mem(populated["db"], "list", "--user", "alice", "--all-versions"))
    assert code == 0
    assert "User lives in Berlin" in out and "(superseded)" in out
    assert "4 memories" in out and "Rust" not in out


def test_list_session_scope_and_category(
    capsys: pytest.CaptureFixture[str], populated: dict[str, Any]
) -> None:
    code, out, _ = run(
        capsys, *mem(populated["db"], "list", "--user", "alice", "--category", "context", "--json")
    )
    assert code == 0
    assert [m["id"] for m in json.loads(out)] == [populated["note"].id]
    # Without --user every user's memories are listed, prefixed by the user id.
    code, out, _ = run(capsys, *mem(populated["db"], "list"))
    assert code == 0 and "bob  " in out and "4 memories" in out


def test_search_ranks_the_matching_fact_first(
    capsys: pytest.CaptureFixture[str], populated: dict[str, Any]
) -> None:
    code, out, _ = run(
        capsys,
        *mem(populated["db"], "search", "where does the user live", "--user", "alice", "--json"),
    )
    assert code == 0
    hits = json.loads(out)
    assert hits[0]["memory"]["content"] == "User lives in Lisbon"
    assert all(h["memory"]["user_id"] == "alice" for h in hits)
    assert {"score", "similarity"} <= set(hits[0])

    code, out, _ = run(
        capsys, *mem(populated["db"], "search", "Rust", "--user", "alice", "--mode", "text")
    )
    assert code == 0 and "no matching memories" in out


def test_show_and_history(capsys: pytest.CaptureFixture[str], populated: dict[str, Any]) -> None:
    lisbon, berlin = populated["lisbon"], populated["berlin"]
    code, out, _ = run(capsys, *mem(populated["db"], "show", lisbon.id, "--json"))
    assert code == 0
    shown = json.loads(out)
    assert shown["content"] == "User lives in Lisbon" and shown["supersedes"] == berlin.id

    code, out, _ = run(capsys, *mem(populated["db"], "show", berlin.id))
    assert code == 0 and "valid until:" in out and f"superseded by: {lisbon.id}" in out

    code, out, _ = run(capsys, *mem(populated["db"], "history", berlin.id, "--json"))
    chain = json.loads(out)
    assert [m["content"] for m in chain] == ["User lives in Berlin", "User lives in Lisbon"]
    assert chain[0]["valid_until"] is not None and chain[1]["valid_until"] is None

    code, out, _ = run(capsys, *mem(populated["db"], "history", lisbon.id))
    assert code == 0 and out.index("v1  User lives in Berlin") < out.index(
        "v2  User lives in Lisbon"
    )
    assert "(current)" in out


def test_stats_json(capsys: pytest.CaptureFixture[str], populated: dict[str, Any]) -> None:
    code, out, _ = run(capsys, *mem(populated["db"], "stats", "--json"))
    assert code == 0
    stats = json.loads(out)
    assert stats["total"] == 4 and stats["superseded"] == 1 and stats["users"] == 2
    code, out, _ = run(capsys, *mem(populated["db"], "stats", "--user", "bob", "--json"))
    assert json.loads(out)["total"] == 1
    code, out, _ = run(capsys, *mem(populated["db"], "stats"))
    assert code == 0 and "4 current, 1 superseded" in out


def test_export_import_round_trip(
    capsys: pytest.CaptureFixture[str], populated: dict[str, Any], tmp_path: Path
) -> None:
    dump = tmp_path / "dump.jsonl"
    code, _, err = run(capsys, *mem(populated["db"], "export", "-o", str(dump)))
    assert code == 0 and "exported 5 memories" in err
    lines = dump.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 5  # every version, superseded ones included

    copy = tmp_path / "copy.db"
    code, out, _ = run(capsys, *mem(copy, "import", str(dump)))
    assert code == 0 and "imported 5 memories" in out

    def records(db: Path) -> dict[str, dict[str, Any]]:
        hm = open_memory(db, "hash")
        try:
            from headroom.memory.ports import MemoryFilter

            return {m.id: m.to_dict() for m in hm.sync.query(MemoryFilter(include_superseded=True))}
        finally:
            hm.sync.close()

    assert records(copy) == records(populated["db"])  # ids, timestamps, links, scopes, metadata

    # History and search work on the imported copy.
    code, out, _ = run(capsys, *mem(copy, "history", populated["berlin"].id, "--json"))
    assert [m["id"] for m in json.loads(out)] == [populated["berlin"].id, populated["lisbon"].id]
    code, out, _ = run(capsys, *mem(copy, "search", "user lives", "--user", "alice", "--json"))
    assert json.loads(out)[0]["memory"]["id"] == populated["lisbon"].id

    # Importing again skips what is already there.
    code, out, _ = run(capsys, *mem(copy, "import", str(dump)))
    assert code == 0 and "imported 0 memories" in out and "5 already present" in out


def test_export_to_stdout_for_one_user(
    capsys: pytest.CaptureFixture[str], populated: dict[str, Any]
) -> None:
    code, out, _ = run(capsys, *mem(populated["db"], "export", "--user", "bob"))
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in rows] == [populated["bob"].id]


def test_delete_one_version_and_a_whole_history(
    capsys: pytest.CaptureFixture[str], populated: dict[str, Any]
) -> None:
    db = populated["db"]
    code, out, _ = run(capsys, *mem(db, "delete", populated["python"].id))
    assert code == 0 and "deleted 1 version" in out
    code, _, err = run(capsys, *mem(db, "show", populated["python"].id))
    assert code == 2 and "no memory with id" in err

    code, out, _ = run(capsys, *mem(db, "delete", populated["lisbon"].id, "--history"))
    assert code == 0 and "deleted 2 versions" in out
    code, out, _ = run(capsys, *mem(db, "list", "--user", "alice", "--all-versions", "--json"))
    assert [m["id"] for m in json.loads(out)] == [populated["note"].id]


def test_delete_refuses_another_users_memory(
    capsys: pytest.CaptureFixture[str], populated: dict[str, Any]
) -> None:
    code, _, err = run(
        capsys, *mem(populated["db"], "delete", populated["bob"].id, "--user", "alice")
    )
    assert code == 2 and "AccessDeniedError" in err


def test_purge(capsys: pytest.CaptureFixture[str], populated: dict[str, Any]) -> None:
    db = populated["db"]
    # No terminal to confirm on and no --yes: refuse and delete nothing.
    code, _, err = run(capsys, *mem(db, "purge", "--user", "alice"))
    assert code == 2 and "--yes" in err

    code, out, _ = run(capsys, *mem(db, "purge", "--user", "alice", "--session", "s1", "--yes"))
    assert code == 0 and "deleted 1 memories" in out
    code, out, _ = run(capsys, *mem(db, "purge", "--user", "alice", "--yes"))
    assert code == 0 and "deleted 3 memories" in out
    code, out, _ = run(capsys, *mem(db, "stats", "--json"))
    assert json.loads(out)["total"] == 1  # bob is untouched


def test_purge_asks_for_confirmation(
    capsys: pytest.CaptureFixture[str], populated: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    code, out, _ = run(capsys, *mem(populated["db"], "purge", "--user", "bob"))
    assert code == 1 and "nothing deleted" in out
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    code, out, _ = run(capsys, *mem(populated["db"], "purge", "--user", "bob"))
    assert code == 0 and "deleted 1 memories" in out


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["list"], 1, "no memory database"),
        (["search", "x", "--user", ""], 2, "ValidationError"),
        (["show", "does-not-exist"], 2, "no memory with id"),
        (["list", "--session", "s1"], 2, "need --user"),
        (["list", "--category", "nonsense"], 2, "unknown memory category"),
    ],
)
def test_errors_exit_non_zero_with_one_line(
    capsys: pytest.CaptureFixture[str],
    populated: dict[str, Any],
    tmp_path: Path,
    argv: list[str],
    code: int,
    message: str,
) -> None:
    db = tmp_path / "missing.db" if argv == ["list"] else populated["db"]
    got, _, err = run(capsys, *mem(db, *argv))
    assert got == code
    assert message in err and err.startswith("headroom: error:") and "Traceback" not in err


def test_import_rejects_a_bad_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "content": "x", "user_id": "u"}\nnot json\n', encoding="utf-8")
    code, _, err = run(capsys, *mem(tmp_path / "new.db", "import", str(bad)))
    assert code == 2 and "bad.jsonl:2" in err
    code, _, err = run(capsys, *mem(tmp_path / "new.db", "import", str(tmp_path / "nope.jsonl")))
    assert code == 1 and "no such file" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["memory", "search", "query-without-user"])
    assert info.value.code == 2
    assert "--user" in capsys.readouterr().err


def test_import_memories_skips_existing_ids_and_validates(hm: Any) -> None:
    kept = hm.sync.add("User likes tea", "carol")
    copy = Memory.from_dict(
        {**kept.to_dict(), "id": "imported-1", "content": "User likes green tea"}
    )
    assert hm.sync.import_memories([kept, copy, copy]) == 1
    assert hm.sync.get("imported-1").created_at == kept.created_at
    assert hm.sync.search("green tea", "carol", top_k=1)[0].id == "imported-1"
    with pytest.raises(ValidationError):
        hm.sync.import_memories([{"id": "x"}])
    with pytest.raises(ValidationError):
        hm.sync.import_memories([Memory(id="y", content="  ", user_id="carol")])


def test_python_m_entry_point_and_stdlib_only_import(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "headroom.cli", "memory", "show", "nope", "--db", str(tmp_path / "x.db")],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert (
        result.returncode == 1
        and "no memory database" in result.stderr
        and "Traceback" not in result.stderr
    )
    probe = "import sys, headroom.cli; headroom.cli.build_parser(); print('numpy' in sys.modules, 'sqlmodel' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["False", "False"]
