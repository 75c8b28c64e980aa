"""The pure parts behind the pages: the timeline geometry and the "as of" parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from headroom.memory.errors import ValidationError
from headroom.memory.models import Memory
from headroom.ui.data import build_timeline, parse_as_of

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _chain(*days: float, now_days: float) -> tuple[list[Memory], datetime]:
    """Versions starting on the given days after T0, each ending where the next starts."""
    starts = [T0 + timedelta(days=d) for d in days]
    chain = [
        Memory(id=f"v{i}", content=f"version {i}", user_id="u", valid_from=start,
               valid_until=starts[i + 1] if i + 1 < len(starts) else None)
        for i, start in enumerate(starts)
    ]  # fmt: skip
    return chain, T0 + timedelta(days=now_days)


def test_bars_are_proportional_to_validity() -> None:
    chain, now = _chain(0, 30, 90, now_days=120)
    tl = build_timeline(chain, "v1", now=now)
    usable = tl.width - tl.label_x - 10
    widths = [b.width for b in tl.bars]
    assert widths == pytest.approx(
        [usable * 30 / 120, usable * 60 / 120, usable * 30 / 120], abs=0.2
    )
    assert [b.x for b in tl.bars] == sorted(b.x for b in tl.bars)
    assert [b.selected for b in tl.bars] == [False, True, False]
    assert [t.label for t in tl.ticks] == ["2026-01-01", "2026-01-31", "2026-04-01", "now"]


def test_a_new_version_gets_a_visible_bar_and_its_text_beside_it() -> None:
    chain, now = _chain(0, 119.999, now_days=120)
    tl = build_timeline(chain, "v1", now=now)
    last = tl.bars[-1]
    assert last.width >= 6 and last.x + last.width <= tl.width - 10 + 0.1
    assert not last.text_inside and last.text_anchor == "end" and last.text_x < last.x
    assert tl.bars[0].text_inside
    # The crowded tick of the new version gives way to the end label.
    assert [t.label for t in tl.ticks] == ["2026-01-01", "now"]


def test_one_version_and_same_instant_versions() -> None:
    chain, now = _chain(0, now_days=0)
    tl = build_timeline(chain, "v0", now=now)
    assert len(tl.bars) == 1 and tl.bars[0].width > 0


def test_parse_as_of() -> None:
    assert parse_as_of("") is None
    assert parse_as_of("2026-05-01") == datetime(2026, 5, 1, 23, 59, 59, 999999, tzinfo=UTC)
    assert parse_as_of("2026-05-01T14:30") == datetime(2026, 5, 1, 14, 30, tzinfo=UTC)
    assert parse_as_of("2026-05-01T14:30:00+02:00") == datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
    assert parse_as_of("2026-05-01T14:30:00Z") == datetime(2026, 5, 1, 14, 30, tzinfo=UTC)
    for bad in ("tomorrow", "2026-13-01", "01/05/2026"):
        with pytest.raises(ValidationError, match="as of"):
            parse_as_of(bad)
