"""The read-only pages through Starlette's TestClient: users, memories, memory, search, export."""

from __future__ import annotations

import html as html_lib
import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from headroom.inline.memory import InlineMemory
from headroom.memory import MemoryConfig


def _rows(html: str) -> list[str]:
    """The memory contents listed in a page, in order."""
    return re.findall(r'class="memory-link" href="[^"]*">([^<]+)</a>', html)


def test_users_page_counts_by_scope_and_category(client: TestClient) -> None:
    html = client.get("/").text
    assert "5 current memories and 1 superseded version" in html
    alice = html[html.index(">alice</a>") :].split("</tr>")[0]
    cells = re.findall(r'<td class="num">(\d+)</td>', alice)
    # current, superseded, then user/session/agent/turn scope counts
    assert cells == ["4", "1", "2", "1", "1", "0"]
    assert "fact 1" in alice and "decision 1" in alice and "preference 1" in alice
    assert re.search(r'class="when">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d<', alice)
    assert ">bob</a>" in html


def test_users_page_of_an_empty_database(ui: Any, tmp_path: Any) -> None:
    from headroom.memory import HierarchicalMemory, MemoryConfig
    from headroom.testing import HashEmbedder
    from headroom.ui.app import create_app

    empty = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=tmp_path / "empty.db", vector_dimension=64), embedder=HashEmbedder(64)
    )
    try:
        with TestClient(create_app(empty, token=ui.token), base_url="http://127.0.0.1") as c:
            assert "No memories stored yet" in ui.login(c).get("/").text
    finally:
        empty.sync.close()


def test_memories_current_only_by_default(client: TestClient) -> None:
    html = client.get("/memories?user=alice").text
    assert sorted(_rows(html)) == sorted([
        "User works at Anthropic", "User prefers Python for backend work",
        "Debugging the flaky CI job today", "Use ruff, not flake8, in this repo",
    ])  # fmt: skip
    assert "Bob likes Rust" not in html
    assert "4 memories" in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("scope=session", ["Debugging the flaky CI job today"]),
        ("scope=agent", ["Use ruff, not flake8, in this repo"]),
        ("category=preference", ["User prefers Python for backend work"]),
        ("agent=claude", ["Use ruff, not flake8, in this repo"]),
        ("session=morning&category=context", ["Debugging the flaky CI job today"]),
        ("text=PYTHON", ["User prefers Python for backend work"]),
        ("text=works&versions=all", ["User works at Anthropic", "User works at Google"]),
        ("text=works&as_of=2026-02-01", ["User works at Google"]),
        ("text=works&as_of=2026-06-01T10:00", ["User works at Anthropic"]),
        ("text=works&as_of=2025-12-31", []),
    ],
)
def test_memory_filters(client: TestClient, query: str, expected: list[str]) -> None:
    response = client.get(f"/memories?user=alice&{query}")
    assert response.status_code == 200
    assert sorted(_rows(response.text)) == sorted(expected)


def test_superseded_rows_are_marked(client: TestClient) -> None:
    html = client.get("/memories?user=alice&versions=all").text
    google_row = html[html.index("User works at Google") :].split("</tr>")[0]
    assert "superseded" in google_row


def test_htmx_requests_get_the_fragment_only(client: TestClient) -> None:
    response = client.get("/memories?user=alice&scope=agent", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "<html" not in response.text and _rows(response.text) == [
        "Use ruff, not flake8, in this repo"
    ]
    restore = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
    assert "<html" in client.get("/memories?user=alice", headers=restore).text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "user must be a non-empty string"),
        ("user=alice&scope=galaxy", "unknown scope level"),
        ("user=alice&category=gossip", "unknown memory category"),
        ("user=alice&versions=some", "versions must be"),
        ("user=alice&as_of=yesterday", "'as of' must be a date"),
        ("user=alice&page=0", "page must be within"),
    ],
)
def test_bad_filters_are_a_clear_400(client: TestClient, query: str, message: str) -> None:
    response = client.get(f"/memories?{query}")
    assert response.status_code == 400
    assert message in html_lib.unescape(response.text) and "ValidationError" in response.text


