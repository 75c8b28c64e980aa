"""A real browser on the inspector: Debian's chromium driven by Playwright (no browser download).

It opens the printed URL, filters a user's memories (htmx), searches, follows a version chain,
supersedes a fact through the confirmation page and saves screenshots under the test's tmp path
(the test prints where). Skipped, with the reason,
where /usr/bin/chromium or the playwright package is absent; .ci/run installs both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed at /usr/bin/chromium "
    "(`apt-get install -y chromium`; .ci/run installs it)",
)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (nox installs it for the tests)"
)

LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run"]  # fmt: skip


@pytest.fixture
def page(ui_server: Any) -> Any:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.problems = []  # type: ignore[attr-defined]
            page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
            page.on("pageerror", lambda e: page.problems.append(str(e)))
            yield page
        finally:
            browser.close()


def test_browse_search_and_follow_a_version_chain(
    page: Any, ui_server: Any, tmp_path: Path
) -> None:
    expect = sync_api.expect
    page.goto(ui_server.url)
    assert "token=" not in page.url  # the token moved into the cookie
    expect(page.locator("#users")).to_contain_text("alice")

    # A user's memories, filtered live by htmx (no full reload: the filter form stays put).
    page.click("a.user-link:text-is('alice')")
    expect(page.locator("#count")).to_contain_text("3 memories")
    page.select_option("select[name=scope]", "agent")
    expect(page.locator("#count")).to_contain_text("1 memory")
    expect(page.locator("#memory-rows")).to_contain_text("Use ruff, not flake8")
    assert "scope=agent" in page.url  # htmx pushed the filtered URL
    # Point in time: the "as of" picker shows what was valid then (the old job, nothing else yet).
    page.select_option("select[name=scope]", "")
    page.fill("input[name=as_of]", "2026-02-01T00:00:00")
    expect(page.locator("#count")).to_contain_text("1 memory valid at 2026-02-01 00:00:00")
    expect(page.locator("#memory-rows")).to_contain_text("User works at Google")
    page.screenshot(path=str(tmp_path / "ui-memories.png"), full_page=True)

    # The search playground: ranking evidence and what with_memory would inject.
    page.click("header nav a:text-is('search')")
    page.fill("#q", "works Anthropic")
    page.click("#search-button")
    first = page.locator("#results tbody tr").first
    expect(first).to_contain_text("User works at Anthropic")
    expect(first).to_contain_text("injected as [m1]")
    expect(page.locator("#context")).to_contain_text("<headroom_context>")
    assert "q=works%20Anthropic" in page.url  # htmx pushed the search URL
    page.screenshot(path=str(tmp_path / "ui-search.png"), full_page=True)

    # Follow the version chain: the current version, then v1 through the timeline list.
    first.locator("a.memory-link").click()
    expect(page.locator("#content")).to_have_text("User works at Anthropic")
    expect(page.locator("svg.timeline rect.bar")).to_have_count(2)
    page.click("a.version-link[data-version='1']")
    expect(page.locator("#content")).to_have_text("User works at Google")
    expect(page.locator("#memory")).to_contain_text("superseded")
    expect(page.locator("#chain li.selected")).to_contain_text("User works at Google")
    shot = tmp_path / "ui-version-chain.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000

    # An edit through the real browser: supersede the current version, review, confirm.
    page.click("a.version-link[data-version='2']")
    page.click("summary:has-text('Supersede')")
    page.fill("form[action='/supersede'] textarea", "User works at OpenAI")
    page.click("form[action='/supersede'] button")
    expect(page.locator("#confirm")).to_contain_text("User works at OpenAI")
    page.click("#confirm-button")
    expect(page.locator("#flash")).to_contain_text("Superseded")
    expect(page.locator("#content")).to_have_text("User works at OpenAI")
    expect(page.locator("svg.timeline rect.bar")).to_have_count(3)
    page.screenshot(path=str(tmp_path / "ui-after-edit.png"), full_page=True)
    print(f"screenshots: {tmp_path}")

    # The strict CSP blocked nothing the pages need (no inline script or style).
    assert page.problems == []  # type: ignore[attr-defined]
