"""What the pages show, computed from the engine's public API (no web framework here).

* :func:`user_summaries`: one row per user (counts by scope and category, last activity);
* :func:`parse_filters` / :func:`list_memories`: the memory list with its filters;
* :func:`build_timeline`: the geometry of a version chain's timeline (an SVG, no script);
* :func:`explain_search`: a search's fused ranking and what ``with_memory`` would inject.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any

from headroom.inline.injection import InjectedMemory, estimate_tokens, render_memory_context
from headroom.inline.memory import InlineMemory
from headroom.memory.core import HierarchicalMemory
from headroom.memory.errors import ValidationError
from headroom.memory.models import Memory, MemoryCategory, ScopeLevel, SearchResult, utcnow
from headroom.memory.ports import MemoryFilter
from headroom.memory.validation import check_id

__all__ = [
    "ExplainedResult",
    "MemoryListFilters",
    "SearchExplanation",
    "Timeline",
    "TimelineBar",
    "TimelineTick",
    "UserSummary",
    "build_timeline",
    "explain_search",
    "list_memories",
    "parse_as_of",
    "parse_filters",
    "parse_int",
    "relative_end",
    "short_time",
    "user_summaries",
]

_SCAN_BATCH = 5000
SCAN_LIMIT = 200_000
PAGE_SIZE = 100


@dataclass
class UserSummary:
    user_id: str
    current: int = 0
    superseded: int = 0
    scopes: dict[str, int] = field(default_factory=lambda: {s.value: 0 for s in ScopeLevel})
    categories: dict[str, int] = field(default_factory=dict)
    last_activity: datetime | None = None


async def user_summaries(
    memory: HierarchicalMemory, *, max_versions: int | None = None
) -> tuple[list[UserSummary], bool]:
    """Users with stored memories, most recently active first, and whether the scan was complete.

    One scan of the stored versions (the store has no per-user aggregate): about 0.1 ms per
    version, so the scan stops after ``max_versions`` (default :data:`SCAN_LIMIT`) and the page
    says its counts are partial.
    """
    limit = SCAN_LIMIT if max_versions is None else max_versions
    users: dict[str, UserSummary] = {}
    offset = 0
    complete = True
    while True:
        if offset >= limit:
            complete = False
            break
        size = min(_SCAN_BATCH, limit - offset)
        batch = await memory.query(MemoryFilter(include_superseded=True, limit=size, offset=offset))
        for m in batch:
            s = users.setdefault(m.user_id, UserSummary(m.user_id))
            if m.is_current:
                s.current += 1
                s.scopes[m.scope_level.value] = s.scopes.get(m.scope_level.value, 0) + 1
                s.categories[m.category.value] = s.categories.get(m.category.value, 0) + 1
            else:
                s.superseded += 1
            seen = max(m.updated_at, m.created_at, m.valid_until or m.created_at)
            if s.last_activity is None or seen > s.last_activity:
                s.last_activity = seen
        if len(batch) < size:
            break
        offset += size
    epoch = datetime.min.replace(tzinfo=UTC)
    ordered = sorted(
        users.values(), key=lambda s: (s.last_activity or epoch, s.user_id), reverse=True
    )
    return ordered, complete


# -- the memory list ------------------------------------------------------------------------------


@dataclass
class MemoryListFilters:
    user_id: str
    scope: str = ""
    category: str = ""
    session: str = ""
    agent: str = ""
    text: str = ""
    versions: str = "current"  # "current" or "all"
    as_of: str = ""
    page: int = 1
    valid_at: datetime | None = None

    def query_args(self, **changes: Any) -> dict[str, str]:
        """The non-empty filters as query parameters (for links to other pages)."""
        values = {
            "user": self.user_id, "scope": self.scope, "category": self.category,
            "session": self.session, "agent": self.agent, "text": self.text,
            "versions": "" if self.versions == "current" else self.versions, "as_of": self.as_of,
            "page": "" if self.page == 1 else str(self.page),
        }  # fmt: skip
        values.update({k: str(v) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v}


def parse_as_of(value: str) -> datetime | None:
    """``2026-05-01`` (the end of that day, UTC) or ``2026-05-01T14:30[:00]`` (UTC unless given)."""
    value = value.strip()
    if not value:
        return None
    try:
        if len(value) == 10:
            day = datetime.strptime(value, "%Y-%m-%d").date()
            return datetime.combine(day, time.max, tzinfo=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            f"'as of' must be a date (2026-05-01) or a date and time (2026-05-01T14:30), "
            f"got {value!r}"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_int(value: str | None, name: str, default: int, low: int, high: int) -> int:
    if value is None or not value.strip():
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValidationError(f"{name} must be a whole number, got {value!r}") from None
    if not low <= number <= high:
        raise ValidationError(f"{name} must be within {low}..{high}, got {number}")
    return number


def parse_filters(params: Mapping[str, str]) -> MemoryListFilters:
    """Read and validate the list filters from query parameters (ValidationError if bad)."""
    user_id = check_id(params.get("user"), "user")
    f = MemoryListFilters(
        user_id=user_id,
        scope=params.get("scope", "").strip(),
        category=params.get("category", "").strip(),
        session=params.get("session", "").strip(),
        agent=params.get("agent", "").strip(),
        text=params.get("text", "").strip(),
        versions=params.get("versions", "current").strip() or "current",
        as_of=params.get("as_of", "").strip(),
        page=parse_int(params.get("page"), "page", 1, 1, 1_000_000),
    )
    if f.scope:
        ScopeLevel.parse(f.scope)
    if f.category:
        MemoryCategory.parse(f.category)
    if f.versions not in ("current", "all"):
        raise ValidationError("versions must be 'current' or 'all'")
    f.valid_at = parse_as_of(f.as_of)
    return f


async def list_memories(
    memory: HierarchicalMemory, f: MemoryListFilters
) -> tuple[list[Memory], int]:
    """One page of the user's memories matching ``f`` (newest first) and how many match."""
    mf = MemoryFilter(
        user_id=f.user_id,
        session_id=f.session or None,
        agent_id=f.agent or None,
        exact_scope=True,  # session/agent filter on provenance, not on visibility
        scope_levels=[ScopeLevel.parse(f.scope)] if f.scope else None,
        categories=[MemoryCategory.parse(f.category)] if f.category else None,
        include_superseded=f.versions == "all" or f.valid_at is not None,
        valid_at=f.valid_at,
        order_by="-created_at",
    )
    if not f.text:
        total = await memory.count(mf)
        mf.limit, mf.offset = PAGE_SIZE, (f.page - 1) * PAGE_SIZE
        return await memory.query(mf), total
    needle = f.text.casefold()
    found = [m for m in await memory.query(mf) if needle in m.content.casefold()]
    start = (f.page - 1) * PAGE_SIZE
    return found[start : start + PAGE_SIZE], len(found)