def test_memory_page_shows_provenance_metadata_and_the_version_timeline(
    client: TestClient, ui: Any
) -> None:
    s = ui.seeded
    html = client.get(f"/memory?user=alice&id={s.anthropic}").text
    assert '<h1 id="content">User works at Anthropic</h1>' in html
    assert "2 versions, oldest first" in html
    assert html.count('<rect class="bar') == 2
    assert 'rect class="bar current selected"' in html  # the viewed version is the current one
    # v1's bar and list entry link to v1's page; its validity ends where v2's starts
    assert f'href="/memory?user=alice&amp;id={s.google}"' in html
    assert "2026-01-05 09:00:00 → 2026-05-05 09:00:00" in html
    assert "2026-05-05 09:00:00 → now (current)" in html
    ticks = re.findall(r'<text class="tick"[^>]*>([^<]+)</text>', html)
    assert ticks == ["2026-01-05", "2026-05-05", "now"]
    agent = client.get(f"/memory?user=alice&id={s.agent_note}").text
    assert "session <code>morning</code>" in agent and "agent <code>claude</code>" in agent
    meta = client.get(f"/memory?user=alice&id={s.python}").text
    assert "source <code>inline</code>" in meta and "&#34;source&#34;: &#34;inline&#34;" in meta


def test_old_version_page(client: TestClient, ui: Any) -> None:
    html = client.get(f"/memory?user=alice&id={ui.seeded.google}").text
    assert "badge old" in html and 'rect class="bar selected"' in html
    assert 'action="/supersede"' not in html and 'action="/delete"' in html


def test_memory_page_unknown_and_foreign_ids(client: TestClient, ui: Any) -> None:
    missing = client.get("/memory?user=alice&id=no-such-id")
    assert missing.status_code == 404 and "no memory with id" in missing.text
    foreign = client.get(f"/memory?user=alice&id={ui.seeded.bob}")
    assert foreign.status_code == 403 and "belongs to another user" in foreign.text
    assert "Bob likes Rust" not in foreign.text
    assert client.get("/memory?user=alice").status_code == 400


def test_ids_with_any_characters_round_trip_through_links(client: TestClient, ui: Any) -> None:
    odd = ui.seeded.hm.sync.add("Slash & ampersand user", "team/a&b c", category="fact")
    users = client.get("/").text
    assert 'href="/memories?user=team%2Fa%26b+c"' in users
    page = client.get("/memories?user=team%2Fa%26b+c").text
    assert _rows(page) == ["Slash &amp; ampersand user"]
    assert client.get(f"/memory?user=team%2Fa%26b+c&id={odd.id}").status_code == 200


def _results(html: str) -> list[tuple[str, ...]]:
    rows = re.findall(r"<tr class=\"(injected|skipped)\">(.*?)</tr>", html, re.S)
    out = []
    for _cls, row in rows:
        content = re.search(r'class="memory-link"[^>]*>([^<]+)<', row).group(1)  # type: ignore[union-attr]
        nums = re.findall(r'<td class="num">([^<]*)</td>', row)
        why = re.search(r'<td class="why">([^<]*)</td>', row).group(1)  # type: ignore[union-attr]
        out.append((html_lib.unescape(content), *nums, html_lib.unescape(why)))
    return out


def test_search_explains_ranking_and_injection(client: TestClient, ui: Any) -> None:
    response = client.get("/search?user=alice&q=works+Anthropic&inject_top_k=5")
    assert response.status_code == 200
    rows = _results(response.text)
    top = rows[0]
    assert top[0] == "User works at Anthropic"
    rank, text_rank, vector_rank, similarity, score, why = top[1:]
    assert rank == "1" and text_rank == "1" and vector_rank == "1"
    k = MemoryConfig().rrf_k  # the default fusion constant
    assert 0 < float(similarity) <= 1
    assert float(score) == pytest.approx(1 / (k + 1) + 0.5 / (k + 1), abs=1e-4)
    assert why == "injected as [m1]"
    assert f"hybrid score = 1 / ({k} + text rank) + 0.5 / ({k} + vector rank)" in response.text
    # The superseded Google version is not searched; the session note is not visible to a
    # with_memory wrapper without session_id (it gets a private session).
    assert "User works at Google" not in [r[0] for r in rows]
    session_row = [r for r in rows if r[0] == "Debugging the flaky CI job today"]
    assert not session_row or "scope is not visible" in session_row[0][-1]


