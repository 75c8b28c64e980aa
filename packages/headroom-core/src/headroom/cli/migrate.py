"""``headroom memory migrate --from X --to Y``: copy a memory between SQLite and PostgreSQL.

Everything is copied as stored: ids, timestamps, scopes, supersession chains and the embeddings
(never re-embedded, so no model is loaded). Records whose id is already in the target are
skipped, so an interrupted migration can be run again. Each batch is one transaction in the
target, and the copy is verified at the end: every source id is in the target and the version
and vector counts agree.
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from headroom.cli.errors import CliError

__all__ = ["cmd_migrate", "migrate", "read_meta"]

logger = logging.getLogger(__name__)


def read_meta(location: str | Path) -> dict[str, str]:
    """The ``headroom_meta`` rows of a database (embedder model, dimension), without opening it."""
    from headroom.memory.config import postgres_url

    url = postgres_url(location)
    if url is None:
        path = Path(location)
        if not path.is_file():
            raise CliError(f"no memory database at {str(path)!r}")
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            try:
                return dict(conn.execute("SELECT key, value FROM headroom_meta").fetchall())
            except sqlite3.Error as exc:
                raise CliError(f"{path} is not a Headroom memory database: {exc}") from exc
    from sqlalchemy import text

    from headroom.memory.adapters.postgres.connect import create_pg_engine, translate_errors

    @translate_errors
    def _read() -> dict[str, str]:
        engine = create_pg_engine(url, pool_size=1)
        try:
            with engine.connect() as conn:
                if conn.execute(text("SELECT to_regclass('headroom_meta')")).scalar() is None:
                    raise CliError("the PostgreSQL database holds no Headroom memory")
                rows = conn.execute(text("SELECT key, value FROM headroom_meta")).all()
            return {str(k): str(v) for k, v in rows}
        finally:
            engine.dispose()

    return _read()


class _StoredEmbedder:
    """Names the source's model and dimension; migrating never embeds anything."""

    def __init__(self, model_name: str, dimension: int) -> None:
        self._model, self._dim = model_name, dimension

    @property
    def dimension(self) -> int:
        return self._dim

    @property
    def model_name(self) -> str:
        return self._model

    def embed(self, texts: Sequence[str]) -> Any:
        from headroom.memory.errors import EmbeddingError

        raise EmbeddingError("migrate copies stored embeddings; it never embeds")

    def close(self) -> None:
        pass


def _open_store(location: str | Path, embedder: _StoredEmbedder) -> Any:
    from headroom.memory.config import MemoryConfig
    from headroom.memory.factory import create_memory_system

    config = MemoryConfig(db_path=location, vector_dimension=embedder.dimension)
    store = create_memory_system(config, embedder=embedder).store  # type: ignore[arg-type]
    store.open(embedder_model=embedder.model_name, dimension=embedder.dimension)
    return store


def migrate(source: str | Path, target: str | Path, *, batch_size: int = 1000) -> dict[str, int]:
    """Copy every version from ``source`` to ``target``; returns the verified counts."""
    from headroom.memory.ports import MemoryFilter

    if str(source) == str(target):
        raise CliError("--from and --to are the same database")
    meta = read_meta(source)
    embedder = _StoredEmbedder(meta.get("embedder_model", "unknown"), int(meta["dimension"]))
    src = _open_store(source, embedder)
    try:
        dst = _open_store(target, embedder)
    except BaseException:
        src.close()
        raise
    everything = MemoryFilter(include_superseded=True)
    copied = skipped = 0
    try:
        pks = [int(p) for p in sorted(src.matching_pks(everything))]
        for start in range(0, len(pks), batch_size):
            chunk = pks[start : start + batch_size]
            memories = src.get_by_pks(chunk)
            vectors = src.get_vectors(chunk)
            ids = [memories[p].id for p in chunk if p in memories]
            present = {m.id for m in dst.query(MemoryFilter(ids=ids, include_superseded=True))}
            fresh = [p for p in chunk if p in memories and memories[p].id not in present]
            skipped += len(ids) - len(fresh)
            with_vec = [p for p in fresh if p in vectors]
            without = [p for p in fresh if p not in vectors]
            if with_vec:
                import numpy as np

                dst.insert(
                    [memories[p] for p in with_vec], np.stack([vectors[p] for p in with_vec])
                )
            if without:
                dst.insert([memories[p] for p in without], None)
            copied += len(fresh)
            found = dst.count(MemoryFilter(ids=ids, include_superseded=True))
            if found != len(ids):
                raise CliError(f"verification failed: {len(ids) - found} records missing in target")
            logger.info("migrated %d / %d records", start + len(chunk), len(pks))
        counts = {
            "source_versions": src.count(everything),
            "target_versions": dst.count(everything),
            "source_vectors": src.vector_count(),
            "target_vectors": dst.vector_count(),
            "copied": copied,
            "skipped_existing": skipped,
        }
    finally:
        src.close()
        dst.close()
    if counts["target_versions"] < counts["source_versions"] or (
        counts["target_vectors"] < counts["source_vectors"]
    ):
        raise CliError(f"verification failed: {counts}")
    return counts


def cmd_migrate(args: argparse.Namespace) -> int:
    counts = migrate(args.source, args.target, batch_size=args.batch_size)
    print(
        f"migrated {counts['copied']} records ({counts['skipped_existing']} already present); "
        f"source {counts['source_versions']} versions / {counts['source_vectors']} vectors, "
        f"target {counts['target_versions']} versions / {counts['target_vectors']} vectors"
    )
    return 0
