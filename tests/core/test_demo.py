"""``headroom demo`` end to end in subprocesses, and the local-model smoke test (opt-in)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


def run_demo(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "headroom.cli", "demo", *args],
        capture_output=True, text=True, env=_env(), timeout=timeout, check=False,
    )  # fmt: skip


def check_demo_output(out: str) -> None:
    assert "SCRIPTED assistant" in out  # says clearly that the replies are not from a real model
    session1, rest = out.split("2. A new process", 1)
    assert "User lives in Berlin" in session1.split("Memories extracted", 1)[1]
    pids = re.findall(r"process \(?(\d+)\)?", out)
    assert len(set(pids)) == 2  # the recall ran in another process
    recall, change = rest.split("3. A fact changes", 1)
    injected = recall.split("Memories with_memory injected", 1)[1]
    assert "User prefers Python" in injected and "PostgreSQL" in injected
    assert "Based on what I remember" in recall  # the reply used the recalled facts
    history = change.split("History of", 1)[1]
    assert re.search(r"v1  User lives in Berlin\n    valid \S+ -> \S+", history)
    assert re.search(r"v2  User lives in Lisbon\n    valid since \S+ \(current\)", history)
    assert "<memory>{" not in out and "</memory>" not in out and "Traceback" not in out


def test_demo_with_hash_embedder_runs_twice_on_a_kept_db(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    for _ in range(2):
        result = run_demo("--embedder", "hash", "--db", str(db))
        assert result.returncode == 0, result.stderr
        check_demo_output(result.stdout)
    assert "left by an earlier run" in result.stdout
    assert db.exists()


def test_demo_removes_its_temporary_database() -> None:
    result = run_demo("--embedder", "hash")
    assert result.returncode == 0, result.stderr
    db = re.search(r"Database: (\S+)", result.stdout)
    assert db is not None and not Path(db.group(1)).exists()


def test_demo_reports_an_unreachable_model_without_traceback() -> None:
    result = run_demo("--embedder", "hash", "--base-url", "http://127.0.0.1:9/v1", timeout=120)
    assert result.returncode != 0
    assert "headroom: error:" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.real_embedder
def test_demo_offline_with_the_default_onnx_embedder() -> None:
    result = run_demo()
    assert result.returncode == 0, result.stderr
    check_demo_output(result.stdout)
    assert "local ONNX all-MiniLM-L6-v2 embedder" in result.stdout


@pytest.mark.real_embedder
def test_demo_offline_with_the_sentence_transformers_embedder() -> None:
    result = run_demo("--embedder", "local")
    assert result.returncode == 0, result.stderr
    check_demo_output(result.stdout)
    assert "local all-MiniLM-L6-v2 embedder" in result.stdout


# -- a real small model (xllamacpp + Qwen2.5-Coder-1.5B); opt-in --------------------------------


@pytest.mark.slow
@pytest.mark.local_llm
@pytest.mark.skipif(
    os.environ.get("HEADROOM_RUN_LOCAL_LLM") != "1", reason="set HEADROOM_RUN_LOCAL_LLM=1"
)
def test_local_model_smoke(tmp_path: Path) -> None:
    httpx = pytest.importorskip("httpx")
    openai = pytest.importorskip("openai")
    pytest.importorskip("xllamacpp")
    from headroom.cli.local_llm import MEMORY_GRAMMAR, LocalModelServer, ensure_local_model
    from headroom.memory import HierarchicalMemory, MemoryConfig
    from headroom.openai.wrapper import with_memory
    from headroom.testing import HashEmbedder
    from headroom.testing.scripted import parse_injected_memories

    sent: list[dict[str, Any]] = []

    def capture(request: Any) -> None:
        sent.append(json.loads(request.content or b"{}"))

    extra = {"extra_body": {"grammar": MEMORY_GRAMMAR}, "max_tokens": 400}
    hm = HierarchicalMemory.create_sync(
        MemoryConfig(db_path=tmp_path / "m.db", vector_dimension=64), embedder=HashEmbedder(64)
    )
    try:
        with (
            LocalModelServer(ensure_local_model()) as server,
            httpx.Client(event_hooks={"request": [capture]}, timeout=300) as http,
        ):
            raw = openai.OpenAI(
                base_url=server.base_url, api_key="local", http_client=http, max_retries=0
            )
            first = with_memory(raw, "alice", session_id="one", memory=hm)
            reply = first.chat.completions.create(
                model="local",
                messages=[
                    {
                        "role": "user",
                        "content": "My name is Alice. I live in Berlin and I always write Python.",
                    }
                ],
                **extra,
            )
            visible = reply.choices[0].message.content or ""
            assert visible.strip() and "<memory" not in visible and "</memory>" not in visible
            stored = [m.content.lower() for m in hm.sync.query()]
            assert stored, "the model's block stored nothing"

            second = with_memory(raw, "alice", session_id="two", memory=hm)
            second.chat.completions.create(
                model="local",
                messages=[
                    {"role": "user", "content": "Where do I live and which language do I use?"}
                ],
                **extra,
            )
            last_user = [m for m in sent[-1]["messages"] if m["role"] == "user"][-1]["content"]
            injected = " ".join(m.content.lower() for m in parse_injected_memories(last_user))
            assert any(word in injected for word in ("berlin", "python", "alice"))
    finally:
        hm.sync.close()
