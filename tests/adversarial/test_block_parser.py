"""The ``<memory>`` block parser is exact (issue #11, fault 5): a property test over random replies
and random chunkings (hypothesis), a deterministic fuzz of 21,000 generated replies, and the
reproductions from the issue. Every reply is checked against an independent, non-streaming oracle
of the grammar documented in :mod:`headroom.inline.extraction`, and for every reply:

* streaming (any chunking) == non-streaming == oracle (visible text, items, raw blocks);
* the visible text contains no tag, and stripping it again changes nothing;
* for well-formed replies (text + valid JSON blocks, JSON strings full of tags), every
  non-whitespace character of the text outside the blocks is kept, in order, and the items are
  exactly the ones written.
"""

from __future__ import annotations

import json
import random
import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from headroom.inline.extraction import StreamingMemoryStripper, split_memory_block

_OPEN = re.compile(r"<memory(?:[ \t][^<>\n]{0,200})?>", re.IGNORECASE)
_CLOSE = re.compile(r"</memory[ \t]{0,32}>", re.IGNORECASE)
_TAG = re.compile(_OPEN.pattern + "|" + _CLOSE.pattern, re.IGNORECASE)
_REGION = re.compile(r"\s*\x00(?:\s*\x00)*\s*")


def _block_end(text: str, i: int, legacy: bool) -> tuple[str, int, int]:
    """How the block whose content starts at ``i`` ends: ("close"|"open", start, end) of the
    tag, or ("eof", start, end) of the first closing tag inside a JSON string (-1 if none)."""
    in_str = esc = False
    first = (-1, -1)
    while i < len(text):
        c = text[i]
        if esc:
            esc = False
        elif in_str:
            if c == "\\":
                esc = True
            elif c == '"':
                in_str = False
            elif first[0] < 0 and (m := _CLOSE.match(text, i)):
                first = (i, m.end())
        elif c == '"' and not legacy:
            in_str = True
        elif m := _CLOSE.match(text, i):
            return "close", i, m.end()
        elif m := _OPEN.match(text, i):
            return "open", i, m.end()
        i += 1
    return "eof", *first


def _tag_prefix(rest: str) -> bool:
    low = rest.lower()
    if "<memory".startswith(low) or "</memory".startswith(low):
        return True
    if re.fullmatch(r"<memory[ \t][^<>\n]*", low):
        return len(rest) < 209
    return re.fullmatch(r"</memory[ \t]{0,32}", low) is not None


def oracle(text: str) -> tuple[str, list[str]]:
    """An independent, non-streaming statement of the block grammar and the tidying rule."""
    out, raws, pos, legacy = [], [], 0, False
    while (tag := _TAG.search(text, pos)) is not None:
        out.append(text[pos : tag.start()] + "\x00")
        pos = tag.end()
        if _CLOSE.fullmatch(tag.group()):
            continue  # a stray closing tag
        while True:
            kind, start, end = _block_end(text, pos, legacy)
            if kind == "open":
                raws.append(text[pos:start])
                pos = end
                continue
            if kind == "close" or start >= 0:
                raws.append(text[pos:start])
                legacy = legacy or kind == "eof"
                pos = end
            else:
                raws.append(text[pos:])
                pos = len(text)
            break
    if not out:
        return text, []
    s = "".join(out) + text[pos:]
    visible, last = "", 0
    for m in _REGION.finditer(s):
        visible += s[last : m.start()]
        last = m.end()
        if m.start() == 0 or m.end() == len(s):
            continue
        ws = m.group().replace("\x00", "")
        sep = "\n\n" if "\n" in ws else " " if ws else ""
        lt = visible.rfind("<")
        if sep != "\n\n" and lt >= 0 and _tag_prefix(visible[lt:]):
            sep = "\n"
        visible += sep
    return visible + s[last:], raws


def stream(chunks: list[str]) -> tuple[str, StreamingMemoryStripper]:
    stripper = StreamingMemoryStripper()
    out = [stripper.feed(c) for c in chunks]
    out.append(stripper.finish())
    return "".join(out), stripper


