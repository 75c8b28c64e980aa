"""README snippets are copies of the tested examples: every Python line is in an examples/ script.

Checked: the top-level README (except the LangChain blocks, whose examples are
examples/langchain_*.py) and the core, LiteLLM and LlamaIndex package READMEs. Each Python block
must compile as a module (no top-level ``await``) and each of its non-blank lines must appear
(stripped) in some ``examples/*.py``.
"""

from __future__ import annotations

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
EXAMPLE_LINES = {
    line.strip()
    for script in (ROOT / "examples").glob("*.py")
    for line in script.read_text().splitlines()
}


def test_there_are_snippets() -> None:
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize(("where", "code"), BLOCKS, ids=[w for w, _ in BLOCKS])
def test_snippet_is_a_copy_of_an_example(where: str, code: str) -> None:
    compile(code, where, "exec")  # no top-level await, valid Python
    missing = [
        line for line in code.splitlines() if line.strip() and line.strip() not in EXAMPLE_LINES
    ]
    assert not missing, f"{where}: lines not in any examples/*.py: {missing}"
