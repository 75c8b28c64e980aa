"""Query analysis without an LLM: entities and dates named in the query.

Two cues, both applied to the fused candidates of a hybrid search just before the final sort (the
one call in ``engine_reads._search_uncached``); they only reorder, never add or drop a candidate:

* entities - a question that names someone ("What did Caroline research?") is usually about
  memories that refer to them. When the query names a memory's entity ref (every word of it,
  case-insensitive: ``"Caroline"`` matches ``"caroline's"``, ``"New York"`` needs both words), its
  score is multiplied by ``1 + entity_boost``;
* dates - when the query names a month and/or a year ("in June", "in 2022", "October 2023"), a
  memory whose ``valid_from`` falls in that month (of that year) gets ``1 + date_boost``.

Cost: one tokenisation of the query plus a set lookup per candidate (~0.05 ms for 30). The
boosts (``MemoryConfig.entity_boost`` / ``date_boost``) were chosen by leave-one-conversation-out
on the LoCoMo dev split (``benchmarks/locomo_retrieval.py``); the code knows nothing about it.

Also here: :func:`check_context`, the validation of ``add(context=...)`` (contextual indexing: text
indexed for full-text search with a memory but never shown, e.g. the turn it answers).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ValidationError
from .models import Memory, SearchResult

__all__ = [
    "MAX_CONTEXT_CHARS",
    "QueryAnalysis",
    "analyse_query",
    "boost_named_entities",
    "check_context",
    "entity_matches",
]

_WORD = re.compile(r"\w+", re.UNICODE)
_YEAR_WORD = re.compile(r"\b(?:19|20)\d\d\b")  # a whole \w+ word that is a year
_CAPITALISED = re.compile(r"\b[A-Z][A-Za-z]{2,8}\b")  # whole words only, like month names
_MONTHS = {
    name: i
    for i, names in enumerate(
        ("january jan", "february feb", "march mar", "april apr", "may", "june jun",
         "july jul", "august aug", "september sep sept", "october oct", "november nov",
         "december dec"),
        start=1,
    )
    for name in names.split()
}  # fmt: skip
MAX_CONTEXT_CHARS = 4000


def check_context(context: Any) -> str | None:
    """Validate the ``context=`` of add(): None, or a string indexed with the memory (stripped;
    empty becomes None)."""
    if context is None:
        return None
    if not isinstance(context, str):
        raise ValidationError(f"context must be a string, got {type(context).__name__}")
    if "\x00" in context:
        raise ValidationError("context must not contain NUL characters")
    stripped = context.strip()
    if len(stripped) > MAX_CONTEXT_CHARS:
        raise ValidationError(f"context is longer than {MAX_CONTEXT_CHARS} characters")
    return stripped or None


@dataclass(frozen=True)
class QueryAnalysis:
    """What ranking needs to know about a query: its lowercase words and the dates it names."""

    words: frozenset[str]
    months: frozenset[int] = frozenset()
    years: frozenset[int] = frozenset()

    def names(self, entity_ref: str) -> bool:
        """True when every word of ``entity_ref`` occurs in the query (case-insensitive)."""
        ref_words = _words(entity_ref)
        return bool(ref_words) and ref_words <= self.words

    def dates(self, memory: Memory) -> bool:
        """True when the query names a month/year and ``memory.valid_from`` falls in it."""
        if not (self.months or self.years):
            return False
        when = memory.valid_from
        return (not self.months or when.month in self.months) and (
            not self.years or when.year in self.years
        )


def _words(text: str) -> frozenset[str]:
    return frozenset(w.lower() for w in _WORD.findall(text or ""))


def analyse_query(query: str) -> QueryAnalysis:
    """Linear and C-speed on long messages: one lower-cased word scan, then two scans that only
    look at capitalised ASCII words (month names) and four-digit years."""
    text = query or ""
    words = frozenset(_WORD.findall(text.lower()))
    # Month names must be capitalised in the query ("may", "march" are also ordinary words);
    # abbreviations count only when capitalised too ("Oct").
    months = frozenset(
        _MONTHS[w.lower()] for w in _CAPITALISED.findall(text) if w.lower() in _MONTHS
    )
    years = frozenset(int(w) for w in _YEAR_WORD.findall(text))
    return QueryAnalysis(words, months, years)


def entity_matches(analysis: QueryAnalysis, entity_refs: Iterable[str]) -> bool:
    """True when the query names any of ``entity_refs``."""
    return any(analysis.names(ref) for ref in entity_refs)


def boost_named_entities(
    query: str,
    results: Sequence[SearchResult],
    *,
    entity_boost: float,
    date_boost: float = 0.0,
) -> list[SearchResult]:
    """Scale the score of results the query names (entity refs, then month/year of valid_from).

    Only positive scores are scaled. Returns the results best first (stable for ties, so an
    unboosted list keeps its order).
    """
    out = list(results)
    if (entity_boost or date_boost) and out:
        analysis = analyse_query(query)
        for result in out:
            if result.score <= 0:
                continue
            memory = result.memory
            if entity_boost and memory.entity_refs and entity_matches(analysis, memory.entity_refs):
                result.score *= 1.0 + entity_boost
            if date_boost and analysis.dates(memory):
                result.score *= 1.0 + date_boost
    out.sort(key=lambda r: -r.score)
    return out
