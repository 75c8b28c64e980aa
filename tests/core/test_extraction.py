"""Tests of headroom.inline.extraction: parsing and stripping of <memory> blocks."""

from __future__ import annotations

import json
import logging

import pytest

from headroom.inline.extraction import (
    MEMORY_TAG,
    ExtractedMemory,
    StreamingMemoryStripper,
    parse_memory_items,
    split_memory_block,
    strip_memory_blocks,
)
from headroom.memory.errors import ValidationError
from headroom.memory.models import MemoryCategory, ScopeLevel

BLOCK = (
    '<memory>{"memories": [{"content": "User prefers Python", "category": "preference"}]}</memory>'
)


def stream(chunks: list[str]) -> tuple[str, StreamingMemoryStripper]:
    stripper = StreamingMemoryStripper()
    out = "".join(stripper.feed(chunk) for chunk in chunks) + stripper.finish()
    return out, stripper


# --------------------------------------------------------------------------- parse_memory_items


def test_tag_constant() -> None:
    assert MEMORY_TAG == "memory"


def test_parse_object_with_all_fields() -> None:
    payload = json.dumps(
        {
            "memories": [
                {
                    "content": " User moved to Berlin ",
                    "category": "FACT",
                    "importance": 0.8,
                    "scope": "Session",
                    "supersedes": "m2",
                    "entities": ["Berlin", "Berlin", " ", 3],
                }
            ]
        }
    )
    assert parse_memory_items(payload) == [
        ExtractedMemory(
            content="User moved to Berlin",
            category=MemoryCategory.FACT,
            importance=0.8,
            scope=ScopeLevel.SESSION,
            supersedes="m2",
            entities=("Berlin",),
        )
    ]


def test_parse_bare_list_and_string_items() -> None:
    items = parse_memory_items('["likes tea", {"text": "works at ACME"}, {"fact": "has a cat"}]')
    assert [i.content for i in items] == ["likes tea", "works at ACME", "has a cat"]
    assert all(i.category is None and i.importance is None and i.scope is None for i in items)


def test_parse_single_item_object() -> None:
    assert [i.content for i in parse_memory_items('{"content": "likes tea"}')] == ["likes tea"]


@pytest.mark.parametrize(
    "payload",
    [
        '```json\n{"memories": [{"content": "likes tea"}]}\n```',
        '```\n["likes tea"]\n```',
        '```json {"memories": ["likes tea"]} ```',
        '{"memories": [{"content": "likes tea",},],}',
        'Here you go: {"memories": ["likes tea"]} hope that helps',
        '\n  ["likes tea"]  \n',
    ],
)
def test_parse_tolerates_fences_trailing_commas_and_noise(payload: str) -> None:
    assert [i.content for i in parse_memory_items(payload)] == ["likes tea"]


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "   ",
        "not json at all",
        '{"memories": [{"content": "x"',
        '{"memories": "likes tea"}',
        '{"memories": null}',
        '{"other": []}',
        "42",
        '"just a string"',
        "null",
        "[" * 5000 + "]" * 5000,
        '{"memories": [}',
    ],
)
def test_parse_malformed_returns_empty(payload: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="headroom.inline.extraction"):
        assert parse_memory_items(payload) == []


def test_parse_non_string_payload() -> None:
    assert parse_memory_items(None) == []  # type: ignore[arg-type]
    assert parse_memory_items(b'["x"]') == []  # type: ignore[arg-type]


def test_parse_malformed_logs_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="headroom.inline"):
        parse_memory_items("{broken")
    assert caplog.records and all(r.levelno == logging.DEBUG for r in caplog.records)


def test_parse_drops_empty_and_invalid_items() -> None:
    payload = json.dumps(
        {
            "memories": [
                "",
                "  ",
                {"content": ""},
                {"content": None},
                {"content": 5},
                7,
                None,
                [],
                "ok",
            ]
        }
    )
    assert [i.content for i in parse_memory_items(payload)] == ["ok"]


