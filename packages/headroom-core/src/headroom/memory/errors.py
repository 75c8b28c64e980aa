"""The Headroom exception tree.

Every error raised on purpose by Headroom derives from :class:`HeadroomError`;
adapters translate third-party failures (sqlite, faiss, HTTP) with ``raise ... from exc``::

    HeadroomError
    ├── ConfigurationError          bad or unsupported configuration
    │   └── MissingDependencyError  an optional extra is not installed (names the extra)
    ├── ValidationError             bad input: empty content, bad importance, bad ids (also ValueError)
    ├── MemoryNotFoundError         unknown memory id (also KeyError)
    ├── AccessDeniedError           the memory belongs to another user
    ├── SupersededError             superseding a memory that is already superseded
    ├── EmbeddingError              the embedder failed (model missing, HTTP error, bad output)
    │   └── DimensionMismatchError  embedder dimension differs from the index / database
    ├── StorageError                the store failed (locked, corrupt, I/O)
    │   └── ReadOnlyError           a write to a memory opened read-only
    ├── IndexError_                 a derived index failed (it can be rebuilt from the store)
    └── ClosedError                 the memory was used after close()
"""

from __future__ import annotations

__all__ = [
    "AccessDeniedError",
    "ClosedError",
    "ConfigurationError",
    "DimensionMismatchError",
    "EmbeddingError",
    "HeadroomError",
    "IndexError_",
    "MemoryNotFoundError",
    "MissingDependencyError",
    "ReadOnlyError",
    "StorageError",
    "SupersededError",
    "ValidationError",
    "db_error_message",
]


class HeadroomError(Exception):
    """Base class of every error Headroom raises."""


class ConfigurationError(HeadroomError):
    """The configuration is invalid or names an unsupported backend."""


class MissingDependencyError(ConfigurationError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, package: str, extra: str, distribution: str = "headroom-core") -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f'{package!r} is not installed. Install it with: pip install "{distribution}[{extra}]"'
        )


class ValidationError(HeadroomError, ValueError):
    """Bad input to a public method."""


class MemoryNotFoundError(HeadroomError, KeyError):
    """No memory with that id exists (for this user)."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else "memory not found"


class AccessDeniedError(HeadroomError):
    """The memory exists but belongs to another user."""


class SupersededError(HeadroomError):
    """The memory has already been superseded; supersede its current version instead."""


class EmbeddingError(HeadroomError):
    """The embedder could not produce vectors."""


class DimensionMismatchError(EmbeddingError):
    """The embedder's dimension does not match the configured index or the stored vectors."""


class StorageError(HeadroomError):
    """The memory store failed."""


class ReadOnlyError(StorageError):
    """A write to a memory opened read-only."""


class IndexError_(HeadroomError):
    """A derived index (vector or full-text) failed; it can be rebuilt from the store."""


class ClosedError(HeadroomError):
    """The memory system was used after close()."""


def db_error_message(exc: BaseException) -> str:
    """A user-facing description of a database driver error: the driver's own message (e.g.
    ``database is locked``) without the SQL statement, parameters or documentation links that
    SQLAlchemy adds; callers log the full error at debug level."""
    orig = getattr(exc, "orig", None)
    base = orig if isinstance(orig, BaseException) else exc
    text = str(base).split("\n[SQL:", 1)[0].split("\n(Background on this error", 1)[0].strip()
    return f"{type(base).__name__}: {text}" if text else type(base).__name__