# -- the version timeline -------------------------------------------------------------------------


@dataclass
class TimelineBar:
    number: int
    memory: Memory
    x: float
    width: float
    y: float
    selected: bool
    text_x: float = 0.0
    text_anchor: str = "start"
    text_inside: bool = True


@dataclass
class TimelineTick:
    x: float
    label: str
    anchor: str  # SVG text-anchor: "start", "middle" or "end"


@dataclass
class Timeline:
    bars: list[TimelineBar]
    ticks: list[TimelineTick]
    width: int
    height: int
    start: datetime
    end: datetime
    label_x: int


def build_timeline(
    chain: Sequence[Memory], selected_id: str, *, now: datetime | None = None
) -> Timeline:
    """Bars from valid_from to valid_until (or now) on one time axis, oldest version on top."""
    now = now or utcnow()
    width, label_x, row = 1000, 70, 34
    start = min(m.valid_from for m in chain)
    end = max([now, *(m.valid_until or now for m in chain), *(m.valid_from for m in chain)])
    span = max((end - start).total_seconds(), 1.0)
    usable = width - label_x - 10
    bars = []
    for i, m in enumerate(chain):
        left = (m.valid_from - start).total_seconds() / span
        right = ((m.valid_until or end) - start).total_seconds() / span
        bar_width = max((right - left) * usable, 6.0)
        x = min(label_x + left * usable, label_x + usable - bar_width)  # a new version stays inside
        bar = TimelineBar(
            number=i + 1,
            memory=m,
            x=round(x, 1),
            width=round(bar_width, 1),
            y=10 + i * row,
            selected=m.id == selected_id,
        )
        # The content goes inside a wide bar, else beside it where there is more room.
        if bar.width >= 200:
            bar.text_x = bar.x + 6
        elif width - (bar.x + bar.width) >= bar.x - label_x:
            bar.text_x, bar.text_inside = bar.x + bar.width + 6, False
        else:
            bar.text_x, bar.text_anchor, bar.text_inside = bar.x - 6, "end", False
        bars.append(bar)
    ticks = _ticks([m.valid_from for m in chain] + [end], start, span, label_x, usable, end == now)
    return Timeline(bars, ticks, width, 10 + len(chain) * row + 24, start, end, label_x)