def test_parse_bad_fields_are_dropped_not_raised() -> None:
    payload = json.dumps(
        {
            "memories": [
                {"content": "a", "category": "opinion", "importance": "high", "scope": "turn"},
                {"content": "b", "category": 3, "importance": True, "scope": "global"},
                {"content": "c", "importance": 7, "scope": None, "supersedes": ""},
                {"content": "d", "importance": -2.5, "supersedes": 2, "entities": "Bob"},
                {"content": "e", "importance": "0.3", "supersedes": "[M4]", "entities": {"x": 1}},
                {"content": "f", "importance": [1], "supersedes": True, "scope": "AGENT"},
            ]
        }
    )
    a, b, c, d, e, f = parse_memory_items(payload)
    assert (a.category, a.importance, a.scope) == (None, None, None)  # TURN is not accepted
    assert (b.category, b.importance, b.scope) == (None, None, None)
    assert (c.importance, c.supersedes) == (1.0, None)
    assert (d.importance, d.supersedes, d.entities) == (0.0, "m2", ("Bob",))
    assert (e.importance, e.supersedes, e.entities) == (0.3, "m4", ())
    assert (f.importance, f.supersedes, f.scope) == (None, None, ScopeLevel.AGENT)


def test_parse_huge_numbers_do_not_raise() -> None:
    items = parse_memory_items(
        '[{"content": "a", "importance": ' + "9" * 400 + ', "supersedes": 12}]'
    )
    assert [(i.importance, i.supersedes) for i in items] == [(1.0, "m12")]
    items = parse_memory_items(
        '[{"content": "a", "importance": 1e400}, {"content": "b", "importance": -1e400}]'
    )
    assert [i.importance for i in items] == [None, None]


def test_parse_non_finite_importance_dropped() -> None:
    items = parse_memory_items(
        '[{"content": "a", "importance": NaN}, {"content": "b", "importance": Infinity}]'
    )
    assert [i.importance for i in items] == [None, None]


def test_parse_deduplicates_normalised_content() -> None:
    payload = '["User likes tea", "user  likes TEA.", {"content": "User likes tea", "importance": 1}, "other"]'
    items = parse_memory_items(payload)
    assert [i.content for i in items] == ["User likes tea", "other"]


def test_extracted_memory_is_frozen() -> None:
    item = ExtractedMemory("x")
    with pytest.raises(AttributeError):
        item.content = "y"  # type: ignore[misc]


# --------------------------------------------------------------------------- split_memory_block


def test_split_block_at_end() -> None:
    visible, items = split_memory_block("Sure, noted.\n\n" + BLOCK + "\n")
    assert visible == "Sure, noted."
    assert items == [ExtractedMemory("User prefers Python", category=MemoryCategory.PREFERENCE)]


def test_split_none_and_no_block() -> None:
    assert split_memory_block(None) == ("", [])
    text = "  Plain answer with <b>html</b> and a < sign and <memo.\n\n"
    assert split_memory_block(text) == (text, [])
    assert strip_memory_blocks("") == ""


def test_split_block_in_middle_leaves_one_blank_line() -> None:
    text = "First part.\n\n\n" + BLOCK + "\n\n\nSecond part."
    assert split_memory_block(text)[0] == "First part.\n\nSecond part."
    assert split_memory_block("A\n" + BLOCK + "B")[0] == "A\n\nB"


def test_split_inline_block_keeps_words_apart() -> None:
    assert strip_memory_blocks("Hello " + BLOCK + " world") == "Hello world"
    assert strip_memory_blocks("Hello" + BLOCK + "world") == "Helloworld"


def test_split_block_at_start() -> None:
    assert strip_memory_blocks("\n " + BLOCK + "\n\nAnswer.") == "Answer."


def test_split_multiple_blocks_and_attributes_case_insensitive() -> None:
    text = (
        'Intro.\n<MEMORY type="json">["likes tea"]</Memory>\nMiddle.\n'
        '<memory>["likes tea", "has a dog"]</memory >\n<memory>["rides a bike"]</memory>\n'
    )
    visible, items = split_memory_block(text)
    assert visible == "Intro.\n\nMiddle."
    assert [i.content for i in items] == ["likes tea", "has a dog", "rides a bike"]


