"""The LiteLLM proxy with Headroom memory: config.yaml + a handler module, any OpenAI client.

Writes ``headroom_proxy_handler.py`` and ``config.yaml`` to the working directory, starts
``litellm --config config.yaml`` on 127.0.0.1 (the proxy needs ``LITELLM_MASTER_KEY``) and talks
to it with the OpenAI SDK. The memory user is the authenticated key's (for the master key, the
proxy admin): clients cannot choose it with ``user=`` or metadata.
Run: python examples/litellm_proxy.py   (offline unless OPENAI_API_KEY is set; about 15 s)
"""

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from _offline import offline, openai_endpoint

HANDLER = """\
# headroom_proxy_handler.py (on the proxy's PYTHONPATH)
from headroom_litellm import HeadroomCallback

handler = HeadroomCallback(db_path="memory.db")
"""

CONFIG = """\
# config.yaml
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_key: os.environ/OPENAI_API_KEY
litellm_settings:
  callbacks: headroom_proxy_handler.handler
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
"""


def start_proxy(master_key: str) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    here = Path.cwd()
    (here / "headroom_proxy_handler.py").write_text(HANDLER)
    (here / "config.yaml").write_text(CONFIG)
    executable = shutil.which("litellm", path=str(Path(sys.executable).parent)) or "litellm"
    env = {
        **os.environ,
        "LITELLM_MASTER_KEY": master_key,  # the proxy refuses to start without one
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "PYTHONPATH": os.pathsep.join([str(here), os.environ.get("PYTHONPATH", "")]),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    log = (here / "proxy.log").open("wb")
    process = subprocess.Popen(
        [executable, "--config", "config.yaml", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process, f"http://127.0.0.1:{port}"


def wait_ready(process: subprocess.Popen[bytes], url: str) -> None:
    import httpx

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the proxy exited: see {Path.cwd() / 'proxy.log'}")
        try:
            if httpx.get(f"{url}/health/liveliness", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("the proxy did not start in 90 s")


def main() -> None:
    from openai import OpenAI

    master_key = "sk-" + secrets.token_hex(16)
    process, url = start_proxy(master_key)
    try:
        wait_ready(process, url)
        client = OpenAI(base_url=url, api_key=master_key)
        first = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "I work at Anthropic."}],
        )
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Where do I work?"}],
            stream=True,
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        answer = first.choices[0].message.content or ""
        print(answer)
        print(streamed)
        assert "<memory" not in answer + streamed
        if offline():
            assert "Anthropic" in streamed  # recalled for the same key
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    with openai_endpoint():
        main()
