"""Fixtures for the inspector tests: a seeded database (real SQLite + FAISS, hash embedder) and an
authenticated Starlette TestClient on the app."""

from __future__ import annotations

import re
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
