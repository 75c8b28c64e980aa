"""Query analysis without an LLM: entities named in the query, matched against entity refs.

A question that names someone ("What did Caroline research?") is usually about memories that
refer to that someone. When a memory's ``entity_refs`` are all named in the query (word for word,
case-insensitive: ``"Caroline"`` matches ``"caroline's"``, ``"New York"`` needs both words), its
fused score is multiplied by ``1 + entity_boost``. Memories without entity refs, and queries
naming none of them, rank exactly as before: the boost only reorders, it never adds or drops a
candidate.

This is the only step between fusion and the final sort (see ``engine_reads._search_uncached``);
it costs a tokenisation of the query and a set lookup per candidate (~0.05 ms for 40 candidates).
The boost (``MemoryConfig.entity_boost``, default 1.0) was chosen by leave-one-conversation-out
on the LoCoMo dev split (``benchmarks/locomo_retrieval.py``); the code knows nothing about it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ValidationError
from .models import SearchResult

__all__ = [
    "MAX_CONTEXT_CHARS",
    "QueryAnalysis",
    "analyse_query",
    "boost_named_entities",
    "check_context",
    "entity_matches",
]

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_CONTEXT_CHARS = 4000


def check_context(context: Any) -> str | None:
    """Validate the ``context=`` of add(): None, or a string indexed with the memory (stripped;
    empty becomes None). It is the other half of what makes a turn findable: the question a
    reply answers (contextual indexing; see ``benchmarks/locomo_retrieval.py``)."""
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
    """What ranking needs to know about a query: its lowercase word set."""

    words: frozenset[str]

    def names(self, entity_ref: str) -> bool:
        """True when every word of ``entity_ref`` occurs in the query (case-insensitive)."""
        ref_words = _words(entity_ref)
        return bool(ref_words) and ref_words <= self.words


def _words(text: str) -> frozenset[str]:
    return frozenset(w.lower() for w in _WORD.findall(text or ""))


def analyse_query(query: str) -> QueryAnalysis:
    return QueryAnalysis(_words(query))


def entity_matches(analysis: QueryAnalysis, entity_refs: Iterable[str]) -> bool:
    """True when the query names any of ``entity_refs``."""
    return any(analysis.names(ref) for ref in entity_refs)


def boost_named_entities(
    query: str, results: Sequence[SearchResult], *, entity_boost: float
) -> list[SearchResult]:
    """Scale the score of results whose entity refs the query names by ``1 + entity_boost``.

    Returns the results best first (stable for ties, so an unboosted list keeps its order).
    """
    out = list(results)
    if entity_boost and out:
        analysis = analyse_query(query)
        if analysis.words:
            for result in out:
                if (
                    result.score > 0
                    and result.memory.entity_refs
                    and entity_matches(analysis, result.memory.entity_refs)
                ):
                    result.score *= 1.0 + entity_boost
    out.sort(key=lambda r: -r.score)
    return out
