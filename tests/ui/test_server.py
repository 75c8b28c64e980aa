"""`headroom ui` as a real process and as a command: the printed URL, the token, SIGTERM, --open."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from headroom.cli import main as cli_main


def test_real_server_serves_pages_behind_the_token(ui_server: Any) -> None:
    with httpx.Client(base_url=ui_server.base, timeout=10) as client:
        assert client.get("/").status_code == 403
        assert client.get("/?token=wrong-token-wrong-token").status_code == 403
        first = client.get(ui_server.url.removeprefix(ui_server.base))
        assert first.status_code == 303 and first.headers["location"] == "/"
        page = client.get("/")
        assert page.status_code == 200 and ">alice</a>" in page.text and ">carol</a>" in page.text


def test_an_edit_in_the_browser_is_seen_by_the_cli(
    ui_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    with httpx.Client(base_url=ui_server.base, timeout=10, follow_redirects=True) as client:
        client.get(ui_server.url.removeprefix(ui_server.base))
        listing = client.get("/memories?user=carol").text
        memory_id = re.search(r'id=([0-9a-f-]+)">Carol is vegetarian', listing).group(1)  # type: ignore[union-attr]
        page = client.get(f"/memory?user=carol&id={memory_id}").text
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)  # type: ignore[union-attr]
        form = {"csrf": csrf, "id": memory_id, "user_id": "carol", "content": "Carol is vegan"}
        review = client.post("/supersede", data=form)
        assert review.status_code == 200 and "confirm" in review.text
        done = client.post("/supersede", data={**form, "confirm": "yes"})
        assert done.status_code == 200 and "Carol is vegan" in done.text
    capsys.readouterr()
    args = [
        "memory",
        "list",
        "--db",
        str(ui_server.db_path),
        "--embedder",
        "hash",
        "--user",
        "carol",
    ]
    assert cli_main([*args, "--all-versions"]) == 0
    out = capsys.readouterr().out
    assert "Carol is vegan" in out and "Carol is vegetarian  (superseded)" in out


def test_sigterm_stops_the_server_cleanly(tmp_path: Path) -> None:
    import os

    from headroom.cli.memory import open_memory

    db = tmp_path / "memory.db"
    open_memory(db, "hash", create=True).sync.close()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "headroom.cli", "ui", "--db", str(db), "--embedder", "hash",
         "--read-only"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    assert process.stdout is not None
    lines = [process.stdout.readline() for _ in range(2)]
    assert "(read-only)" in lines[0] and "http://127.0.0.1:" in lines[1]
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0, out
    assert "headroom ui: stopped" in out and "Traceback" not in out


class _Recorder:
    def __init__(self) -> None:
        self.opened: list[str] = []
        self.served: list[tuple[Any, tuple[str, int]]] = []

    def serve(self, app: Any, sock: socket.socket) -> None:
        self.served.append((app, sock.getsockname()))
        raise KeyboardInterrupt  # what Ctrl-C does to the real server


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> _Recorder:
    from headroom.ui import server

    rec = _Recorder()
    monkeypatch.setattr(server, "serve", rec.serve)
    monkeypatch.setattr("webbrowser.open", lambda url: rec.opened.append(url) or True)
    return rec


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_open_and_port_options(
    recorder: _Recorder, db_path: Path, hm: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    hm.sync.close()
    port = _free_port()
    args = ["ui", "--db", str(db_path), "--embedder", "hash", "--port", str(port), "--open"]
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    url = re.search(r"http://127\.0\.0\.1:(\d+)/\?token=([\w-]+)", out)
    assert url is not None and int(url.group(1)) == port and len(url.group(2)) >= 40
    assert recorder.opened == [url.group(0)]
    assert recorder.served[0][1] == ("127.0.0.1", port)
    assert "headroom ui: stopped" in out
    # Each launch has its own token.
    assert cli_main(args[:-1]) == 0
    second = re.search(r"token=([\w-]+)", capsys.readouterr().out)
    assert second is not None and second.group(1) != url.group(2) and len(recorder.opened) == 1


def test_command_errors(
    recorder: _Recorder, db_path: Path, hm: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hm.sync.close()
    assert cli_main(["ui", "--db", str(tmp_path / "missing.db"), "--embedder", "hash"]) == 1
    assert "no memory database" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        args = ["ui", "--db", str(db_path), "--embedder", "hash", "--port", str(port)]
        assert cli_main(args) == 1
    assert "cannot listen on 127.0.0.1" in capsys.readouterr().err
    assert cli_main(["ui", "--db", str(db_path), "--embedder", "hash", "--port", "70000"]) == 2
    assert recorder.served == []


def test_database_urls_are_shown_without_credentials() -> None:
    from headroom.ui.command import display_name

    assert display_name("postgresql://bob:s3cret@db.local/mem") == "postgresql://db.local/mem"
    assert display_name("memory.db") == "memory.db"


def test_missing_extra_names_the_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from headroom.memory.errors import MissingDependencyError

    monkeypatch.delitem(sys.modules, "headroom.ui.app")
    monkeypatch.setitem(sys.modules, "starlette.applications", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "headroom-core\[ui\]"'):
        importlib.import_module("headroom.ui.app")
