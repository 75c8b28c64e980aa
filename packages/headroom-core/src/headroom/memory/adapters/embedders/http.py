"""Embedders behind HTTP APIs: OpenAI-compatible ``/v1/embeddings`` and Ollama ``/api/embed``.

Synchronous httpx clients, created on first use and closed by :meth:`close`. Every transport,
status or payload failure becomes an :class:`~headroom.memory.errors.EmbeddingError` whose
message names the URL (without credentials or query string) and the status code.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from headroom.memory.adapters.vector.arrays import as_unit_rows, empty_vectors
from headroom.memory.errors import ConfigurationError, EmbeddingError, MissingDependencyError
from headroom.memory.ports import FloatArray

if TYPE_CHECKING:
    import httpx

__all__ = ["OPENAI_DEFAULT_BASE_URL", "OllamaEmbedder", "OpenAIEmbedder"]

logger = logging.getLogger(__name__)

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
_OPENAI_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
_OLLAMA_DIMENSIONS = {
    "nomic-embed-text": 768,
    "mxbai-embed-large": 1024,
    "all-minilm": 384,
    "snowflake-arctic-embed": 1024,
    "bge-m3": 1024,
}
_PROBE_TEXT = "dimension probe"


def redact_url(url: str) -> str:
    """``url`` without user info, query string or fragment (safe to log and show)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class _HttpEmbedder:
    """Shared plumbing: lazy client, POST with error translation, dimension bookkeeping."""

    def __init__(self, model: str, *, base_url: str, dimension: int | None, timeout: float) -> None:
        if dimension is not None and dimension < 1:
            raise ValueError("dimension must be >= 1 or None")
        self._model_name = model
        self._base_url = base_url.rstrip("/")
        self._dimension = dimension
        self._timeout = timeout
        self._client: httpx.Client | None = None

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            # Unknown model: ask the server once and remember the answer.
            self._dimension = int(self._request([_PROBE_TEXT]).shape[1])
            logger.info("%s reports dimension %d", self._model_name, self._dimension)
        return self._dimension

    def embed(self, texts: Sequence[str]) -> FloatArray:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of strings, not a single string")
        if not texts:
            return empty_vectors(self.dimension)
        items = list(texts)
        size = self._batch_size()
        chunks = [self._request(items[i : i + size]) for i in range(0, len(items), size)]
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks, axis=0)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- for subclasses -------------------------------------------------------------------

    def _batch_size(self) -> int:
        raise NotImplementedError

    def _request(self, texts: list[str]) -> FloatArray:
        raise NotImplementedError

    def _headers(self) -> dict[str, str]:
        return {}

    def _post(self, path: str, payload: dict[str, Any]) -> Any:
        """POST JSON to ``base_url + path`` and return the decoded JSON body."""
        try:
            import httpx
        except ImportError as exc:  # pragma: no cover - httpx is a core dependency
            raise MissingDependencyError("httpx", "openai") from exc
        url = f"{self._base_url}{path}"
        shown = redact_url(url)
        if self._client is None:
            self._client = httpx.Client(timeout=self._timeout, headers=self._headers())
        try:
            response = self._client.post(url, json=payload)
        except httpx.TimeoutException as exc:
            raise EmbeddingError(
                f"embedding request to {shown} timed out after {self._timeout}s"
            ) from exc
        except httpx.ConnectError as exc:
            raise EmbeddingError(f"could not connect to {shown}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise EmbeddingError(f"embedding request to {shown} failed: {exc}") from exc
        if response.status_code >= 400:
            raise EmbeddingError(
                f"embedding request to {shown} failed with HTTP {response.status_code}: "
                f"{_error_detail(response)}"
            )
        try:
            return response.json()
        except ValueError as exc:
            raise EmbeddingError(
                f"embedding response from {shown} is not valid JSON "
                f"(HTTP {response.status_code}): {response.text[:200]!r}"
            ) from exc

    def _to_vectors(self, raw: Any, count: int, path: str) -> FloatArray:
        vectors = as_unit_rows(
            raw,
            expected_rows=count,
            dimension=self._dimension,
            source=f"{self._model_name} at {redact_url(self._base_url + path)}",
        )
        if self._dimension is None:
            self._dimension = int(vectors.shape[1])
        return vectors

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self._model_name!r}, base_url={redact_url(self._base_url)!r})"


