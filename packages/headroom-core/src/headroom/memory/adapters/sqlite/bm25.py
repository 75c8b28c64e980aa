"""bm25 as FTS5 computes it, for :mod:`~headroom.memory.adapters.sqlite.user_postings`: how words
are split, FTS5's idf and table totals, and the best visible rows of a scored user."""

from __future__ import annotations

import math
import re

import numpy as np
import numpy.typing as npt
from sqlalchemy.engine import Connection

__all__ = ["K1", "WORD_RE", "B", "bm25_idf", "fts5_totals", "top_visible", "word_text"]

K1 = 1.2
B = 0.75
WORD_RE = re.compile(r"\w+", re.UNICODE)
"""Words are runs of letters and digits: ``\\w+`` over :func:`word_text` (``_`` separates, as
in FTS5's unicode61), for stored texts and for queries
(:func:`~headroom.memory.adapters.sqlite.fts5.query_words`). ``[^\\W_]+`` means the same but
runs 3x slower."""

IntArray = npt.NDArray[np.int64]


def word_text(text: str) -> str:
    """``text`` lower-cased with ``_`` made a separator, ready for :data:`WORD_RE`."""
    return text.lower().replace("_", " ")


def top_visible(
    pks: IntArray, scores: npt.NDArray[np.float64], k: int, allowed: IntArray
) -> list[tuple[int, float]]:
    """The ``k`` best (score desc, pk asc) of ``pks`` that are in ``allowed`` (sorted) and alive
    (pk >= 0). Membership is checked best-first in growing slices, so a user with 100k matching
    rows pays for the few hundred at the top, not for all of them."""
    if allowed.size == 0 or pks.size == 0:
        return []
    take = 4 * k + 16
    while True:
        if pks.size > take:
            part = np.argpartition(-scores, take - 1)[:take]
            part = np.flatnonzero(scores >= scores[part].min())  # ties at the cut come along
        else:
            part = np.arange(pks.size)
        sub_pks, sub_scores = pks[part], scores[part]
        pos = np.searchsorted(allowed, sub_pks)
        pos[pos >= allowed.size] = 0
        keep = (sub_pks >= 0) & (allowed[pos] == sub_pks)
        if int(keep.sum()) >= k or part.size == pks.size:
            sub_pks, sub_scores = sub_pks[keep], sub_scores[keep]
            order = np.lexsort((sub_pks, -sub_scores))[:k]
            return [
                (int(p), float(s)) for p, s in zip(sub_pks[order], sub_scores[order], strict=True)
            ]
        take *= 8


def fts5_totals(conn: Connection) -> tuple[int, float]:
    """FTS5's row count and average row length in tokens over all columns, from its
    ``averages`` record (the row count, then each column's token total, as varints)."""
    row = conn.exec_driver_sql("SELECT block FROM memory_fts_data WHERE id = 1").fetchone()
    values = _varints(bytes(row[0])) if row is not None and row[0] else []
    if not values or values[0] <= 0:
        return 0, 1.0
    return values[0], sum(values[1:]) / values[0]


def _varints(data: bytes) -> list[int]:
    out: list[int] = []
    i = 0
    while i < len(data):
        value = 0
        for j in range(9):
            byte = data[i]
            i += 1
            if j == 8:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if byte < 0x80:
                break
            if i >= len(data):
                return out
        out.append(value)
    return out


def bm25_idf(rows: int, df: int) -> float:
    """FTS5's idf: log((N - n + 0.5) / (n + 0.5)), clamped to 1e-6 when not positive."""
    idf = math.log((rows - df + 0.5) / (df + 0.5)) if rows > 0 else 0.0
    return idf if idf > 0.0 else 1e-6
