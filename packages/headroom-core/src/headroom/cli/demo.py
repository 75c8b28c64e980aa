"""``headroom demo``: memory extracted in one session, recalled in a new process, then superseded.

Runs offline with no API key: the embedded default (SQLite + FAISS + the packaged local
embedder) and the real ``openai`` SDK talking to a model through :func:`with_memory`. The model is,
in order of preference: ``--local-model`` (a real small model through xllamacpp), ``--base-url`` /
``OPENAI_API_KEY`` (a real provider), else a scripted assistant served on 127.0.0.1 (and the
output says so). Phase 2 runs in a second process (``--phase recall``) to show that memories
survive the process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headroom.cli.errors import CliError
from headroom.cli.memory import format_history, open_memory

if TYPE_CHECKING:
    from headroom.memory.core import HierarchicalMemory

__all__ = ["run"]

SESSION_1 = (
    "Hi! My name is Alice. I prefer Python with type hints for backend services.",
    "I live in Berlin. I use PostgreSQL for every project.",
)
QUESTION = "Which language and database should I pick for my new web service?"
CHANGE = "I don't live in Berlin anymore. I just moved to Lisbon."

LOCAL_MODEL_NOTE = (
    "Note: a 1.5B model on CPU is a weak extractor. Measured with this grammar: 22/22 replies "
    "carried a parseable memory block and 18/20 caught the user's main fact, but about half of the "
    "stored items were noise, at roughly 3-8 s per reply on an idle machine (without the grammar "
    "only 16/22 replies carried a block). Use a hosted model for real work."
)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if args.phase == "recall":
        return _recall_phase(args)
    return _main_phase(args)


# -- output ---------------------------------------------------------------------------------------


def _section(title: str) -> None:
    print(f"\n{title}\n{'-' * len(title)}", flush=True)


def _say(role: str, text: str) -> None:
    lines = text.strip().splitlines() or [""]
    print(f"{role:>9} > {lines[0]}")
    for line in lines[1:]:
        print(f"{'':>9}   {line}")
    sys.stdout.flush()


def _print_memories(memories: list[Any], empty: str) -> None:
    if not memories:
        print(f"  ({empty})")
    for m in memories:
        print(f"  - [{m.category.value}, {m.scope_level.value}] {m.content}")
    sys.stdout.flush()


# -- model backends -------------------------------------------------------------------------------


@contextmanager
def _model_endpoint(args: argparse.Namespace) -> Iterator[tuple[str | None, str, str]]:
    """(base_url, api_key, description) of the model the demo talks to."""
    api_key = os.environ.get("OPENAI_API_KEY")
    if args.local_model:
        from headroom.cli.local_llm import LocalModelServer, ensure_local_model

        print("Preparing the local model (first run downloads ~1.1 GB from PyPI)...", flush=True)
        path = ensure_local_model(progress=lambda msg: print(f"  {msg}", flush=True))
        with LocalModelServer(path) as server:
            yield (
                server.base_url,
                "local",
                (
                    f"Qwen2.5-Coder-1.5B-Instruct Q4_K_M via xllamacpp on {server.base_url} (1 thread, "
                    "GBNF grammar)"
                ),
            )
        return
    if args.base_url or api_key:
        where = args.base_url or "the OpenAI API"
        yield args.base_url, api_key or "not-needed", f"{args.model} at {where}"
        return
    from headroom.testing.fake_openai import FakeOpenAIServer
    from headroom.testing.scripted import ScriptedAssistant

    with FakeOpenAIServer(ScriptedAssistant(), model="scripted-assistant") as server:
        yield (
            server.base_url,
            "headroom-demo",
            (
                f"SCRIPTED assistant on {server.base_url}: no OPENAI_API_KEY or --base-url was given, so the "
                "replies come from a deterministic script that follows Headroom's memory protocol, "
                "not from a real model (set OPENAI_API_KEY, pass --base-url, or try --local-model)"
            ),
        )


class _Chat:
    """with_memory(OpenAI(...)) plus a record of what each request injected."""

    def __init__(self, hm: HierarchicalMemory, args: argparse.Namespace, base_url: str | None,
                 api_key: str, session: str) -> None:  # fmt: skip
        try:
            import httpx
            from openai import OpenAI
        except ImportError as exc:
            from headroom.memory.errors import MissingDependencyError

            raise MissingDependencyError("openai", "openai") from exc
        from headroom.openai.wrapper import with_memory

        self.injected: list[str] = []
        self._http = httpx.Client(event_hooks={"request": [self._capture]}, timeout=120.0)
        raw = OpenAI(base_url=base_url, api_key=api_key, http_client=self._http, max_retries=0)
        self.client: Any = with_memory(raw, args.user, session_id=session, memory=hm)
        self.model = args.model
        self.extra: dict[str, Any] = {}
        if args.grammar:
            from headroom.cli.local_llm import MEMORY_GRAMMAR

            self.extra = {"extra_body": {"grammar": MEMORY_GRAMMAR}, "max_tokens": 400}

    def _capture(self, request: Any) -> None:
        from headroom.testing.scripted import parse_injected_memories

        try:
            body = json.loads(request.content or b"{}")
            user = [m for m in body.get("messages", []) if m.get("role") == "user"][-1]
            content = user.get("content")
            text = content if isinstance(content, str) else json.dumps(content)
            self.injected = [m.content for m in parse_injected_memories(text)]
        except (ValueError, IndexError, AttributeError, TypeError):
            self.injected = []

    def ask(self, text: str) -> str:
        _say("user", text)
        from openai import OpenAIError

        started = time.perf_counter()
        try:
            response = self.client.chat.completions.create(
                model=self.model, messages=[{"role": "user", "content": text}], **self.extra
            )
        except OpenAIError as exc:
            raise CliError(f"the model request failed ({type(exc).__name__}): {exc}") from exc
        reply = response.choices[0].message.content or ""
        _say("assistant", reply)
        print(f"{'':>12}({time.perf_counter() - started:.1f} s)", flush=True)
        return reply

    def close(self) -> None:
        self._http.close()


# -- phases ---------------------------------------------------------------------------------------


def _main_phase(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    with ExitStack() as stack:
        if args.db:
            db = Path(args.db)
        else:
            tmp = tempfile.mkdtemp(prefix="headroom-demo-")
            db = Path(tmp) / "demo.db"
            if not args.keep:
                stack.callback(shutil.rmtree, tmp, True)
        base_url, api_key, description = stack.enter_context(_model_endpoint(args))
        print("Headroom demo: with_memory(OpenAI()) remembers across sessions and processes")
        print(f"Model:    {description}")
        print(f"Database: {db} (SQLite + FAISS, {_embedder_label(args.embedder)})")
        if args.local_model:
            print(LOCAL_MODEL_NOTE)
        args.grammar = args.local_model

        hm = open_memory(db, args.embedder, create=True)
        try:
            removed = hm.sync.clear_scope(args.user)
            if removed:
                print(f"(removed {removed} memories of {args.user!r} left by an earlier run)")
            _section(f"1. Session 'monday' (process {os.getpid()}): the user states some facts")
            print("(the first reply includes loading the embedder)", flush=True)
            chat = _Chat(hm, args, base_url, api_key, session="monday")
            try:
                for text in SESSION_1:
                    chat.ask(text)
            finally:
                chat.close()
            print(
                "\nMemories extracted from the replies' <memory> blocks (the user never saw them):"
            )
            _print_memories(
                hm.sync.query(_user_filter(args.user)), "none: the model extracted nothing"
            )
        finally:
            hm.sync.close()

        code = _spawn_recall(args, db, base_url, api_key)
        if code != 0:
            raise CliError(f"the recall process failed with exit status {code}")
        print(f"\nDone in {time.perf_counter() - started:.1f} s.", end=" ")
        if args.db or args.keep:
            print(f"Inspect the memories with: headroom memory list --db {db} --user {args.user}")
        else:
            print("The temporary database was removed (use --keep or --db PATH to keep it).")
    return 0


def _embedder_label(embedder: str) -> str:
    return {
        "local": "local all-MiniLM-L6-v2 embedder",
        "onnx": "local ONNX all-MiniLM-L6-v2 embedder",
        "hash": "hash embedder (test fake)",
    }[embedder]


def _warm_up(hm: HierarchicalMemory, user: str) -> None:
    """Load the embedder now, so reply timings do not include the model load."""
    started = time.perf_counter()
    hm.sync.search("warm up", user, top_k=1)
    print(f"(embedder loaded in {time.perf_counter() - started:.1f} s)", flush=True)


def _user_filter(user: str, *, all_versions: bool = False) -> Any:
    from headroom.memory.ports import MemoryFilter

    return MemoryFilter(user_id=user, include_superseded=all_versions)


def _spawn_recall(args: argparse.Namespace, db: Path, base_url: str | None, api_key: str) -> int:
    cmd = [sys.executable, "-m", "headroom.cli", "demo", "--phase", "recall", "--db", str(db),
           "--user", args.user, "--model", args.model, "--embedder", args.embedder]  # fmt: skip
    if base_url:
        cmd += ["--base-url", base_url]
    if args.grammar:
        cmd.append("--grammar")
    env = dict(os.environ, OPENAI_API_KEY=api_key)
    sys.stdout.flush()
    return subprocess.run(cmd, env=env, check=False).returncode


def _recall_phase(args: argparse.Namespace) -> int:
    if not args.db:
        raise CliError("--phase recall needs --db", 2)
    api_key = os.environ.get("OPENAI_API_KEY") or "not-needed"
    hm = open_memory(args.db, args.embedder)
    try:
        _section(f"2. A new process ({os.getpid()}), session 'tuesday': a question")
        _warm_up(hm, args.user)
        chat = _Chat(hm, args, args.base_url, api_key, session="tuesday")
        try:
            chat.ask(QUESTION)
            print(
                "Memories with_memory injected into that request (found by searching the question):"
            )
            for content in chat.injected or ["(none)"]:
                print(f"  - {content}")

            _section("3. A fact changes: supersession instead of a contradiction")
            chat.ask(CHANGE)
            print("Memories injected:", "; ".join(chat.injected) or "(none)")
        finally:
            chat.close()
        changed = [m for m in hm.sync.query(_user_filter(args.user)) if m.supersedes]
        if not changed:
            print("\nThe model did not mark any stored memory as replaced, so there is no history "
                  "chain to show (a real model may phrase the change as a new fact).")  # fmt: skip
        for memory in changed:
            print(f"\nHistory of {memory.content!r} (oldest first, get_history):")
            print(format_history(hm.sync.get_history(memory.id)))
        print("\nAll current memories of the user now:")
        _print_memories(hm.sync.query(_user_filter(args.user)), "none")
    finally:
        hm.sync.close()
    return 0