def test_search_injection_block_is_what_with_memory_injects(client: TestClient, ui: Any) -> None:
    html = client.get("/search?user=alice&session=morning&q=python+backend+ruff").text
    block = re.search(r'<pre class="context" id="context">(.*?)</pre>', html, re.S)
    assert block is not None
    inline = InlineMemory(ui.seeded.hm, user_id="alice", session_id="morning", instruction=None)
    prepared = inline.prepare([{"role": "user", "content": "python backend ruff"}])
    content = prepared.messages[-1]["content"]
    expected = content[: content.index("</headroom_context>") + len("</headroom_context>")]
    assert html_lib.unescape(block.group(1)) == expected


def test_search_token_budget_leaves_results_out(client: TestClient) -> None:
    html = client.get("/search?user=alice&q=user+works+python&budget=55").text
    reasons = [r[-1] for r in _results(html)]
    assert reasons[0] == "injected as [m1]"
    assert any("over the 55-token budget" in r for r in reasons)
    small = client.get("/search?user=alice&q=user+works+python&inject_top_k=1").text
    assert any("outside with_memory's top 1" in r[-1] for r in _results(small))
    nothing = client.get("/search?user=alice&q=user+works&budget=5").text
    assert "Nothing would be injected" in nothing


def test_search_modes_and_empty_query(client: TestClient) -> None:
    text = _results(client.get("/search?user=alice&q=Anthropic&mode=text").text)
    assert text[0][0] == "User works at Anthropic" and text[0][3] == "–"  # no vector rank
    semantic = _results(client.get("/search?user=alice&q=Anthropic&mode=semantic").text)
    assert semantic[0][2] == "–"  # no text rank
    assert "Type what the user says" in client.get("/search?user=alice").text
    fragment = client.get("/search?user=alice&q=Rust", headers={"HX-Request": "true"}).text
    assert "<html" not in fragment and "Bob likes Rust" not in fragment  # bob's, not alice's


@pytest.mark.parametrize(
    "query", ["mode=fuzzy", "top_k=0", "top_k=many", "budget=-1", "inject_top_k=1000"]
)
def test_search_bad_parameters(client: TestClient, query: str) -> None:
    response = client.get(f"/search?user=alice&q=work&{query}")
    assert response.status_code == 400 and "ValidationError" in response.text


def test_static_assets_are_served_from_the_package(client: TestClient) -> None:
    js = client.get("/static/htmx.min.js")
    assert js.status_code == 200 and "htmx" in js.text[:200]
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/static/../app.py").status_code == 404
    missing = client.get("/no-such-page")
    assert missing.status_code == 404 and "404" in missing.text
    assert client.post("/memories", data={}).status_code == 405


def test_export_confirmation_page(client: TestClient) -> None:
    html = client.get("/export?user=alice").text
    assert "download 5 versions" in html and 'action="/export"' in html


def test_users_page_says_when_its_scan_was_cut_short(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from headroom.ui import data

    assert 'id="partial"' not in client.get("/").text
    monkeypatch.setattr(data, "SCAN_LIMIT", 3)
    html = client.get("/").text
    assert 'id="partial"' in html and "first 3 stored versions" in html


@pytest.mark.real_embedder
def test_search_playground_with_the_real_embedder(real_hm: Any) -> None:
    """With MiniLM, a paraphrase with no shared keyword is found by the vector side alone."""
    from headroom.ui.app import create_app

    s = real_hm.sync
    s.add("User works at Anthropic", "alice", category="fact")
    s.add("User prefers Python for backend work", "alice", category="preference")
    s.add("User has a dog called Rex", "alice", category="fact")
    token = "real-embedder-token-0123456789"
    with TestClient(create_app(real_hm, token=token), base_url="http://127.0.0.1") as c:
        assert c.get(f"/?token={token}").status_code == 200  # redirected, cookie kept
        html = c.get("/search?user=alice&q=Which+company+employs+her%3F").text
    rows = _results(html)
    assert rows[0][0] == "User works at Anthropic"
    assert rows[0][2] == "–" and rows[0][3] == "1"  # no text rank, vector rank 1
    assert float(rows[0][4]) > float(rows[1][4])  # highest similarity
    assert rows[0][-1] == "injected as [m1]"
