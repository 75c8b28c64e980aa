"""Fixtures for the inspector tests: a seeded database (real SQLite + FAISS, hash embedder) and an
authenticated Starlette TestClient on the app."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time as time_module
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason='the inspector needs pip install "headroom-core[ui]"')

from starlette.testclient import TestClient

from headroom.memory import HierarchicalMemory, MemoryFilter
from headroom.ui.app import create_app

TOKEN = "test-token-0123456789abcdef"
BASE_URL = "http://127.0.0.1"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass
class Seeded:
    hm: HierarchicalMemory
    db_path: Path
    google: str  # v1 of alice's job, superseded
    anthropic: str  # v2, current
    python: str
    session_note: str
    agent_note: str
    bob: str


@pytest.fixture
def seeded(hm: HierarchicalMemory, db_path: Path) -> Seeded:
    s = hm.sync
    v1 = s.add("User works at Google", "alice", category="fact", importance=0.8, valid_from=T0)
    v2 = s.supersede(
        v1.id, "User works at Anthropic", user_id="alice", valid_from=T0 + timedelta(days=120)
    )
    python = s.add("User prefers Python for backend work", "alice", category="preference",
                   metadata={"source": "inline"})  # fmt: skip
    session = s.add("Debugging the flaky CI job today", "alice", session_id="morning",
                    scope="session", category="context")  # fmt: skip
    agent = s.add("Use ruff, not flake8, in this repo", "alice", session_id="morning",
                  agent_id="claude", scope="agent", category="decision")  # fmt: skip
    bob = s.add("Bob likes Rust", "bob", category="preference")
    return Seeded(hm, db_path, v1.id, v2.id, python.id, session.id, agent.id, bob.id)


def snapshot(hm: HierarchicalMemory) -> list[dict[str, Any]]:
    """Every stored version, to assert that a refused request changed nothing."""
    return [m.to_dict() for m in hm.sync.query(MemoryFilter(include_superseded=True))]


def login(client: TestClient) -> TestClient:
    response = client.get(f"/?token={TOKEN}", follow_redirects=False)
    assert response.status_code == 303, response.text
    client.cookies.update(response.cookies)
    return client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "no csrf field in the page"
    return found.group(1)


class Helpers:
    """What the test modules share (importing conftest is not possible with importlib mode)."""

    token = TOKEN
    t0 = T0

    def __init__(self, seeded: Seeded) -> None:
        self.seeded = seeded

    def snapshot(self) -> list[dict[str, Any]]:
        return snapshot(self.seeded.hm)

    csrf_of = staticmethod(csrf_of)
    login = staticmethod(login)


@pytest.fixture
def ui(seeded: Seeded) -> Helpers:
    return Helpers(seeded)


@pytest.fixture
def make_client(seeded: Seeded) -> Iterator[Any]:
    clients: list[TestClient] = []

    def make(*, read_only: bool = False, authenticated: bool = True) -> TestClient:
        app = create_app(seeded.hm, token=TOKEN, read_only=read_only, title="memory.db")
        client = TestClient(app, base_url=BASE_URL)
        clients.append(client)
        return login(client) if authenticated else client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Any) -> TestClient:
    return make_client()  # type: ignore[no-any-return]


# -- a real `headroom ui` process (uvicorn on 127.0.0.1), shared by the server and browser tests ---


@dataclass
class UIServer:
    url: str  # as printed, with the token
    base: str
    db_path: Path
    process: subprocess.Popen[str]
    output: list[str]


def _seed_file(db_path: Path) -> None:
    from headroom.cli.memory import open_memory

    memory = open_memory(db_path, "hash", create=True)
    try:
        s = memory.sync
        v1 = s.add("User works at Google", "alice", category="fact", valid_from=T0)
        s.supersede(v1.id, "User works at Anthropic", user_id="alice",
                    valid_from=T0 + timedelta(days=120))  # fmt: skip
        s.add("User prefers Python for backend work", "alice", category="preference")
        s.add("Use ruff, not flake8, in this repo", "alice", session_id="morning",
              agent_id="claude", scope="agent", category="decision")  # fmt: skip
        s.add("Carol is vegetarian", "carol", category="preference")
    finally:
        memory.sync.close()


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:
    db_path = tmp_path_factory.mktemp("ui-server") / "memory.db"
    _seed_file(db_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "headroom.cli", "ui", "--db", str(db_path), "--embedder", "hash"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    output: list[str] = []
    url = None
    deadline = time_module.monotonic() + 60
    assert process.stdout is not None
    while url is None and time_module.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line)
        found = re.search(r"http://127\.0\.0\.1:\d+/\?token=[\w-]+", line)
        url = found.group(0) if found else None
    if url is None:
        process.kill()
        pytest.fail("headroom ui printed no URL:\n" + "".join(output))
    # Keep draining the output so the server can never block on a full pipe.
    drain = threading.Thread(target=lambda: output.extend(process.stdout or []), daemon=True)
    drain.start()
    yield UIServer(url, url.split("/?")[0], db_path, process, output)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    drain.join(timeout=5)
    assert process.returncode == 0, "".join(output)