def test_split_unterminated_block_is_stripped_and_parsed() -> None:
    visible, items = split_memory_block('Answer.\n<memory>{"memories": ["likes tea"]}')
    assert (visible, [i.content for i in items]) == ("Answer.", ["likes tea"])
    visible, items = split_memory_block('Answer.\n<memory>{"memories": ["likes')
    assert (visible, items) == ("Answer.", [])


def test_split_malformed_block_keeps_the_answer() -> None:
    visible, items = split_memory_block("The answer is 42.\n<memory>{not json}</memory>")
    assert (visible, items) == ("The answer is 42.", [])


def test_split_only_block() -> None:
    assert split_memory_block(BLOCK)[0] == ""
    assert split_memory_block("  \n" + BLOCK + "\n ")[0] == ""


def test_similar_tags_are_not_blocks() -> None:
    text = "<memorystick>x</memorystick> <memories>y</memories> <memory-x> </memory\n>"
    assert strip_memory_blocks(text) == text
    # A stray closing tag is removed: visible text never holds a tag.
    assert strip_memory_blocks("a </memory> b") == "a b"


def test_whitespace_kept_when_no_block_is_removed() -> None:
    stripper = StreamingMemoryStripper()
    assert stripper.feed("  Hi\n\n") + stripper.finish() == "  Hi\n\n"


# --------------------------------------------------------------------------- streaming


def test_stream_holds_back_only_possible_tags() -> None:
    stripper = StreamingMemoryStripper()
    assert stripper.feed("Hello wor") == "Hello wor"
    assert stripper.feed("ld <Me") == "ld"
    assert stripper.feed("ow") == " <Meow"
    assert stripper.feed(" a<b") == " a<b"
    assert stripper.feed(" <") == ""
    assert stripper.feed("memory type='j'") == ""
    assert stripper.feed('>["likes tea"]</mem') == ""
    assert stripper.feed("ory>\n\nBye") == "\n\nBye"
    assert stripper.finish() == ""
    assert stripper.text == "Hello world <Meow a<b\n\nBye"
    assert [i.content for i in stripper.items] == ["likes tea"]
    assert stripper.raw_blocks == ['["likes tea"]']


def test_stream_finish_flushes_partial_tag_and_is_idempotent() -> None:
    stripper = StreamingMemoryStripper()
    assert stripper.feed("Price <mem") == "Price"
    assert stripper.finish() == " <mem"
    assert stripper.finish() == ""
    assert stripper.finished
    with pytest.raises(ValidationError):
        stripper.feed("more")


def test_stream_unterminated_block() -> None:
    out, stripper = stream(["Done.\n<memory>", '["likes', ' tea"]'])
    assert out == "Done."
    assert [i.content for i in stripper.items] == ["likes tea"]
    assert stripper.raw_blocks == ['["likes tea"]']


def test_stream_dedupes_items_across_blocks() -> None:
    _, stripper = stream(['A <memory>["x", "y"]</memory> B <memory>["X", "z"]</memory>'])
    assert [i.content for i in stripper.items] == ["x", "y", "z"]


TEXT = "Paris is the capital.\n\n" + BLOCK.replace("</memory>", "</MEMORY >")


@pytest.mark.parametrize("tag", ["<memory>", "</MEMORY >"])
def test_stream_tag_split_at_every_position(tag: str) -> None:
    start = TEXT.index(tag)
    expected = split_memory_block(TEXT)
    assert expected[0] == "Paris is the capital." and len(expected[1]) == 1
    for offset in range(len(tag) + 1):
        cut = start + offset
        out, stripper = stream([TEXT[:cut], TEXT[cut:]])
        assert out == expected[0], cut
        assert stripper.items == expected[1]


def test_stream_every_two_chunk_split_and_single_chars() -> None:
    text = "Intro <x> a\n" + BLOCK + ' mid <memory>["b"]</memory>\nEnd <mem'
    expected = strip_memory_blocks(text)
    assert expected == "Intro <x> a\n\nmid\n\nEnd <mem"
    for cut in range(len(text) + 1):
        assert stream([text[:cut], text[cut:]])[0] == expected
    assert stream(list(text))[0] == expected


# Property tests of the block grammar (random replies, random chunkings, an independent oracle)
# live in tests/adversarial/test_block_parser.py.
