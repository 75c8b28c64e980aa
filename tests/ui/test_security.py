"""The token guard: every route refuses a missing or wrong token (4xx) and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from headroom.ui.security import cookie_name_for, csrf_token_for

TOKEN = "test-token-0123456789abcdef"  # the conftest's token (ui.token)

GET_ROUTES = ["/", "/memories?user=alice", "/memory?user=alice&id={google}",
              "/search?user=alice&q=work", "/export?user=alice", "/static/htmx.min.js",
              "/static/app.css", "/no-such-page"]  # fmt: skip
POST_ROUTES = ["/update", "/supersede", "/delete", "/export"]


def _form(seeded: Any, **extra: str) -> dict[str, str]:
    return {"id": seeded.anthropic, "user_id": "alice", "content": "User works at OpenAI",
            "confirm": "yes", **extra}  # fmt: skip


@pytest.mark.parametrize("path", GET_ROUTES)
def test_pages_need_the_token(make_client: Any, seeded: Any, path: str) -> None:
    client: TestClient = make_client(authenticated=False)
    response = client.get(path.format(google=seeded.google))
    assert response.status_code == 403
    assert "Open the URL printed by `headroom ui`" in response.text
    assert seeded.google not in response.text


@pytest.mark.parametrize("path", POST_ROUTES)
def test_edits_need_the_token_and_change_nothing(
    ui: Any, make_client: Any, seeded: Any, path: str
) -> None:
    client: TestClient = make_client(authenticated=False)
    before = ui.snapshot()
    # Even with the right CSRF value: without the cookie the request is refused.
    response = client.post(path, data=_form(seeded, csrf=csrf_token_for(TOKEN)))
    assert response.status_code == 403
    assert ui.snapshot() == before


def test_wrong_token_in_url_or_cookie(make_client: Any, seeded: Any) -> None:
    client: TestClient = make_client(authenticated=False)
    response = client.get("/?token=not-the-token", follow_redirects=False)
    assert response.status_code == 403 and "wrong token" in response.text
    assert "set-cookie" not in response.headers
    client.cookies.set(cookie_name_for(TOKEN), "forged-" + TOKEN)
    assert client.get("/").status_code == 403


def test_token_url_sets_cookie_and_drops_the_token(make_client: Any) -> None:
    client: TestClient = make_client(authenticated=False)
    response = client.get(f"/memories?user=alice&token={TOKEN}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/memories?user=alice"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(cookie_name_for(TOKEN) + "=")
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    client.cookies.update(response.cookies)
    page = client.get("/memories?user=alice")
    assert page.status_code == 200 and "User works at Anthropic" in page.text


def test_security_headers(client: TestClient) -> None:
    response = client.get("/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"


def test_other_host_names_are_refused(client: TestClient) -> None:
    # DNS rebinding: a page on evil.example resolved to 127.0.0.1 sends Host: evil.example.
    response = client.get("/", headers={"host": "evil.example"})
    assert response.status_code == 400


def test_cross_origin_post_is_refused(ui: Any, client: TestClient, seeded: Any) -> None:
    before = ui.snapshot()
    csrf = ui.csrf_of(client.get(f"/memory?user=alice&id={seeded.anthropic}").text)
    response = client.post(
        "/update", data=_form(seeded, csrf=csrf), headers={"origin": "http://evil.example"}
    )
    assert response.status_code == 403 and "cross-site" in response.text
    assert ui.snapshot() == before


@pytest.mark.parametrize("csrf", [None, "", "0" * 64])
def test_posts_need_the_csrf_field(
    ui: Any, client: TestClient, seeded: Any, csrf: str | None
) -> None:
    before = ui.snapshot()
    data = _form(seeded) if csrf is None else _form(seeded, csrf=csrf)
    response = client.post("/update", data=data)
    assert response.status_code == 403 and "CSRF" in response.text
    assert ui.snapshot() == before


def test_token_in_a_post_url_is_refused(ui: Any, make_client: Any, seeded: Any) -> None:
    client: TestClient = make_client(authenticated=False)
    before = ui.snapshot()
    response = client.post(f"/delete?token={TOKEN}", data=_form(seeded, csrf=csrf_token_for(TOKEN)))
    assert response.status_code == 403
    assert ui.snapshot() == before


def test_short_tokens_are_rejected(ui: Any, seeded: Any) -> None:
    from headroom.memory.errors import ValidationError
    from headroom.ui.app import create_app

    with pytest.raises(ValidationError):
        create_app(seeded.hm, token="short")