class OpenAIEmbedder(_HttpEmbedder):
    """OpenAI (or OpenAI-compatible) ``POST {base_url}/embeddings``.

    The API key comes from ``api_key`` or, at construction, ``OPENAI_API_KEY``. Against the
    official endpoint a key is required (ConfigurationError without one); a custom ``base_url``
    (vLLM, LM Studio, a proxy) may run without, and then no Authorization header is sent.
    For text-embedding-3 models a ``dimension`` below the native one is requested from the API.
    """

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        dimension: int | None = None,
        timeout: float = 30.0,
        batch_size: int = 256,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        native = _OPENAI_DIMENSIONS.get(model)
        super().__init__(
            model,
            base_url=base_url or OPENAI_DEFAULT_BASE_URL,
            dimension=dimension if dimension is not None else native,
            timeout=timeout,
        )
        self._api_key = api_key or os.environ.get("OPENAI_API_KEY") or None
        if self._api_key is None and base_url is None:
            raise ConfigurationError(
                "OpenAIEmbedder needs an API key: pass api_key or set OPENAI_API_KEY "
                "(or point base_url at an OpenAI-compatible server that needs none)"
            )
        self._batch = batch_size
        # text-embedding-3 models shorten their vectors on request ("dimensions").
        self._request_dimensions = (
            dimension
            if dimension is not None
            and model.startswith("text-embedding-3")
            and dimension != native
            else None
        )

    def _batch_size(self) -> int:
        return self._batch

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def _request(self, texts: list[str]) -> FloatArray:
        # The API rejects empty strings; a single space embeds "nothing" the same way each time.
        payload: dict[str, Any] = {
            "model": self._model_name,
            "input": [t if t.strip() else " " for t in texts],
            "encoding_format": "float",
        }
        if self._request_dimensions is not None:
            payload["dimensions"] = self._request_dimensions
        body = self._post("/embeddings", payload)
        try:
            data = body["data"]
            rows = sorted(data, key=lambda item: int(item["index"]))
            raw = [row["embedding"] for row in rows]
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbeddingError(
                f"malformed embeddings response from {redact_url(self._base_url + '/embeddings')}: "
                f"missing or bad {exc}"
            ) from exc
        if [int(row["index"]) for row in rows] != list(range(len(texts))):
            raise EmbeddingError(
                f"embeddings response from {redact_url(self._base_url + '/embeddings')} has "
                f"{len(rows)} items for {len(texts)} inputs"
            )
        return self._to_vectors(raw, len(texts), "/embeddings")


class OllamaEmbedder(_HttpEmbedder):
    """Ollama ``POST {base_url}/api/embed`` (``{"model", "input": [...]}`` -> ``{"embeddings"}``).

    The dimension of common embedding models is known; for others it is probed with one request
    on first access of :attr:`dimension` (on Python 3.11 ``isinstance(x, Embedder)`` reads it).
    """

    def __init__(
        self,
        model: str = "nomic-embed-text",
        *,
        base_url: str = "http://localhost:11434",
        dimension: int | None = None,
        timeout: float = 30.0,
        batch_size: int = 64,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if dimension is None:
            dimension = _OLLAMA_DIMENSIONS.get(model.removesuffix(":latest"))
        super().__init__(model, base_url=base_url, dimension=dimension, timeout=timeout)
        self._batch = batch_size

    def _batch_size(self) -> int:
        return self._batch

    def _request(self, texts: list[str]) -> FloatArray:
        body = self._post("/api/embed", {"model": self._model_name, "input": texts})
        try:
            raw = body["embeddings"]
        except (KeyError, TypeError) as exc:
            raise EmbeddingError(
                f"malformed response from {redact_url(self._base_url + '/api/embed')}: "
                "no 'embeddings' list"
            ) from exc
        return self._to_vectors(raw, len(texts), "/api/embed")


def _error_detail(response: httpx.Response) -> str:
    """A short, readable reason from an error response (OpenAI or Ollama shape, else text)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:200]
        if isinstance(error, str):
            return error[:200]
    return str(body)[:200]
