"""Real embedders with the packaged all-MiniLM-L6-v2 weights, offline (no hub access)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from headroom.memory.adapters.embedders.onnx import OnnxEmbedder
from headroom.memory.adapters.embedders.sentence_transformer import SentenceTransformerEmbedder
from headroom.memory.ports import Embedder

pytestmark = pytest.mark.real_embedder

QUERY = "I like Python programming"
NEAR = "Python is my favourite language"
FAR = "The weather is rainy"
SENTENCES = [
    QUERY,
    NEAR,
    FAR,
    "The user prefers dark mode in every editor they use.",
    "Our quarterly revenue grew by twelve percent, driven by the new subscription plan.",
    "x",
]


@pytest.fixture(scope="module")
def offline() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def torch_embedder(offline: None) -> Iterator[SentenceTransformerEmbedder]:
    emb = SentenceTransformerEmbedder(threads=1)
    yield emb
    emb.close()


@pytest.fixture(scope="module")
def onnx_embedder() -> Iterator[OnnxEmbedder]:
    emb = OnnxEmbedder(threads=1)
    yield emb
    emb.close()


def check_semantics(emb: Embedder) -> np.ndarray:
    vecs = emb.embed(SENTENCES)
    assert vecs.shape == (len(SENTENCES), 384)
    assert vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert float(vecs[0] @ vecs[1]) > float(vecs[0] @ vecs[2]) + 0.2
    assert emb.embed([]).shape == (0, 384)
    return vecs


def test_sentence_transformer_offline(torch_embedder: SentenceTransformerEmbedder) -> None:
    import torch

    assert isinstance(torch_embedder, Embedder)
    assert torch_embedder.dimension == 384
    check_semantics(torch_embedder)
    assert torch_embedder.loaded
    assert torch.get_num_threads() == 1
    # Deterministic and independent of batch-mates.
    single = torch_embedder.embed([NEAR])[0]
    assert np.allclose(single, torch_embedder.embed(SENTENCES)[1], atol=1e-5)


def test_onnx_matches_torch(
    torch_embedder: SentenceTransformerEmbedder, onnx_embedder: OnnxEmbedder
) -> None:
    onnx_vecs = check_semantics(onnx_embedder)
    torch_vecs = torch_embedder.embed(SENTENCES)
    cosines = np.sum(onnx_vecs * torch_vecs, axis=1)
    assert cosines.min() > 0.99, cosines


def test_onnx_long_text_and_batches(onnx_embedder: OnnxEmbedder) -> None:
    long_text = "memory " * 600  # beyond the 256-token truncation
    small = OnnxEmbedder(threads=1, batch_size=2)
    try:
        vecs = small.embed([*SENTENCES, long_text])
        alone = onnx_embedder.embed([SENTENCES[3], long_text])
    finally:
        small.close()
    assert vecs.shape == (len(SENTENCES) + 1, 384)
    assert np.allclose(vecs[3], alone[0], atol=1e-5)
    assert np.allclose(vecs[-1], alone[1], atol=1e-5)
    # Dynamic padding: a short text gives the same vector alone and next to a long one.
    assert np.allclose(onnx_embedder.embed([SENTENCES[3]])[0], alone[0], atol=1e-5)


def test_onnx_threads_setting(onnx_embedder: OnnxEmbedder) -> None:
    onnx_embedder.load()
    session = onnx_embedder._session
    assert session is not None
    assert session.get_session_options().intra_op_num_threads == 1
    two = OnnxEmbedder(threads=2)
    two.load()
    assert two._session is not None
    assert two._session.get_session_options().intra_op_num_threads == 2
    two.close()
