"""A real LiteLLM proxy process with HeadroomCallback in its config.yaml, in front of a fake server.

Marked ``litellm_proxy`` (``-m "not litellm_proxy"`` skips it); it runs in the normal suite.
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
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Proxy:
    def __init__(
        self, url: str, key: str, process: subprocess.Popen[bytes], log: Path, db: Path
    ) -> None:
        self.url, self.key, self.process, self.log, self.db = url, key, process, log, db


@pytest.fixture
def proxy(tmp_path: Path, server: FakeOpenAIServer) -> Iterator[Proxy]:
    executable = shutil.which("litellm", path=str(Path(sys.executable).parent))
    if executable is None:
        pytest.skip("the litellm proxy CLI (litellm[proxy]) is not installed")
    (tmp_path / "headroom_proxy_handler.py").write_text(HANDLER)
    (tmp_path / "config.yaml").write_text(CONFIG.format(api_base=server.base_url))
    port, key, db = _free_port(), "sk-" + secrets.token_hex(16), tmp_path / "proxy.db"
    env = {
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
        yield Proxy(url, key, process, log, db)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def test_proxy_strips_and_injects(
    proxy: Proxy,
    server: FakeOpenAIServer,
    memory_factory: Callable[[Path], HierarchicalMemory],
    contents: Callable[..., list[str]],
) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=proxy.url, api_key=proxy.key, max_retries=0, timeout=30)
    ask: list[Any] = [{"role": "user", "content": "I like Rust, remember that."}]
    question: list[Any] = [{"role": "user", "content": "Which language do I like?"}]

    first = client.chat.completions.create(model="fake-chat", messages=ask, user="alice")  # type: ignore[arg-type]
    assert first.choices[0].message.content == VISIBLE
    sent = json.dumps(server.requests[-1]["messages"])
    assert sent.count(INSTRUCTION_MARKER) == 1  # both proxy request hooks fired, one injection

    stream = client.chat.completions.create(
        model="fake-chat",
        messages=question,
        stream=True,
        extra_body={"metadata": {"headroom_user_id": "alice"}},
    )  # type: ignore[call-overload]
    chunks = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(chunks) == VISIBLE
    assert len(chunks) > 5 and not any("<" in c for c in chunks)
    second: dict[str, Any] = server.requests[-1]
    assert "User likes Rust" in second["messages"][-1]["content"]
    assert json.dumps(second["messages"]).count(INSTRUCTION_MARKER) == 1

    anonymous = client.chat.completions.create(model="fake-chat", messages=ask)  # type: ignore[arg-type]
    assert anonymous.choices[0].message.content == REPLY  # no user: untouched
    assert INSTRUCTION_MARKER not in json.dumps(server.requests[-1]["messages"])

    proxy.process.terminate()
    proxy.process.wait(timeout=15)
    memory = memory_factory(proxy.db)
    try:
        assert contents(memory, "alice") == ["User likes Rust"]
        assert contents(memory) == ["User likes Rust"]
    finally:
        memory.sync.close()
