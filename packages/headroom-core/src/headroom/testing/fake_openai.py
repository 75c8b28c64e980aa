"""A small scripted OpenAI-compatible HTTP server, for tests and the offline demo.

Only the standard library: importable without the ``openai`` package. It serves
``POST /v1/chat/completions`` (JSON, or server-sent events with ``"stream": true``) and
``GET /v1/models`` on 127.0.0.1, and records every chat request it receives::

    with FakeOpenAIServer(lambda request: "Hello!") as server:
        client = OpenAI(base_url=server.base_url, api_key="test")
        ...
        assert server.requests[-1]["messages"][0]["role"] == "system"

A responder maps the request JSON to the reply: a string (the assistant's content) or a dict with
``content`` (may be ``None``), ``tool_calls``, ``finish_reason``, ``chunks`` (explicit stream
pieces), or ``choices`` (a list of such dicts, one per choice); ``{"error": {...}, "status": 500}``
answers with an HTTP error. :class:`ScriptedAssistant` (the default responder) plays a
deterministic memory-aware assistant.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from headroom.testing.scripted import ScriptedAssistant

__all__ = ["FakeOpenAIServer", "Responder", "ScriptedAssistant", "split_text"]

logger = logging.getLogger(__name__)

Responder = Callable[[dict[str, Any]], "str | dict[str, Any]"]


def split_text(
    text: str, *, chunk_size: int | None = None, split_points: Sequence[int] | None = None
) -> list[str]:
    """Cut ``text`` at ``split_points`` (offsets), or every ``chunk_size`` characters, or not at all."""
    if split_points is not None:
        points = sorted({p for p in split_points if 0 < p < len(text)})
        bounds = [0, *points, len(text)]
        return [text[a:b] for a, b in itertools.pairwise(bounds) if b > a] or [text]
    if chunk_size is not None and chunk_size > 0:
        return [text[i : i + chunk_size] for i in range(0, len(text), chunk_size)] or [text]
    return [text]


class FakeOpenAIServer:
    """A scripted OpenAI-compatible server on a background thread (``with`` starts and stops it).

    ``chunk_size`` / ``split_points`` control how streamed content is cut (they may be changed
    between requests); ``requests`` holds the JSON body of every chat completion request received.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        model: str = "fake-model",
        chunk_size: int | None = 4,
        split_points: Sequence[int] | None = None,
    ) -> None:
        self.responder: Responder = responder if responder is not None else ScriptedAssistant()
        self.host = host
        self.port = port
        self.model = model
        self.chunk_size = chunk_size
        self.split_points = split_points
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: pass it as the OpenAI client's ``base_url``."""
        if self._httpd is None:
            raise RuntimeError("FakeOpenAIServer is not running; use start() or a with block")
        return f"http://{self.host}:{self._httpd.server_address[1]}/v1"

    def start(self) -> FakeOpenAIServer:
        if self._httpd is not None:
            return self
        httpd = ThreadingHTTPServer((self.host, self.port), _make_handler(self))
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, name="fake-openai-server", daemon=True
        )
        self._thread.start()
        logger.debug("fake OpenAI server listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- recorded requests ------------------------------------------------------------------------

    @property
    def last_request(self) -> dict[str, Any]:
        with self._lock:
            if not self.requests:
                raise LookupError("no request received yet")
            return self.requests[-1]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    def _record(self, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(body)

    # -- building replies -------------------------------------------------------------------------

    def reply_for(self, request: dict[str, Any]) -> dict[str, Any]:
        """The responder's answer, normalised to ``{"choices": [...]}`` (or an error)."""
        raw = self.responder(request)
        if isinstance(raw, str) or raw is None:
            raw = {"content": raw}
        if not isinstance(raw, Mapping):
            raise TypeError(f"responder returned {type(raw).__name__}, expected str or dict")
        if "error" in raw:
            return dict(raw)
        choices = raw.get("choices")
        if choices is None:
            n = request.get("n") or 1
            choices = [raw] * int(n)
        normalised = [
            {"content": c} if isinstance(c, str) or c is None else dict(c) for c in choices
        ]
        return {"choices": normalised}


def _completion(
    server: FakeOpenAIServer, request: dict[str, Any], reply: dict[str, Any]
) -> dict[str, Any]:
    choices = []
    completion_chars = 0
    for index, spec in enumerate(reply["choices"]):
        message: dict[str, Any] = {"role": "assistant", "content": spec.get("content")}
        if spec.get("tool_calls"):
            message["tool_calls"] = spec["tool_calls"]
        completion_chars += len(spec.get("content") or "")
        choices.append(
            {
                "index": index,
                "message": message,
                "logprobs": None,
                "finish_reason": spec.get("finish_reason")
                or ("tool_calls" if spec.get("tool_calls") else "stop"),
            }
        )
    prompt_chars = len(json.dumps(request.get("messages", [])))
    prompt, completion = -(-prompt_chars // 4), -(-completion_chars // 4)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model") or server.model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def _stream_events(
    server: FakeOpenAIServer, request: dict[str, Any], reply: dict[str, Any]
) -> list[dict[str, Any]]:
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": request.get("model") or server.model,
    }

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**base, "choices": [choice]}

    events: list[dict[str, Any]] = []
    for index, spec in enumerate(reply["choices"]):
        events.append(chunk(index, {"role": "assistant", "content": ""}))
        content = spec.get("content")
        pieces = spec.get("chunks")
        if pieces is None and content:
            pieces = split_text(
                content, chunk_size=server.chunk_size, split_points=server.split_points
            )
        for piece in pieces or []:
            events.append(chunk(index, {"content": piece}))
        for position, call in enumerate(spec.get("tool_calls") or []):
            events.append(chunk(index, {"tool_calls": [{"index": position, **call}]}))
        finish = spec.get("finish_reason") or ("tool_calls" if spec.get("tool_calls") else "stop")
        events.append(chunk(index, {}, finish))
    options = request.get("stream_options") or {}
    if options.get("include_usage"):
        usage = _completion(server, request, reply)["usage"]
        events.append({**base, "choices": [], "usage": usage})
    return events


def _make_handler(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("fake-openai: " + format, *args)

        def _send_json(self, status: int, payload: Any) -> None:
            body = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
            self._send_json(status, {"error": {"message": message, "type": kind, "code": None}})

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                model = {
                    "id": server.model,
                    "object": "model",
                    "created": 0,
                    "owned_by": "headroom",
                }
                self._send_json(200, {"object": "list", "data": [model]})
            else:
                self._error(404, f"unknown path {self.path}")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._error(404, f"unknown path {self.path}")
                return
            try:
                request = json.loads(raw or b"{}")
            except ValueError:
                self._error(400, "request body is not JSON")
                return
            server._record(request)
            try:
                reply = server.reply_for(request)
            except Exception as exc:
                logger.exception("fake-openai responder failed")
                self._error(500, f"responder failed: {exc}", "server_error")
                return
            if "error" in reply:
                self._send_json(int(reply.get("status", 500)), {"error": reply["error"]})
                return
            if not request.get("stream"):
                self._send_json(200, _completion(server, request, reply))
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for event in _stream_events(server, request, reply):
                self._write_chunk(f"data: {json.dumps(event)}\n\n".encode())
            self._write_chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _write_chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

    return Handler
