"""README snippets are copies of the tested examples: every statement is in an examples/ script.

Checked: the top-level README (except the LangChain blocks, whose examples are
examples/langchain_*.py) and the core, LiteLLM and LlamaIndex package READMEs. Each Python block
must parse as a module (no top-level ``await``) and each of its top-level statements must be,
syntax tree for syntax tree (so formatting and comments aside), a statement of some
``examples/*.py``.
"""

from __future__ import annotations

import ast
import builtins
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
READMES = [
    ROOT / "README.md",
    ROOT / "packages/headroom-core/README.md",
    ROOT / "packages/headroom-litellm/README.md",
    ROOT / "packages/headroom-llamaindex/README.md",
]
_BLOCK_RE = re.compile(r"^( *)```python\n(.*?)^\1```", re.DOTALL | re.MULTILINE)


def _blocks() -> list[tuple[str, str]]:
    found = []
    for readme in READMES:
        for number, match in enumerate(_BLOCK_RE.finditer(readme.read_text()), start=1):
            indent, code = match.groups()
            code = "\n".join(line[len(indent) :] for line in code.splitlines())
            if "headroom_langchain" in code:
                continue  # LangChain blocks: examples/langchain_*.py (another owner)
            found.append((f"{readme.relative_to(ROOT)}#{number}", code))
    return found


BLOCKS = _blocks()


def _statements(tree: ast.AST) -> set[str]:
    """Every statement of ``tree``, and of the Python files it writes (multi-line str constants)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt):
            found.add(ast.dump(node))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "\n" in node.value:
            try:
                found |= _statements(ast.parse(node.value))
            except SyntaxError:
                pass
    return found


EXAMPLE_STATEMENTS = set().union(
    *(_statements(ast.parse(p.read_text())) for p in (ROOT / "examples").glob("*.py"))
)


def test_there_are_snippets() -> None:
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize(("where", "code"), BLOCKS, ids=[w for w, _ in BLOCKS])
def test_snippet_is_a_copy_of_an_example(where: str, code: str) -> None:
    compile(code, where, "exec")  # no top-level await, valid Python
    missing = [
        ast.unparse(node)
        for node in ast.parse(code).body
        if ast.dump(node) not in EXAMPLE_STATEMENTS
    ]
    assert not missing, f"{where}: statements not in any examples/*.py: {missing}"


def _undefined(code: str) -> set[str]:
    """Names a snippet reads but never binds (imports, assignments, defs, arguments, targets)."""
    tree = ast.parse(code)
    bound = set(dir(builtins))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            bound.add(node.id)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return used - bound


@pytest.mark.parametrize(("where", "code"), BLOCKS, ids=[w for w, _ in BLOCKS])
def test_snippet_has_no_undefined_names(where: str, code: str) -> None:
    assert not _undefined(code), f"{where}: undefined names {sorted(_undefined(code))}"
