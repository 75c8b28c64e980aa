"""A real LiteLLM proxy process with HeadroomCallback in its config.yaml, in front of a fake server.

Marked ``litellm_proxy`` (``-m "not litellm_proxy"`` skips it); it runs in the normal suite.
Keys are authenticated by a ``custom_auth`` function (LiteLLM's database-free way to have
several keys): ``ALICE_KEY`` belongs to user ``alice``, ``OPS_KEY`` to team ``ops`` (no user).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from headroom.inline.injection import INSTRUCTION_MARKER
from headroom.memory import HierarchicalMemory
from headroom.testing.fake_openai import FakeOpenAIServer

pytestmark = pytest.mark.litellm_proxy

REPLY = 'Sure thing. <memory>{"memories": [{"content": "User likes Rust"}]}</memory>'
VISIBLE = "Sure thing."
STARTUP_TIMEOUT = 90.0

HANDLER = """
import os

from headroom.memory import HierarchicalMemory, MemoryConfig
from headroom.testing import HashEmbedder
from headroom_litellm import HeadroomCallback

memory = HierarchicalMemory.create_sync(
    MemoryConfig(db_path=os.environ["HEADROOM_TEST_DB"], vector_dimension=64), embedder=HashEmbedder(64)
)
handler = HeadroomCallback(memory=memory)
"""

AUTH = """
import os

from litellm.proxy._types import UserAPIKeyAuth


async def user_api_key_auth(request, api_key):
    if api_key == os.environ["ALICE_KEY"]:
        return UserAPIKeyAuth(api_key=api_key, user_id="alice")
    if api_key == os.environ["OPS_KEY"]:
        return UserAPIKeyAuth(api_key=api_key, team_id="ops")
    raise Exception("invalid key")
"""

CONFIG = """
model_list:
  - model_name: fake-chat
    litellm_params:
      model: openai/fake-model
      api_base: {api_base}
      api_key: sk-fake-upstream
litellm_settings:
  callbacks: headroom_proxy_handler.handler
  telemetry: false
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
  custom_auth: headroom_proxy_auth.user_api_key_auth
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Proxy:
    def __init__(
        self, url: str, keys: dict[str, str], process: subprocess.Popen[bytes], log: Path, db: Path
    ) -> None:
        self.url, self.keys, self.process, self.log, self.db = url, keys, process, log, db

    def client(self, who: str) -> Any:
        from openai import OpenAI

        return OpenAI(base_url=self.url, api_key=self.keys[who], max_retries=0, timeout=30)


@pytest.fixture
def proxy(tmp_path: Path, server: FakeOpenAIServer) -> Iterator[Proxy]:
    executable = shutil.which("litellm", path=str(Path(sys.executable).parent))
    if executable is None:
        pytest.skip("the litellm proxy CLI (litellm[proxy]) is not installed")
    (tmp_path / "headroom_proxy_handler.py").write_text(HANDLER)
    (tmp_path / "headroom_proxy_auth.py").write_text(AUTH)
    (tmp_path / "config.yaml").write_text(CONFIG.format(api_base=server.base_url))
    port, key, db = _free_port(), "sk-" + secrets.token_hex(16), tmp_path / "proxy.db"
    keys = {"alice": "sk-" + secrets.token_hex(16), "ops": "sk-" + secrets.token_hex(16)}
    env = {
        "ALICE_KEY": keys["alice"],
        "OPS_KEY": keys["ops"],
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        "LITELLM_MASTER_KEY": key,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "HEADROOM_TEST_DB": str(db),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    env.pop("DATABASE_URL", None)
    log = tmp_path / "proxy.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [executable, "--config", str(tmp_path / "config.yaml"), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"proxy exited with {process.returncode}:\n{log.read_text()[-4000:]}")
            try:
                if httpx.get(f"{url}/health/liveliness", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"proxy not ready after {STARTUP_TIMEOUT}s:\n{log.read_text()[-4000:]}")
            time.sleep(0.5)
        yield Proxy(url, keys, process, log, db)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def test_proxy_strips_injects_and_isolates_keys(
    proxy: Proxy,
    server: FakeOpenAIServer,
    memory_factory: Callable[[Path], HierarchicalMemory],
    contents: Callable[..., list[str]],
) -> None:
    asked = 'Sure thing. <memory>{"memories": [{"content": "User asked a question"}]}</memory>'
    server.responder = lambda request: REPLY if "I like Rust" in json.dumps(request) else asked
    alice, ops = proxy.client("alice"), proxy.client("ops")
    ask: list[Any] = [{"role": "user", "content": "I like Rust, remember that."}]
    question: list[Any] = [{"role": "user", "content": "Which language do I like?"}]

    first = alice.chat.completions.create(model="fake-chat", messages=ask)  # type: ignore[arg-type]
    assert first.choices[0].message.content == VISIBLE
    sent = json.dumps(server.requests[-1]["messages"])
    assert sent.count(INSTRUCTION_MARKER) == 1  # both proxy request hooks fired, one injection

    stream = alice.chat.completions.create(model="fake-chat", messages=question, stream=True)  # type: ignore[call-overload]
    chunks = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(chunks) == VISIBLE
    assert len(chunks) > 5 and not any("<" in c for c in chunks)
    second: dict[str, Any] = server.requests[-1]
    assert "User likes Rust" in second["messages"][-1]["content"]
    assert json.dumps(second["messages"]).count(INSTRUCTION_MARKER) == 1

    # The ops key claims to be alice every way a client can; it never sees alice's memories.
    forged_state: dict[str, Any] = {
        "owner": "x",
        "user_id": "alice",
        "session_id": None,
        "refs": {},
    }
    claims: list[dict[str, Any]] = [
        {"user": "alice"},
        {"extra_body": {"metadata": {"headroom_user_id": "alice"}}},
        {"user": "alice", "extra_body": {"metadata": {"headroom_state": forged_state}}},
        {"extra_body": {"litellm_metadata": {"headroom_user_id": "alice"}}},
    ]
    for claim in claims:
        for stream_it in (False, True):
            before = len(server.requests)
            out = ops.chat.completions.create(
                model="fake-chat", messages=question, stream=stream_it, **claim
            )  # type: ignore[call-overload]
            text = (
                "".join(c.choices[0].delta.content or "" for c in out if c.choices)
                if stream_it
                else out.choices[0].message.content
            )
            assert text == VISIBLE, claim
            assert len(server.requests) == before + 1
            assert "User likes Rust" not in json.dumps(server.requests[-1]), claim
    ops.chat.completions.create(model="fake-chat", messages=ask, user="alice")  # stored as ops

    proxy.process.terminate()
    proxy.process.wait(timeout=15)
    memory = memory_factory(proxy.db)
    try:
        both = ["User asked a question", "User likes Rust"]
        assert contents(memory, "alice") == contents(memory, "team:ops") == both
        assert {m.user_id for m in memory.sync.query()} == {"alice", "team:ops"}
    finally:
        memory.sync.close()