def chunked(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    return [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]


def _squash(text: str) -> str:
    return "".join(text.split())


def check(text: str, chunks: list[str], segments: list[str] | None = None,
          contents: list[str] | None = None) -> list[str]:  # fmt: skip
    """Every violation of the parser's contract for this reply (empty when it is exact)."""
    problems = []
    visible, items = split_memory_block(text)
    out, stripper = stream(chunks)
    if (out, stripper.items) != (visible, items):
        problems.append("streaming differs from non-streaming")
    expected, raws = oracle(text)
    if visible != expected or stripper.raw_blocks != raws:
        problems.append("differs from the oracle")
    if _TAG.search(visible):
        problems.append("a tag is left in the visible text")
    if split_memory_block(visible) != (visible, []):
        problems.append("stripping the visible text again changes it")
    if segments is not None and _squash(visible) != _squash("".join(segments)):
        problems.append("text outside the blocks was changed")
    if contents is not None and [i.content for i in items] != contents:
        problems.append("items differ from the ones written")
    return problems


# -- generators ------------------------------------------------------------------------------------

TAGGY = ["<memory>", "</memory>", "<mem", "ory>", "<", ">", "</", "</memory", "<memory ",
         "<MEMORY type='x'>", "</Memory >", '"', "\\", "{", "}", "[", "]", "\n", " ", "\t"]  # fmt: skip
WORDS = ["hi", "tea", "User", "likes", "é😀", ".", ",", "a", "b", "\n\n", " ", "  ", "\t"]
SAFE_FRAGMENTS = [
    "<mem",
    "ory>",
    "<",
    ">",
    "</",
    "</memor",
    "<memory ",
    "a < b",
    '"',
    "\\",
    "{",
    "}",
]
STRING_BITS = ["</memory>", "<memory>", "</MEMORY >", '"', "\\", "\\n", "{", "}", "<", "é", "😀",
               "tea", " ", "\n", "\u2028", "\ud83d"]  # fmt: skip
OPENINGS = ["<memory>", "<MEMORY>", '<memory type="json">', "<Memory\t>"]
CLOSINGS = ["</memory>", "</MEMORY >", "</memory\t>"]


def _safe_text(rng: random.Random) -> str:
    """Text outside blocks that holds no tag (it may hold tag fragments, quotes, braces)."""
    while True:
        parts = [rng.choice(WORDS + SAFE_FRAGMENTS) for _ in range(rng.randint(0, 6))]
        text = "".join(parts)
        if not _TAG.search(text):
            return text


def _content(rng: random.Random, i: int) -> str:
    bits = [rng.choice(STRING_BITS) for _ in range(rng.randint(0, 5))]
    return f"fact {i} " + "".join(bits)


def well_formed(rng: random.Random) -> tuple[str, list[str], list[str]]:
    """A reply of text segments and valid JSON blocks; returns (reply, segments, item contents)."""
    segments, contents, parts, n = [], [], [], 0
    for _ in range(rng.randint(0, 3)):
        seg = _safe_text(rng)
        items = [_content(rng, n + k) for k in range(rng.randint(1, 3))]
        n += len(items)
        payload = json.dumps(
            {"memories": [{"content": c} for c in items]}, ensure_ascii=rng.random() < 0.3
        )
        parts += [seg, rng.choice(OPENINGS), payload, rng.choice(CLOSINGS)]
        segments.append(seg)
        contents += [re.sub("[\ud800-\udfff]", "\ufffd", c).strip() for c in items]
    tail = _safe_text(rng)
    parts.append(tail)
    segments.append(tail)
    text = "".join(parts)
    # Adjacent segments may join into a tag only across a block; a segment never holds one.
    return text, segments, contents


def hostile(rng: random.Random) -> str:
    """Anything: tag fragments, quotes, escapes, broken JSON, unterminated blocks."""
    pool = (
        TAGGY
        + WORDS
        + STRING_BITS
        + OPENINGS
        + CLOSINGS
        + ['{"memories": ["x"]}', '{"content": "y']
    )
    return "".join(rng.choice(pool) for _ in range(rng.randint(0, 24)))


def random_chunks(rng: random.Random, text: str) -> list[str]:
    mode = rng.random()
    if mode < 0.05:
        return list(text)
    if mode < 0.15:
        return [text]
    cuts = [rng.randint(0, len(text)) for _ in range(rng.randint(1, 10))]
    return chunked(text, cuts)


# -- the reproductions ---------------------------------------------------------------------


def test_a_block_inside_a_broken_tag_leaves_no_tag_and_keeps_the_text() -> None:
    text = "<mem<memory>{}</memory>ory>hi</memory>"
    visible, _ = split_memory_block(text)
    assert visible == "<mem\nory>hi"
    assert split_memory_block(visible) == (visible, [])
    assert check(text, list(text)) == []


def test_a_closing_tag_inside_a_json_string_does_not_end_the_block() -> None:
    text = 'Noted.<memory>{"memories": [{"content": "User documents the </memory> tag"}]}</memory>'
    visible, items = split_memory_block(text)
    assert visible == "Noted."
    assert [i.content for i in items] == ["User documents the </memory> tag"]
    assert check(text, [text[i : i + 3] for i in range(0, len(text), 3)]) == []


def test_nested_opening_starts_a_new_block_and_no_stray_tag_remains() -> None:
    text = 'a <memory>["x"]<memory>["y"]</memory>z</memory> b'
    visible, items = split_memory_block(text)
    assert visible == "a\nz b" or visible == "a z b"
    assert "memory" not in visible and [i.content for i in items] == ["x", "y"]
    assert check(text, list(text)) == []


def test_malformed_json_falls_back_to_the_first_closing_tag() -> None:
    text = 'Ok.<memory>{"content": "5\' tall}</memory> Thanks! <memory>["b"]</memory>'
    visible, items = split_memory_block(text)
    assert visible == "Ok. Thanks!"
    assert [i.content for i in items] == ["b"]
    assert check(text, list(text)) == []


def test_stray_closing_tags_are_removed() -> None:
    assert split_memory_block("a</memory>b") == ("ab", [])
    assert split_memory_block("</memory<memory>{}</memory>>x")[0] == "</memory\n>x"


# -- property test and deterministic fuzz ----------------------------------------------------------

replies = st.integers(min_value=0, max_value=2**32).map(
    lambda seed: well_formed(random.Random(seed))
)


@settings(max_examples=300, deadline=None)
@given(reply=replies, cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_property_well_formed_replies_any_chunking(reply: tuple[str, list[str], list[str]],
                                                   cuts: list[int]) -> None:  # fmt: skip
    text, segments, contents = reply
    assert check(text, chunked(text, cuts), segments, contents) == []


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet="<>/\"\\{}[] \n\tmemoryMEORYx", max_size=60) | st.lists(
    st.sampled_from(TAGGY + OPENINGS + CLOSINGS + STRING_BITS), max_size=20).map("".join),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))  # fmt: skip
