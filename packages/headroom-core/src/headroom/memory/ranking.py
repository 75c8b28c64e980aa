"""How search results are ranked.

* semantic: cosine similarity of the query and memory embeddings (exact, within visible memories);
* text: FTS5 bm25 (Porter stemming; see ``adapters/fts5_index.py`` for query handling);
* hybrid (default): weighted reciprocal-rank fusion of both candidate lists,
  ``score = w_text / (k + rank_text) + w_vector / (k + rank_vector)`` (ranks from 1; a list the
  memory is absent from contributes 0), then optional boosts: ``importance_weight * importance``
  and, with ``recency_half_life_days``, a multiplicative decay ``0.5 ** (age_days / half_life)``
  blended as ``score * (0.5 + 0.5 * decay)``. Both boosts are off by default. Last, query analysis
  (:mod:`headroom.memory.query_analysis`) multiplies by ``1 + entity_boost`` the score of memories
  whose entity refs the query names and by ``1 + date_boost`` that of memories valid in a month or
  year the query names (hybrid only; defaults 1.0 and 0.5).

Defaults (``MemoryConfig``: text weight 1.0, vector weight 0.5, k=5, 100 candidates per list) were
chosen on the LoCoMo dev split with all-MiniLM-L6-v2 (``benchmarks/locomo_retrieval.py``): R@10
0.67 vs 0.65 for FTS5 alone, 0.51 for dense alone and 0.62 for the same fusion at k=60. Score-based
fusion (max-normalised bm25 + cosine) measured the same within 0.01 and was not adopted. With
contextual indexing (``context=``, the previous turn) and the query cues, leave-one-conversation-out
over (entity boost, date boost, k) picked k=5 and entity boost 1.0 on every fold but one (R@10 0.77
dev, 0.766 held out, ONNX int8 MiniLM); see README "Retrieval quality" for every variant measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

__all__ = ["FusedCandidate", "apply_boosts", "fuse_rankings"]


@dataclass
class FusedCandidate:
    pk: int
    score: float
    text_rank: int | None = None
    vector_rank: int | None = None


def fuse_rankings(
    text_hits: Sequence[tuple[int, float]],
    vector_hits: Sequence[tuple[int, float]],
    *,
    text_weight: float,
    vector_weight: float,
    rrf_k: int,
) -> list[FusedCandidate]:
    """Weighted reciprocal-rank fusion; best first, ties broken by pk for determinism."""
    fused: dict[int, FusedCandidate] = {}
    for rank, (pk, _score) in enumerate(text_hits, start=1):
        cand = fused.setdefault(pk, FusedCandidate(pk, 0.0))
        cand.text_rank = rank
        cand.score += text_weight / (rrf_k + rank)
    for rank, (pk, _score) in enumerate(vector_hits, start=1):
        cand = fused.setdefault(pk, FusedCandidate(pk, 0.0))
        cand.vector_rank = rank
        cand.score += vector_weight / (rrf_k + rank)
    return sorted(fused.values(), key=lambda c: (-c.score, c.pk))


def apply_boosts(
    score: float,
    *,
    importance: float,
    valid_from: datetime,
    now: datetime,
    importance_weight: float,
    recency_half_life_days: float | None,
) -> float:
    """Blend importance and recency into a ranking score (no-ops at their defaults)."""
    if importance_weight:
        score += importance_weight * importance
    if recency_half_life_days:
        age_days = max((now - valid_from).total_seconds() / 86400.0, 0.0)
        decay = 0.5 ** (age_days / recency_half_life_days)
        score *= 0.5 + 0.5 * decay
    return score
