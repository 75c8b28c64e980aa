"""OpenAI and Ollama embedders against a fake HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from headroom.memory.adapters.embedders.http import OllamaEmbedder, OpenAIEmbedder
from headroom.memory.errors import ConfigurationError, DimensionMismatchError, EmbeddingError
from headroom.memory.ports import Embedder


def fake_vector(text: str, dim: int) -> list[float]:
    """A deterministic, unnormalised vector per text (so tests can check mapping and scaling)."""
    rng = np.random.default_rng(zlib.crc32(text.encode()))
    return (rng.standard_normal(dim) * 3.0).tolist()


@dataclass
class FakeServer:
    """Records requests; ``respond`` decides (status, body bytes) per request."""

    base_url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    respond: Callable[[str, dict[str, Any]], tuple[int, bytes]] | None = None
    dim: int = 8


def _default_response(server: FakeServer, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
    inputs = body["input"]
    if path.endswith("/embeddings"):
        data = [
            {"object": "embedding", "index": i, "embedding": fake_vector(t, server.dim)}
            for i, t in enumerate(inputs)
        ]
        data.reverse()  # servers may return any order: the client must sort by index
        return 200, json.dumps({"object": "list", "data": data, "model": body["model"]}).encode()
    if path == "/api/embed":
        vecs = [fake_vector(t, server.dim) for t in inputs]
        return 200, json.dumps({"model": body["model"], "embeddings": vecs}).encode()
    return 404, b'{"error": "not found"}'


@pytest.fixture
def server() -> Iterator[FakeServer]:
    state = FakeServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            state.requests.append(
                {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
            )
            responder = state.respond or (lambda p, b: _default_response(state, p, b))
            status, payload = responder(self.path, body)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def expected(texts: list[str], dim: int) -> np.ndarray:
    raw = np.array([fake_vector(t, dim) for t in texts], dtype=np.float32)
    return raw / np.linalg.norm(raw, axis=1, keepdims=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- OpenAI ----------------------------------------------------------------------------------


def openai(server: FakeServer, **kwargs: Any) -> OpenAIEmbedder:
    kwargs.setdefault("api_key", "sk-secret")
    kwargs.setdefault("dimension", server.dim)
    return OpenAIEmbedder("custom-embed", base_url=server.base_url + "/v1", **kwargs)


def test_openai_success_sorted_by_index_and_normalised(server: FakeServer) -> None:
    emb = openai(server)
    texts = ["alpha", "beta", "gamma"]
    vecs = emb.embed(texts)
    assert isinstance(emb, Embedder)
    assert vecs.shape == (3, 8) and vecs.dtype == np.float32
    assert np.allclose(vecs, expected(texts, 8), atol=1e-6)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-6)
    [req] = server.requests
    assert req["path"] == "/v1/embeddings"
    assert req["auth"] == "Bearer sk-secret"
    assert req["body"]["model"] == "custom-embed"
    assert req["body"]["input"] == texts
    emb.close()


def test_openai_batches_requests(server: FakeServer) -> None:
    emb = openai(server, batch_size=2)
    texts = [f"text {i}" for i in range(5)]
    vecs = emb.embed(texts)
    assert [len(r["body"]["input"]) for r in server.requests] == [2, 2, 1]
    assert np.allclose(vecs, expected(texts, 8), atol=1e-6)
    emb.close()


def test_openai_empty_input_makes_no_request(server: FakeServer) -> None:
    emb = openai(server)
    assert emb.embed([]).shape == (0, 8)
    assert server.requests == []


def test_openai_blank_strings_are_sent_as_a_space(server: FakeServer) -> None:
    emb = openai(server)
    emb.embed(["", "x"])
    assert server.requests[0]["body"]["input"] == [" ", "x"]


def test_openai_probes_unknown_dimension_once(server: FakeServer) -> None:
    server.dim = 5
    emb = OpenAIEmbedder("custom-embed", api_key="k", base_url=server.base_url)
    assert emb.dimension == 5
    assert emb.dimension == 5
    assert emb.embed([]).shape == (0, 5)
    assert len(server.requests) == 1


def test_openai_requests_shortened_dimensions_for_v3_models(server: FakeServer) -> None:
    server.dim = 4
    emb = OpenAIEmbedder(
        "text-embedding-3-small", api_key="k", base_url=server.base_url, dimension=4
    )
    assert emb.embed(["a"]).shape == (1, 4)
    assert server.requests[0]["body"]["dimensions"] == 4


def test_openai_http_500(server: FakeServer) -> None:
    server.respond = lambda p, b: (500, b'{"error": {"message": "upstream exploded"}}')
    emb = openai(server)
    with pytest.raises(EmbeddingError) as info:
        emb.embed(["a"])
    message = str(info.value)
    assert "500" in message and "upstream exploded" in message
    assert server.base_url + "/v1/embeddings" in message
    assert "sk-secret" not in message


def test_openai_malformed_json(server: FakeServer) -> None:
    server.respond = lambda p, b: (200, b"{not json")
    with pytest.raises(EmbeddingError, match="not valid JSON"):
        openai(server).embed(["a"])


@pytest.mark.parametrize(
    "payload",
    [
        b'{"object": "list"}',
        b'{"data": [{"embedding": [1, 2]}]}',
        b'{"data": [{"index": 0, "embedding": [1, 2, 3, 4, 5, 6, 7, 8]}, '
        b'{"index": 0, "embedding": [1, 2, 3, 4, 5, 6, 7, 8]}]}',
        b'{"data": [{"index": 0, "embedding": "nope"}]}',
        b"[1, 2, 3]",
    ],
)
def test_openai_malformed_payloads(server: FakeServer, payload: bytes) -> None:
    server.respond = lambda p, b: (200, payload)
    with pytest.raises(EmbeddingError):
        openai(server).embed(["a"])


def test_openai_wrong_dimension(server: FakeServer) -> None:
    server.dim = 6
    with pytest.raises(DimensionMismatchError, match="expected 8"):
        openai(server, dimension=8).embed(["a"])


def test_openai_connection_refused() -> None:
    emb = OpenAIEmbedder(
        "custom-embed", api_key="k", base_url=f"http://127.0.0.1:{free_port()}/v1", dimension=8
    )
    with pytest.raises(EmbeddingError, match="could not connect"):
        emb.embed(["a"])


def test_openai_timeout(server: FakeServer) -> None:
    def slow(path: str, body: dict[str, Any]) -> tuple[int, bytes]:
        threading.Event().wait(1.0)
        return _default_response(server, path, body)

    server.respond = slow
    with pytest.raises(EmbeddingError, match="timed out"):
        openai(server, timeout=0.2).embed(["a"])


def test_openai_api_key_from_environment(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    emb = OpenAIEmbedder("custom-embed", base_url=server.base_url, dimension=8)
    monkeypatch.delenv("OPENAI_API_KEY")  # read at construction, not per request
    emb.embed(["a"])
    assert server.requests[0]["auth"] == "Bearer sk-from-env"


def test_openai_missing_key(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        OpenAIEmbedder()
    # A custom OpenAI-compatible server may need no key: no Authorization header is sent.
    emb = OpenAIEmbedder("custom-embed", base_url=server.base_url, dimension=8)
    emb.embed(["a"])
    assert server.requests[0]["auth"] is None


def test_openai_401_message(server: FakeServer) -> None:
    server.respond = lambda p, b: (401, b'{"error": {"message": "Incorrect API key provided"}}')
    with pytest.raises(EmbeddingError, match=r"401.*Incorrect API key"):
        openai(server).embed(["a"])


def test_close_then_reuse_recreates_client(server: FakeServer) -> None:
    emb = openai(server)
    emb.embed(["a"])
    emb.close()
    emb.close()  # idempotent
    assert emb.embed(["b"]).shape == (1, 8)


# -- Ollama ----------------------------------------------------------------------------------


def test_ollama_success(server: FakeServer) -> None:
    emb = OllamaEmbedder("fake-model", base_url=server.base_url, dimension=8)
    texts = ["one", "two"]
    vecs = emb.embed(texts)
    assert np.allclose(vecs, expected(texts, 8), atol=1e-6)
    [req] = server.requests
    assert req["path"] == "/api/embed"
    assert req["body"] == {"model": "fake-model", "input": texts}
    emb.close()


def test_ollama_batches_and_probes_dimension(server: FakeServer) -> None:
    server.dim = 3
    emb = OllamaEmbedder("fake-model", base_url=server.base_url + "/", batch_size=2)
    assert emb.dimension == 3
    vecs = emb.embed(["a", "b", "c"])
    assert vecs.shape == (3, 3)
    assert [len(r["body"]["input"]) for r in server.requests] == [1, 2, 1]


def test_ollama_known_model_dimension_without_request(server: FakeServer) -> None:
    emb = OllamaEmbedder("nomic-embed-text:latest", base_url=server.base_url)
    assert emb.dimension == 768
    assert server.requests == []


def test_ollama_error_model_not_found(server: FakeServer) -> None:
    server.respond = lambda p, b: (404, b'{"error": "model \\"nope\\" not found, try pulling it"}')
    emb = OllamaEmbedder("nope", base_url=server.base_url, dimension=8)
    with pytest.raises(EmbeddingError, match=r"404.*not found, try pulling"):
        emb.embed(["a"])


def test_ollama_malformed(server: FakeServer) -> None:
    server.respond = lambda p, b: (200, b'{"embedding": [1, 2]}')
    with pytest.raises(EmbeddingError, match="no 'embeddings'"):
        OllamaEmbedder("m", base_url=server.base_url, dimension=2).embed(["a"])
    server.respond = lambda p, b: (200, b"<html>")
    with pytest.raises(EmbeddingError, match="not valid JSON"):
        OllamaEmbedder("m", base_url=server.base_url, dimension=2).embed(["a"])


def test_ollama_connection_refused() -> None:
    emb = OllamaEmbedder("m", base_url=f"http://127.0.0.1:{free_port()}", dimension=4)
    with pytest.raises(EmbeddingError, match=r"could not connect to http://127\.0\.0\.1"):
        emb.embed(["a"])


def test_ollama_base_url_credentials_are_not_shown() -> None:
    port = free_port()
    emb = OllamaEmbedder("m", base_url=f"http://admin:hunter2@127.0.0.1:{port}", dimension=4)
    with pytest.raises(EmbeddingError) as info:
        emb.embed(["a"])
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in repr(emb)
