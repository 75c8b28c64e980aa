"""One embedder per (backend, model, settings) per process, shared by every memory that opens it.

Opening several memories with ``db_path``/``config`` (several databases, several CLI commands in a
test, a web app opening one memory per tenant) must not load the model once per memory. The
factory asks :func:`shared_embedder` for a handle; handles on the same key share one underlying
embedder, which is closed when the last handle is closed. Calls are serialised by a per-model
lock, so the lazily loading adapters are never loaded twice and the model runs one batch at a time
(on a small machine two concurrent batches are slower than two consecutive ones); a big batch takes
the lock per chunk, so a search's query embedding never waits for all of another caller's batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence

from headroom.memory.adapters.embedders.local_base import embed_by_length
from headroom.memory.ports import Embedder, FloatArray

__all__ = ["SharedEmbedderHandle", "shared_embedder", "shared_embedder_count"]


class _Entry:
    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.refs = 0
        self.lock = threading.RLock()


LOCK_CHUNK = 32
"""Texts embedded per hold of the model's lock (one ONNX batch)."""
_registry: dict[Hashable, _Entry] = {}
_registry_lock = threading.Lock()


class SharedEmbedderHandle:
    """An :class:`~headroom.memory.ports.Embedder` backed by a process-wide shared instance."""

    def __init__(self, key: Hashable, entry: _Entry, build: Callable[[], Embedder]) -> None:
        self._key = key
        self._build = build
        self._entry: _Entry | None = entry

    def _live(self) -> _Entry:
        entry = self._entry
        if entry is None:  # reopened after close: take a new reference
            entry = _acquire(self._key, self._build)
            self._entry = entry
        return entry

    @property
    def inner(self) -> Embedder:
        return self._live().inner

    @property
    def dimension(self) -> int:
        entry = self._live()
        with entry.lock:
            return entry.inner.dimension

    @property
    def model_name(self) -> str:
        return self._live().inner.model_name

    def embed(self, texts: Sequence[str]) -> FloatArray:
        """Embed under the model's lock, taken per chunk of :data:`LOCK_CHUNK` texts (similar
        lengths together), so another caller's query waits for one chunk, never for all of a
        big batch."""
        entry = self._live()

        def locked(chunk: list[str]) -> FloatArray:
            with entry.lock:
                return entry.inner.embed(chunk)

        return embed_by_length(texts, LOCK_CHUNK, locked)

    def close(self) -> None:
        entry, self._entry = self._entry, None
        if entry is None:
            return
        with _registry_lock:
            entry.refs -= 1
            last = entry.refs <= 0
            if last and _registry.get(self._key) is entry:
                del _registry[self._key]
        if last:
            with entry.lock:
                entry.inner.close()

    def __repr__(self) -> str:
        return f"SharedEmbedderHandle({self._key!r})"


def _acquire(key: Hashable, build: Callable[[], Embedder]) -> _Entry:
    with _registry_lock:
        entry = _registry.get(key)
        if entry is None:
            entry = _registry[key] = _Entry(build())
        entry.refs += 1
        return entry


def shared_embedder(key: Hashable, build: Callable[[], Embedder]) -> SharedEmbedderHandle:
    """A handle on the process-wide embedder for ``key``, built with ``build`` the first time."""
    return SharedEmbedderHandle(key, _acquire(key, build), build)


def shared_embedder_count() -> int:
    """How many distinct shared embedders are alive (for tests and diagnostics)."""
    with _registry_lock:
        return len(_registry)