def _ticks(
    instants: list[datetime], start: datetime, span: float, left: int, usable: int, is_now: bool
) -> list[TimelineTick]:
    """Axis labels at each version's start and at the end, dropping ones that would overlap."""
    fmt = "%Y-%m-%d" if span > 3 * 86400 else "%m-%d %H:%M"
    ticks: list[TimelineTick] = []
    last = len(instants) - 1
    for i, when in enumerate(instants):
        x = round(left + (when - start).total_seconds() / span * usable, 1)
        label = "now" if i == last and is_now else when.astimezone(UTC).strftime(fmt)
        anchor = "start" if i == 0 else "end" if i == last else "middle"
        if ticks and x - ticks[-1].x < 110:
            if i != last:
                continue
            ticks.pop()  # keep the end label rather than the one crowding it
            if not ticks:
                anchor = "end"
        ticks.append(TimelineTick(x, label, anchor))
    return ticks


# -- the search playground ------------------------------------------------------------------------


@dataclass
class ExplainedResult:
    rank: int
    result: SearchResult
    injected_ref: str | None
    reason: str


@dataclass
class SearchExplanation:
    results: list[ExplainedResult]
    context: str | None
    """The ``<headroom_context>`` block with_memory would put in front of the user's message."""
    context_tokens: int
    injection_session: str
    formula: str


async def explain_search(
    memory: HierarchicalMemory,
    query: str,
    user_id: str,
    *,
    session_id: str | None = None,
    agent_id: str | None = None,
    mode: str | None = None,
    top_k: int = 10,
    inject_top_k: int = 5,
    token_budget: int = 600,
) -> SearchExplanation:
    """The ranking of ``query`` with its evidence, and with_memory's injection for the same query.

    The injection side mirrors :class:`~headroom.inline.memory.InlineMemory` exactly: its search
    (its top_k, default mode, and the private session a wrapper gets when none is given), then
    :func:`~headroom.inline.injection.render_memory_context` within the token budget.
    """
    results = await memory.search(
        query, user_id, session_id, agent_id, top_k=top_k, mode=mode or None
    )
    inline = InlineMemory(
        memory, user_id=user_id, session_id=session_id, agent_id=agent_id,
        top_k=inject_top_k, token_budget=token_budget, instruction=None,
    )  # fmt: skip
    hits = await memory.search(
        query, inline.user_id, inline.session_id, inline.agent_id,
        top_k=inline.top_k, min_similarity=inline.min_similarity,
    )  # fmt: skip
    candidates = [
        InjectedMemory(
            ref=f"m{i}", content=h.memory.content, category=h.memory.category.value,
            scope=h.memory.scope_level.value, memory_id=h.memory.id,
        )
        for i, h in enumerate(hits, start=1)
    ]  # fmt: skip
    context = render_memory_context(candidates, token_budget=token_budget)
    shown = {c.memory_id: c.ref for c in candidates if context and f"[{c.ref}]" in context}
    candidate_ids = {c.memory_id for c in candidates}
    explained = []
    for rank, r in enumerate(results, start=1):
        ref = shown.get(r.memory.id)
        if ref is not None:
            reason = f"injected as [{ref}]"
        elif r.memory.id in candidate_ids:
            reason = f"not injected: over the {token_budget}-token budget"
        elif not _visible_to_inline(r.memory, inline):
            reason = "not injected: its scope is not visible to with_memory here"
        else:
            reason = f"not injected: outside with_memory's top {inject_top_k}"
        explained.append(ExplainedResult(rank, r, ref, reason))
    cfg = memory.config
    formula = (
        f"hybrid score = {cfg.hybrid_text_weight:g} / ({cfg.rrf_k} + text rank) + "
        f"{cfg.hybrid_vector_weight:g} / ({cfg.rrf_k} + vector rank)"
    )
    return SearchExplanation(
        results=explained,
        context=context,
        context_tokens=estimate_tokens(context) if context else 0,
        injection_session=inline.session_id,
        formula=formula,
    )


def _visible_to_inline(m: Memory, inline: InlineMemory) -> bool:
    if m.scope_level is ScopeLevel.USER:
        return True
    if m.scope_level is ScopeLevel.SESSION:
        return m.session_id == inline.session_id
    if m.scope_level is ScopeLevel.AGENT:
        return m.agent_id == inline.agent_id and m.session_id == inline.session_id
    return False


def short_time(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def relative_end(value: datetime | None) -> str:
    return "now (current)" if value is None else short_time(value)
