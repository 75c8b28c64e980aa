"""The package layout: every public ``__all__`` resolves, and module-level imports form no cycle."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "packages"
SOURCES = {
    "headroom": ROOT / "headroom-core" / "src" / "headroom",
    "headroom_langchain": ROOT / "headroom-langchain" / "src" / "headroom_langchain",
    "headroom_llamaindex": ROOT / "headroom-llamaindex" / "src" / "headroom_llamaindex",
    "headroom_litellm": ROOT / "headroom-litellm" / "src" / "headroom_litellm",
}
PUBLIC_PACKAGES = [
    "headroom",
    "headroom.memory",
    "headroom.memory.testing",
    "headroom.inline",
    "headroom.openai",
    "headroom.testing",
    "headroom.cli",
    "headroom.mcp",
    "headroom_langchain",
    "headroom_llamaindex",
    "headroom_litellm",
]


@pytest.mark.parametrize("name", PUBLIC_PACKAGES)
def test_every_name_in_all_is_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported, f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ has duplicates"
    for attr in exported:
        assert getattr(module, attr, None) is not None, f"{name}.{attr} is not importable"


def test_documented_imports_work() -> None:
    from headroom import with_memory
    from headroom.memory import HierarchicalMemory, Memory, MemoryConfig, MemoryFilter
    from headroom.memory.testing import FailingEmbedder, HashEmbedder
    from headroom.testing import FakeOpenAIServer, ScriptedAssistant

    assert all([with_memory, HierarchicalMemory, Memory, MemoryConfig, MemoryFilter])
    assert all([HashEmbedder, FailingEmbedder, FakeOpenAIServer, ScriptedAssistant])


def _module_name(top: str, path: Path) -> str:
    rel = path.relative_to(SOURCES[top]).with_suffix("")
    parts = [top, *rel.parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported (not in functions or TYPE_CHECKING)."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            stack.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            stack.extend(node.body + node.orelse + node.finalbody)
            for handler in node.handlers:
                stack.extend(handler.body)
    return found


def _import_graph() -> dict[str, set[str]]:
    modules: dict[str, Path] = {}
    for top, base in SOURCES.items():
        for path in base.rglob("*.py"):
            modules[_module_name(top, path)] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _top_level_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join([*parts, base]) if base else ".".join(parts)
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def test_no_import_cycles() -> None:
    graph = _import_graph()
    assert "headroom.memory.engine" in graph and "headroom.cli.main" in graph
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
