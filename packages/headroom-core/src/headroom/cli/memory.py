"""``headroom memory ...``: list, search, show, history, stats, export, import, delete, purge.

Stdlib-only at import; the memory engine is imported when a command runs. ``export`` writes one
``Memory.to_dict()`` JSON object per line, every version included, and ``import`` inserts them
back with their ids, timestamps and supersession links (:meth:`HierarchicalMemory.import_memories`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from headroom.cli.errors import CliError

if TYPE_CHECKING:
    from headroom.memory.core import HierarchicalMemory
    from headroom.memory.models import Memory, SearchResult

__all__ = [
    "cmd_delete",
    "cmd_export",
    "cmd_history",
    "cmd_import",
    "cmd_list",
    "cmd_purge",
    "cmd_search",
    "cmd_show",
    "cmd_stats",
    "open_memory",
]

_IMPORT_BATCH = 500


def open_memory(
    db: str | Path, embedder: str = "onnx", *, create: bool = False, read_only: bool = False
) -> HierarchicalMemory:
    """Open the database at ``db`` with the named embedder (``hash`` is the test fake);
    ``read_only`` never writes (the read commands: also on a read-only filesystem)."""
    from headroom.memory.config import EmbedderBackend, MemoryConfig, postgres_url
    from headroom.memory.core import HierarchicalMemory

    url = postgres_url(db)
    path: Path | str = url or Path(db)
    if url is None and not create and not Path(path).is_file():
        raise CliError(f"no memory database at {str(path)!r} (choose one with --db PATH)")
    if embedder == "hash":
        from headroom.testing import HashEmbedder

        return HierarchicalMemory.create_sync(
            MemoryConfig(db_path=path, vector_dimension=64, read_only=read_only),
            embedder=HashEmbedder(64),
        )
    config = MemoryConfig(
        db_path=path, embedder_backend=EmbedderBackend(embedder), read_only=read_only
    )
    return HierarchicalMemory.create_sync(config)


@contextmanager
def _opened(
    args: argparse.Namespace, *, create: bool = False, read_only: bool = False
) -> Iterator[HierarchicalMemory]:
    hm = open_memory(args.db, args.embedder, create=create, read_only=read_only)
    try:
        yield hm
    finally:
        hm.sync.close()


def _display(db: str | Path) -> str:
    """The database for display: a file path, or a URL with its password hidden."""
    from headroom.memory.config import postgres_url

    url = postgres_url(db)
    if url is None:
        return str(Path(db))
    from headroom.memory.adapters.postgres.connect import redact

    return redact(url)


def _dump(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _line(memory: Memory) -> str:
    state = "" if memory.is_current else "  (superseded)"
    return (
        f"{memory.id}  {memory.category.value:<10} {memory.scope_level.value:<7} "
        f"{memory.content}{state}"
    )


def _describe(memory: Memory) -> str:
    rows = [
        ("id", memory.id),
        ("content", memory.content),
        ("user", memory.user_id),
        ("session", memory.session_id),
        ("agent", memory.agent_id),
        ("turn", memory.turn_id),
        ("scope", memory.scope_level.value),
        ("category", memory.category.value),
        ("importance", f"{memory.importance:.2f}"),
        ("entities", ", ".join(memory.entity_refs) or None),
        ("metadata", json.dumps(memory.metadata, ensure_ascii=False) if memory.metadata else None),
        ("created", memory.created_at.isoformat(timespec="seconds")),
        ("valid from", memory.valid_from.isoformat(timespec="seconds")),
        (
            "valid until",
            memory.valid_until.isoformat(timespec="seconds") if memory.valid_until else None,
        ),
        ("supersedes", memory.supersedes),
        ("superseded by", memory.superseded_by),
    ]
    return "\n".join(f"{name + ':':<15}{value}" for name, value in rows if value is not None)


def format_history(chain: list[Memory]) -> str:
    """Versions oldest first, each with its validity interval (shared with the demo)."""
    lines = []
    for i, memory in enumerate(chain, 1):
        start = memory.valid_from.isoformat(timespec="seconds")
        if memory.valid_until is not None:
            span = f"valid {start} -> {memory.valid_until.isoformat(timespec='seconds')}"
        else:
            span = f"valid since {start} (current)"
        lines.append(f"v{i}  {memory.content}\n    {span}  id={memory.id}")
    return "\n".join(lines)


def _check_scope(args: argparse.Namespace) -> None:
    if (args.session or args.agent) and not args.user:
        raise CliError("--session and --agent need --user", 2)


# -- commands -------------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    from headroom.memory.models import MemoryCategory
    from headroom.memory.ports import MemoryFilter

    _check_scope(args)
    categories = [MemoryCategory.parse(c) for c in args.category] if args.category else None
    f = MemoryFilter(
        user_id=args.user, session_id=args.session, agent_id=args.agent, categories=categories,
        include_superseded=args.all_versions, limit=args.limit,
    )  # fmt: skip
    with _opened(args, read_only=True) as hm:
        memories = hm.sync.query(f)
    if args.json:
        _dump([m.to_dict() for m in memories])
        return 0
    for memory in memories:
        print(_line(memory) if args.user else f"{memory.user_id}  {_line(memory)}")
    print(f"{len(memories)} memor{'y' if len(memories) == 1 else 'ies'}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    with _opened(args, read_only=True) as hm:
        results: list[SearchResult] = hm.sync.search(
            args.query, args.user, args.session, args.agent, top_k=args.top_k, mode=args.mode,
            include_superseded=args.all_versions,
        )  # fmt: skip
    if args.json:
        _dump(
            [
                {"score": r.score, "similarity": r.similarity, "memory": r.memory.to_dict()}
                for r in results
            ]
        )
        return 0
    if not results:
        print("no matching memories")
    for r in results:
        print(f"{r.score:7.4f}  sim={r.similarity:5.3f}  {_line(r.memory)}")
    return 0


def _require(hm: HierarchicalMemory, memory_id: str, user: str | None = None) -> Memory:
    """The memory, looked up for its owner: with ``--user`` another user's memory is refused.
    Every later call passes the owner (``memory.user_id``), so no command crosses users."""
    memory = hm.sync.get(memory_id, user_id=user)
    if memory is None:
        raise CliError(f"no memory with id {memory_id!r}", 2)
    return memory


def cmd_show(args: argparse.Namespace) -> int:
    with _opened(args, read_only=True) as hm:
        memory = _require(hm, args.id, getattr(args, "user", None))
    if args.json:
        _dump(memory.to_dict())
    else:
        print(_describe(memory))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    with _opened(args, read_only=True) as hm:
        owner = _require(hm, args.id, getattr(args, "user", None)).user_id
        chain = hm.sync.get_history(args.id, user_id=owner)
    if args.json:
        _dump([m.to_dict() for m in chain])
    else:
        print(format_history(chain))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    with _opened(args, read_only=True) as hm:
        stats = hm.sync.stats(args.user)
    stats["db_path"] = _display(args.db)
    if args.json:
        _dump(stats)
        return 0
    print(f"database:    {stats['db_path']} ({stats.get('db_size_bytes', 0)} bytes)")
    print(f"memories:    {stats['total']} current, {stats['superseded']} superseded versions")
    print(f"users:       {stats.get('users', 0)}")
    for key, title in (("categories", "categories:"), ("scope_levels", "scopes:")):
        counts = stats.get(key) or {}
        print(f"{title:<13}" + (", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "-"))
    if "embedder_model" in stats:
        print(f"embedder:    {stats['embedder_model']} ({stats.get('dimension')}-d)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from headroom.memory.ports import MemoryFilter

    with _opened(args, read_only=True) as hm:
        memories = hm.sync.query(MemoryFilter(user_id=args.user, include_superseded=True))
    if args.output == "-":
        _write_lines(sys.stdout, memories)
    else:
        with open(args.output, "w", encoding="utf-8") as out:
            _write_lines(out, memories)
        print(f"exported {len(memories)} memories to {args.output}", file=sys.stderr)
    return 0


def _write_lines(out: TextIO, memories: list[Memory]) -> None:
    for memory in memories:
        out.write(json.dumps(memory.to_dict(), ensure_ascii=False) + "\n")


def _read_records(handle: TextIO, source: str) -> list[Memory]:
    from headroom.memory.errors import HeadroomError
    from headroom.memory.models import Memory

    records = []
    for number, line in enumerate(handle, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            records.append(Memory.from_dict(data))
        except (ValueError, KeyError, TypeError, HeadroomError) as exc:
            raise CliError(
                f"{source}:{number}: not an exported memory ({type(exc).__name__}: {exc})", 2
            ) from exc
    return records


def cmd_import(args: argparse.Namespace) -> int:
    if args.input == "-":
        records = _read_records(sys.stdin, "<stdin>")
    else:
        try:
            with open(args.input, encoding="utf-8") as handle:
                records = _read_records(handle, args.input)
        except FileNotFoundError as exc:
            raise CliError(f"no such file: {args.input!r}") from exc
    inserted = 0
    with _opened(args, create=True) as hm:
        for start in range(0, len(records), _IMPORT_BATCH):
            inserted += hm.sync.import_memories(records[start : start + _IMPORT_BATCH])
    skipped = len(records) - inserted
    print(
        f"imported {inserted} memories into {args.db}"
        + (f" ({skipped} already present)" if skipped else "")
    )
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    with _opened(args) as hm:
        owner = _require(hm, args.id, args.user).user_id
        count = len(hm.sync.get_history(args.id, user_id=owner)) if args.history else 1
        hm.sync.delete(args.id, user_id=owner, include_history=args.history)
    print(f"deleted {count} version{'s' if count != 1 else ''} of {args.id}")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    from headroom.memory.ports import MemoryFilter

    target = f"user {args.user!r}"
    if args.session:
        target += f", session {args.session!r}"
    if args.agent:
        target += f", agent {args.agent!r}"
    with _opened(args) as hm:
        if not args.yes:
            n = hm.sync.count(MemoryFilter(user_id=args.user, include_superseded=True))
            if not _confirm(
                f"Delete memories of {target} (the user has {n} stored versions)? [y/N] "
            ):
                print("nothing deleted")
                return 1
        deleted = hm.sync.clear_scope(args.user, args.session, args.agent)
    print(f"deleted {deleted} memories of {target}")
    return 0


def _confirm(prompt: str) -> bool:
    if not sys.stdin.isatty():
        raise CliError("refusing to purge without confirmation: pass --yes", 2)
    try:
        return input(prompt).strip().lower() in ("y", "yes")
    except EOFError:
        return False