@example(text="<mem<memory>{}</memory>ory>hi</memory>", cuts=[5])
@example(text='<memory>{"a": "</memory>', cuts=[])
@example(text='<memory>"\\', cuts=[9])
def test_property_hostile_replies_any_chunking(text: str, cuts: list[int]) -> None:
    assert check(text, chunked(text, cuts)) == []


FUZZ_REPLIES = 21_000


def test_deterministic_fuzz_of_21000_replies() -> None:
    rng = random.Random(20261129)
    violations: dict[str, int] = {}
    for i in range(FUZZ_REPLIES):
        if i % 2:
            text, segments, contents = well_formed(rng)
            problems = check(text, random_chunks(rng, text), segments, contents)
        else:
            text = hostile(rng)
            problems = check(text, random_chunks(rng, text))
        for p in problems:
            violations[p] = violations.get(p, 0) + 1
    assert violations == {}, (
        f"{sum(violations.values())} violations over {FUZZ_REPLIES}: {violations}"
    )


def test_big_inputs_in_small_chunks_complete() -> None:
    # Linear work (benchmarks/block_parser.py measures it): 400 KB block in 4-char chunks and
    # 400 KB of whitespace in 1-char chunks run through the same code as the suite's replies.
    payload = json.dumps({"memories": [{"content": "x" * 400_000}]})
    text = "Hi.<memory>" + payload + "</memory> bye"
    out, stripper = stream([text[i : i + 4] for i in range(0, len(text), 4)])
    assert out == "Hi. bye" and len(stripper.items[0].content) == 400_000
    out, _ = stream(list("a" + " " * 400_000 + "b"))
    assert out == "a" + " " * 400_000 + "b"
