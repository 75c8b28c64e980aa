"""Edits through the TestClient: confirmation first, then the change, visible to the CLI."""

from __future__ import annotations

import html
import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from headroom.cli import main as cli_main
from headroom.ui.security import csrf_token_for


def _post(client: TestClient, ui: Any, path: str, **fields: str) -> Any:
    page = client.get(f"/memory?user=alice&id={ui.seeded.anthropic}").text
    return client.post(path, data={"csrf": ui.csrf_of(page), **fields}, follow_redirects=False)


def _cli_list(capsys: pytest.CaptureFixture[str], db: Any, *extra: str) -> str:
    capsys.readouterr()
    args = ["memory", "list", "--db", str(db), "--embedder", "hash", "--user", "alice", *extra]
    assert cli_main(args) == 0
    return capsys.readouterr().out


def test_correct_asks_first_then_updates_in_place(
    client: TestClient, ui: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    s = ui.seeded
    before = ui.snapshot()
    fields = {"id": s.anthropic, "user_id": "alice", "content": "User works at Anthropic (London)",
              "category": "fact", "importance": "0.9"}  # fmt: skip
    review = _post(client, ui, "/update", **fields)
    assert review.status_code == 200 and 'id="confirm"' in review.text
    assert "User works at Anthropic (London)" in review.text and "0.9" in review.text
    assert ui.snapshot() == before  # nothing written yet
    done = _post(client, ui, "/update", **fields, confirm="yes")
    assert done.status_code == 303
    assert done.headers["location"] == f"/memory?user=alice&id={s.anthropic}&done=corrected"
    page = client.get(done.headers["location"]).text
    assert "Corrected in place." in page and "User works at Anthropic (London)" in page
    updated = s.hm.sync.get(s.anthropic)
    assert updated.content == "User works at Anthropic (London)" and updated.importance == 0.9
    assert len(s.hm.sync.get_history(s.anthropic)) == 2  # same version, no new one
    assert "User works at Anthropic (London)" in _cli_list(capsys, s.db_path)


def test_supersede_builds_the_chain(
    client: TestClient, ui: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    s = ui.seeded
    fields = {"id": s.anthropic, "user_id": "alice", "content": "User works at OpenAI"}
    review = _post(client, ui, "/supersede", **fields)
    assert review.status_code == 200 and "Replace this fact" in review.text
    assert s.hm.sync.get(s.anthropic).is_current
    done = _post(client, ui, "/supersede", **fields, confirm="yes")
    assert done.status_code == 303
    page = client.get(done.headers["location"]).text
    assert "3 versions, oldest first" in page and "Superseded: this is the new current" in page
    chain = s.hm.sync.get_history(s.anthropic)
    assert [m.content for m in chain] == [
        "User works at Google", "User works at Anthropic", "User works at OpenAI"
    ]  # fmt: skip
    listed = _cli_list(capsys, s.db_path)
    assert "User works at OpenAI" in listed and "User works at Anthropic" not in listed
    history = _cli_list(capsys, s.db_path, "--all-versions")
    assert "User works at Anthropic  (superseded)" in history


def test_delete_one_version_or_the_whole_fact(
    client: TestClient, ui: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    s = ui.seeded
    review = _post(client, ui, "/delete", id=s.python, user_id="alice")
    assert "Delete this version?" in review.text and s.hm.sync.get(s.python) is not None
    done = _post(client, ui, "/delete", id=s.python, user_id="alice", confirm="yes")
    assert (
        done.status_code == 303 and done.headers["location"] == "/memories?user=alice&done=deleted"
    )
    assert "Deleted." in client.get(done.headers["location"]).text
    assert s.hm.sync.get(s.python) is None
    review = _post(client, ui, "/delete", id=s.anthropic, user_id="alice", history="on")
    assert "Delete all 2 versions?" in review.text and "User works at Google" in review.text
    _post(client, ui, "/delete", id=s.anthropic, user_id="alice", history="on", confirm="yes")
    assert s.hm.sync.get(s.google) is None and s.hm.sync.get(s.anthropic) is None
    listed = _cli_list(capsys, s.db_path, "--all-versions")
    assert "works at" not in listed and "Python" not in listed and "2 memories" in listed


def test_export_is_the_cli_export(client: TestClient, ui: Any, capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:  # fmt: skip
    s = ui.seeded
    not_confirmed = _post(client, ui, "/export", user_id="alice")
    assert (
        not_confirmed.status_code == 303
        and not_confirmed.headers["location"] == "/export?user=alice"
    )
    response = _post(client, ui, "/export", user_id="alice", confirm="yes")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert 'filename="headroom-alice.jsonl"' in response.headers["content-disposition"]
    out = tmp_path / "cli.jsonl"
    args = ["memory", "export", "--db", str(s.db_path), "--embedder", "hash", "--user", "alice"]
    assert cli_main([*args, "-o", str(out)]) == 0
    assert response.text == out.read_text(encoding="utf-8")
    records = [json.loads(line) for line in response.text.splitlines()]
    assert len(records) == 5 and {r["user_id"] for r in records} == {"alice"}


# -- bad input: a clear 4xx and nothing changed ----------------------------------------------------


@pytest.mark.parametrize(
    ("path", "fields", "status", "message"),
    [
        ("/update", {"id": "no-such-id", "content": "x"}, 404, "no memory with id"),
        ("/supersede", {"id": "no-such-id", "content": "x"}, 404, "no memory with id"),
        ("/delete", {"id": "no-such-id"}, 404, "no memory with id"),
        ("/update", {"id": "{bob}", "content": "Alice owns this now"}, 403, "another user"),
        ("/supersede", {"id": "{bob}", "content": "Alice owns this now"}, 403, "another user"),
        ("/delete", {"id": "{bob}"}, 403, "another user"),
        ("/update", {"id": "{anthropic}", "content": "   "}, 400, "content must not be empty"),
        ("/update", {"id": "{anthropic}", "importance": "2"}, 400, "importance must be within"),
        ("/update", {"id": "{anthropic}", "importance": "lots"}, 400, "importance must be a number"),
        ("/update", {"id": "{anthropic}", "category": "gossip"}, 400, "unknown memory category"),
        ("/update", {"id": "{anthropic}", "content": "User works at Anthropic"}, 400, "nothing to change"),
        ("/update", {"id": "{google}", "content": "rewrite history"}, 409, "superseded"),
        ("/supersede", {"id": "{google}", "content": "fork history"}, 409, "already superseded"),
        ("/supersede", {"id": "{anthropic}"}, 400, "content must not be empty"),
        ("/update", {"content": "no id"}, 400, "id must be a non-empty string"),
        ("/delete", {"id": "{anthropic}", "user_id": ""}, 400, "user_id must be a non-empty"),
        ("/export", {"user_id": ""}, 400, "user_id must be a non-empty"),
    ],
)  # fmt: skip
def test_bad_edits_are_refused_and_change_nothing(
    client: TestClient, ui: Any, path: str, fields: dict[str, str], status: int, message: str
) -> None:
    s = ui.seeded
    ids = {"bob": s.bob, "anthropic": s.anthropic, "google": s.google}
    data = {"user_id": "alice", "confirm": "yes", **{k: v.format(**ids) for k, v in fields.items()}}
    before = ui.snapshot()
    response = _post(client, ui, path, **data)
    assert response.status_code == status, response.text
    assert message in html.unescape(response.text)
    assert ui.snapshot() == before


def test_a_file_upload_instead_of_text_is_refused(client: TestClient, ui: Any) -> None:
    page = client.get(f"/memory?user=alice&id={ui.seeded.anthropic}").text
    before = ui.snapshot()
    response = client.post(
        "/update",
        data={"csrf": ui.csrf_of(page), "id": ui.seeded.anthropic, "user_id": "alice", "confirm": "yes"},
        files={"content": ("x.txt", b"User works at Evil Corp")},
    )  # fmt: skip
    assert response.status_code == 400 and "content must be text" in response.text
    assert ui.snapshot() == before


def test_read_only_refuses_edits_but_exports(make_client: Any, ui: Any) -> None:
    client: TestClient = make_client(read_only=True)
    page = client.get(f"/memory?user=alice&id={ui.seeded.anthropic}").text
    assert "read-only" in page and 'action="/update"' not in page and 'action="/delete"' not in page
    before = ui.snapshot()
    csrf = csrf_token_for(ui.token)
    for path, fields in [
        ("/update", {"content": "User works at OpenAI"}),
        ("/supersede", {"content": "User works at OpenAI"}),
        ("/delete", {"history": "on"}),
    ]:
        response = client.post(path, data={"csrf": csrf, "id": ui.seeded.anthropic,
                                            "user_id": "alice", "confirm": "yes", **fields})  # fmt: skip
        assert response.status_code == 403 and "--read-only" in response.text
    assert ui.snapshot() == before
    export = client.post("/export", data={"csrf": csrf, "user_id": "alice", "confirm": "yes"})
    assert export.status_code == 200 and len(export.text.splitlines()) == 5
