"""Connecting to PostgreSQL: URL handling, the engine, pgvector registration, error translation.

Every psycopg / SQLAlchemy failure leaves this package as one :class:`HeadroomError`: a bad URL
is a ConfigurationError, a server that cannot be reached or a failed statement a StorageError,
a database without the ``vector`` extension a ConfigurationError naming ``CREATE EXTENSION vector``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from headroom.memory.config import postgres_url
from headroom.memory.errors import (
    ConfigurationError,
    HeadroomError,
    MissingDependencyError,
    StorageError,
)

__all__ = [
    "VECTOR_EXTENSION_HINT",
    "commit_or_fail",
    "create_pg_engine",
    "ensure_vector_extension",
    "is_connection_error",
    "redact",
    "translate_errors",
]

logger = logging.getLogger(__name__)

_EXTENSION_LOCK = 0x48454144  # advisory lock key while creating the extension

P = ParamSpec("P")
R = TypeVar("R")

VECTOR_EXTENSION_HINT = (
    "the PostgreSQL database has no 'vector' extension (pgvector) and this role may not create "
    "it; run `CREATE EXTENSION vector;` in the database as a superuser (on managed services: "
    "enable pgvector), then open the memory again"
)


def _require_driver() -> None:
    try:
        import pgvector.psycopg  # noqa: F401
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "psycopg", "postgres") from exc


def redact(url: str) -> str:
    """The URL with its password hidden (for messages and logs)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unparseable URL>"


def sqlalchemy_url(url: str) -> str:
    """``postgresql://`` (libpq style, also unix sockets via ``?host=/dir``) -> psycopg 3 driver."""
    if postgres_url(url) is None:
        raise ConfigurationError(
            "a PostgreSQL URL must start with postgresql:// or postgresql+psycopg://"
        )
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def create_pg_engine(url: str, *, pool_size: int = 5, connect_timeout: int = 10) -> Engine:
    """An engine (pooled, pre-pinged) whose connections know the pgvector types."""
    _require_driver()
    from pgvector.psycopg import register_vector

    try:
        engine = create_engine(
            sqlalchemy_url(url),
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            connect_args={"connect_timeout": connect_timeout, "application_name": "headroom"},
        )
    except (ArgumentError, ValueError) as exc:
        raise ConfigurationError(f"invalid PostgreSQL URL {redact(url)}: {exc}") from exc

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        try:
            register_vector(dbapi_conn)
        except Exception:  # the extension is created after the first connection
            dbapi_conn.rollback()
            record.info["vector_unregistered"] = True

    return engine


def ensure_vector_extension(engine: Engine) -> None:
    """Create the ``vector`` extension when missing; a clear error when that is not allowed."""
    check = "SELECT 1 FROM pg_extension WHERE extname = 'vector'"
    with engine.connect() as conn:
        present = conn.exec_driver_sql(check).first()
        conn.rollback()
        if present:
            if conn.info.get("vector_unregistered"):
                # another process created it after this connection opened: reconnect to register
                conn.invalidate()
            return
        try:
            # processes opening a fresh database together: one creates, the others wait and see it
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_EXTENSION_LOCK})")
            if conn.exec_driver_sql(check).first() is None:
                conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public")
            conn.commit()
        except DBAPIError as exc:
            conn.rollback()
            raise ConfigurationError(f"{VECTOR_EXTENSION_HINT} ({_first_line(exc)})") from exc
    engine.dispose()  # later connections register the vector types


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__


def is_connection_error(exc: BaseException) -> bool:
    """True for a lost / refused connection (worth one retry), False for a failed statement."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover
        return False
    orig = getattr(exc, "orig", exc)
    return isinstance(orig, psycopg.OperationalError | psycopg.InterfaceError) and not isinstance(
        orig, psycopg.errors.QueryCanceled | psycopg.errors.LockNotAvailable
    )


def translate_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn``; database failures become StorageError.

    Functions marked :func:`retried` run once more after a lost connection: reads, and writes
    whose transaction never reached COMMIT (the server rolls such a transaction back, so the
    second run cannot apply anything twice; a connection lost *during* COMMIT is reported by
    :func:`commit_or_fail` as a StorageError instead, never retried).
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        retry = getattr(fn, "_headroom_retry", False)
        for attempt in (1, 2):
            try:
                return fn(*args, **kwargs)
            except HeadroomError:
                raise
            except (SQLAlchemyError, OSError) as exc:
                lost = is_connection_error(exc)
                if lost and retry and attempt == 1:
                    logger.warning("PostgreSQL connection lost in %s; retrying once", fn.__name__)
                    continue
                what = (
                    "PostgreSQL is unreachable or the connection dropped"
                    if lost
                    else "PostgreSQL error"
                )
                raise StorageError(f"{what} in {fn.__name__}: {_first_line(exc)}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    return wrapper


def retried(fn: Callable[P, R]) -> Callable[P, R]:
    """Mark ``fn`` as safe to run again after a lost connection (use under translate_errors)."""
    fn._headroom_retry = True  # type: ignore[attr-defined]
    return fn


def commit_or_fail(commit: Callable[[], None], where: str) -> None:
    """Commit; a connection lost meanwhile is a StorageError saying the outcome is unknown."""
    try:
        commit()
    except (SQLAlchemyError, OSError) as exc:
        if not is_connection_error(exc):
            raise
        raise StorageError(
            f"the PostgreSQL connection dropped while committing ({where}): the write may or may "
            f"not have been applied; read before retrying ({_first_line(exc)})"
        ) from exc
