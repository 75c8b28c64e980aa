"""Every LangChain code block of the READMEs is a copy of a runnable, tested example script.

``tests/examples/test_examples.py`` runs every ``examples/*.py``; this test checks that each Python
block of ``packages/headroom-langchain/README.md`` and of the LangChain section of ``README.md``
appears verbatim in one of ``examples/langchain_*.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = {
    p.name: p.read_text(encoding="utf-8") for p in (ROOT / "examples").glob("langchain_*.py")
}
_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _langchain_section(text: str) -> str:
    start = text.index("### LangChain and LangGraph")
    end = text.index("\n### ", start + 1)
    return text[start:end]


BLOCKS = [
    *[
        ("README.md", b)
        for b in _BLOCK.findall(_langchain_section((ROOT / "README.md").read_text()))
    ],
    *[
        ("headroom-langchain/README.md", b)
        for b in _BLOCK.findall((ROOT / "packages/headroom-langchain/README.md").read_text())
    ],
]


def test_there_are_blocks_and_examples() -> None:
    assert len(BLOCKS) >= 4 and len(EXAMPLES) >= 4


@pytest.mark.parametrize(
    ("doc", "block"), BLOCKS, ids=[f"{d}-{i}" for i, (d, _) in enumerate(BLOCKS)]
)
def test_block_is_a_copy_of_an_example(doc: str, block: str) -> None:
    hosts = [name for name, text in EXAMPLES.items() if block in text]
    assert hosts, f"a Python block of {doc} is not in any examples/langchain_*.py:\n{block}"
