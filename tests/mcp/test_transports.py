"""``headroom mcp`` as a real process: stdio driven by the SDK's stdio client, and streamable HTTP on
127.0.0.1 with and without a valid bearer token."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import Implementation

from headroom.cli import main
from headroom.cli.mcp import SETUP
from headroom.mcp import McpOptions, TokenFile, build_server
from headroom.memory import ConfigurationError


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=os.pathsep.join(sys.path))
    return env


def _stdio(db: Path, agent: str, *extra: str, mode: str = "auto") -> Client:
    params = StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "headroom.cli",
            "mcp",
            "--db",
            str(db),
            "--embedder",
            "hash",
            "--user",
            "team",
            *extra,
        ],
        env=_env(),
    )
    return Client(params, client_info=Implementation(name=agent, version="1.0"), mode=mode)


async def test_stdio_subprocesses_share_one_memory(
    tmp_path: Path, ok: Any, error_text: Any
) -> None:
    db = tmp_path / "agents" / "memory.db"  # the parent directory is created
    # Today's agents speak the initialize handshake ("legacy"); newer clients negotiate ("auto").
    async with _stdio(db, "claude", mode="legacy") as claude:
        assert {t.name for t in (await claude.list_tools()).tools} >= {"remember", "recall"}
        stored = ok(await claude.call_tool("remember", {"content": "Project uses uv, not pip"}))
        assert "no memory with id" in error_text(await claude.call_tool("forget", {"id": "x"}))
        assert "must not be empty" in error_text(
            await claude.call_tool("remember", {"content": ""})
        )
        assert ok(await claude.call_tool("list_memories", {}))["total"] == 1  # still serving
        page = await claude.read_resource("headroom://memories")
        assert "Project uses uv, not pip" in page.contents[0].text  # type: ignore[union-attr]
    async with _stdio(db, "codex") as codex:  # another process, another session
        hits = ok(await codex.call_tool("recall", {"query": "uv or pip"}))
        top = hits["results"][0]["memory"]
        assert top["id"] == stored["memory"]["id"] and top["agent"] == "claude"
        assert top["session"] == stored["memory"]["session"]
        merged = ok(await codex.call_tool("remember", {"content": "project uses uv, not pip!"}))
        assert merged["action"] == "merged" and merged["memory"]["agents"] == ["claude", "codex"]


async def test_agent_option_overrides_the_client_name(tmp_path: Path, ok: Any) -> None:
    server = build_server(McpOptions(db=str(tmp_path / "m.db"), embedder="hash", agent="gemini"))
    async with Client(server, client_info=Implementation(name="some-client", version="1")) as c:
        out = ok(await c.call_tool("remember", {"content": "Docs live in docs/"}))
    assert out["memory"]["agent"] == "gemini"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    tmp_path = tmp_path_factory.mktemp("http")
    tokens = {"alice": secrets.token_urlsafe(32), "bob": secrets.token_urlsafe(32)}
    config = tmp_path / "tokens.toml"
    config.write_text(
        "[tokens]\n" + "".join(f'"{tok}" = "{user}"\n' for user, tok in tokens.items())
    )
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "headroom.cli",
            "mcp",
            "--http",
            "--port",
            str(port),
            "--db",
            str(tmp_path / "http.db"),
            "--embedder",
            "hash",
            "--tokens",
            str(config),
        ],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise AssertionError(f"server did not start: {err}") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp", tokens
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def _http(url: str, agent: str, token: str | None, mode: str = "auto") -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    http = httpx2.AsyncClient(headers=headers, timeout=30)
    transport = streamable_http_client(url, http_client=http)
    return Client(transport, client_info=Implementation(name=agent, version="1.0"), mode=mode)


async def test_http_maps_bearer_tokens_to_users(
    http_server: tuple[str, dict[str, str]], ok: Any, error_text: Any
) -> None:
    url, tokens = http_server
    async with _http(url, "claude", tokens["alice"], mode="legacy") as alice:
        stored = ok(await alice.call_tool("remember", {"content": "Alice ships on Mondays"}))
        assert stored["memory"]["agent"] == "claude"
        hits = ok(await alice.call_tool("recall", {"query": "when does alice ship"}))
        assert hits["results"][0]["memory"]["id"] == stored["memory"]["id"]
        assert "content must not be empty" in error_text(
            await alice.call_tool("remember", {"content": "   "})
        )
    async with _http(url, "codex", tokens["bob"]) as bob:
        assert (
            ok(await bob.call_tool("recall", {"query": "Alice ships on Mondays"}))["results"] == []
        )
        assert "no memory with id" in error_text(
            await bob.call_tool("history", {"id": stored["memory"]["id"]})
        )
        assert ok(await bob.call_tool("list_memories", {}))["total"] == 0
        page = await bob.read_resource("headroom://memories")
        assert "Mondays" not in page.contents[0].text  # type: ignore[union-attr]
    async with _http(url, "codex", tokens["alice"]) as alice_again:  # same user, other agent
        hits = ok(await alice_again.call_tool("recall", {"query": "when does alice ship"}))
        assert hits["results"][0]["memory"]["agent"] == "claude"
        page = await alice_again.read_resource("headroom://memories")
        assert "Alice ships on Mondays" in page.contents[0].text  # type: ignore[union-attr]


@pytest.mark.parametrize("token", [None, "wrong-token-" + "x" * 30])
async def test_http_refuses_missing_or_unknown_tokens(
    http_server: tuple[str, dict[str, str]], token: str | None
) -> None:
    url, tokens = http_server
    with pytest.raises(BaseException) as info:  # the SDK wraps the HTTP 401
        async with _http(url, "intruder", token) as client:
            await client.call_tool("list_memories", {})
    assert "MCPError" in repr(info.value)
    # What the client got was the bearer middleware's 401; a valid token gets past it.
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    accept = {"Accept": "application/json, text/event-stream"}
    bearer = {"Authorization": f"Bearer {token}"} if token else {}
    refused = httpx2.post(url, json=body, headers={**accept, **bearer})
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    valid = httpx2.post(
        url, json=body, headers={**accept, "Authorization": f"Bearer {tokens['bob']}"}
    )
    assert valid.status_code != 401


def test_tokens_file_is_validated(tmp_path: Path) -> None:
    bad = tmp_path / "t.toml"
    bad.write_text('[tokens]\n"short" = "alice"\n')
    with pytest.raises(ConfigurationError, match="at least 24"):
        TokenFile.load(bad)
    bad.write_text("tokens = 3\n")
    with pytest.raises(ConfigurationError, match=r"\[tokens\] table"):
        TokenFile.load(bad)
    with pytest.raises(ConfigurationError, match="does not exist"):
        TokenFile.load(tmp_path / "missing.toml")
    good = TokenFile({"a" * 32: "alice"})
    assert good.user_for("a" * 32) == "alice" and good.user_for("a" * 31) is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tokens", "t.toml"], "--tokens is for --http"),
        (["--http", "--host", "0.0.0.0"], "needs --tokens"),
        (["--user", ""], "--user"),
        (["--dedup-threshold", "0"], "--dedup-threshold"),
    ],
)
def test_cli_refuses_unsafe_or_bad_options(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.toml").write_text(f'[tokens]\n"{"k" * 32}" = "alice"\n')
    assert main(["mcp", "--db", "m.db", "--embedder", "hash", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "m.db").exists()  # refused before opening anything


def test_help_prints_the_setup_snippets_and_readme_has_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["mcp", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for snippet in [
        "claude mcp add",
        "[mcp_servers.headroom]",
        '"mcpServers"',
        "bearer_token_env_var",
    ]:
        assert snippet in out
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert SETUP.strip() in readme, "README's MCP section must contain headroom.cli.mcp.SETUP"
    example = (Path(__file__).resolve().parents[2] / "examples" / "mcp_cross_agent.py").read_text()
    body = "def agent" + example.split("\n\n\ndef agent", 1)[1].split("\n\n\nif __name__")[0]
    assert body in readme, "README's cross-agent example must be a copy of the example script"
