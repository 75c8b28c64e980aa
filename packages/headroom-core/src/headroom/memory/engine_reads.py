"""The read path of :class:`~headroom.memory.engine.MemoryEngine`: get, history, query, hybrid search, stats.

Search is filter-before-rank: the text index is queried with the visibility filter, the vector
index only over the ids the filter allows, and the two rankings are fused (see
:mod:`headroom.memory.ranking`). Results are cached per query and invalidated by the store's
change sequence, so writes by other processes invalidate them too.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .config import MemoryConfig
from .errors import AccessDeniedError, MemoryNotFoundError, ValidationError
from .models import Memory, SearchResult, utcnow
from .ports import (
    Embedder,
    FloatArray,
    MemoryCache,
    MemoryFilter,
    TextIndex,
    VectorFilter,
    VectorIndex,
)
from .query_analysis import boost_named_entities
from .ranking import apply_boosts, fuse_rankings
from .validation import check_id, check_optional_id

__all__ = ["EngineReads"]

_MIN_TEXT_EVIDENCE = 1e-4
_MAX_EMBED_QUERY_CHARS = 8192
"""Only the start of a huge query is embedded and read for cues (entity names, dates): local
models stop at 256-512 tokens anyway, and scanning 100 KB in Python would take the interpreter
from every other caller's search."""
_PKS_CACHE_FILTERS = 256
_PKS_CACHE_IDS = 2_000_000  # at most ~16 MB of cached row ids


def _search_key(query: str, f: MemoryFilter, top_k: int, min_similarity: float, mode: str) -> str:
    return f"search:{mode}:{top_k}:{min_similarity}:{query}:{f!r}"


class EngineReads:
    """Reads and search; mixed into MemoryEngine, which owns the store, indexes and cache."""

    config: MemoryConfig
    store: Any
    embedder: Embedder
    vector_index: VectorIndex | None
    text_index: TextIndex | None
    cache: MemoryCache | None
    _cache_seq: int
    _pks_cache: OrderedDict[str, tuple[str | None, npt.NDArray[np.int64]]]
    _pks_seq: int  # the store sequence the row-id cache is valid at
    _visible_text: bool  # the text index ranks within the allowed rows (VisibleSetTextIndex)
    _reads_lock: threading.Lock  # guards the caches below (set by MemoryEngine)
    _index_lock: threading.RLock  # applying changes to / searching the vector index

    def sync_index(self, seq: int | None = None) -> None:  # implemented by MemoryEngine
        raise NotImplementedError

    def _embed(self, texts: Sequence[str]) -> FloatArray:  # implemented by MemoryEngine
        raise NotImplementedError

    # -- reads ---------------------------------------------------------------------------------

    def _check_cache(self, seq: int | None = None) -> int:
        """Invalidate the cache if the store moved past ``seq`` (read now when not given);
        returns the sequence, for :meth:`_cache_put`."""
        assert self.cache is not None
        if seq is None:
            seq = int(self.store.current_seq())
        with self._reads_lock:
            if seq != self._cache_seq:
                self.cache.invalidate()
                self._cache_seq = seq
        return seq

    def _cache_put(self, key: str, value: Any, seq: int) -> None:
        """Cache ``value``, computed from the store at ``seq`` or later, unless another thread
        has moved the cache on since (a slow read must not cache what a write replaced)."""
        assert self.cache is not None
        with self._reads_lock:
            if self._cache_seq == seq:
                self.cache.put(key, value)

    def get(self, memory_id: str, user_id: str | None = None) -> Memory | None:
        check_id(memory_id, "memory_id")
        check_optional_id(user_id, "user_id")
        memory = None
        seq = -1
        if self.cache is not None:
            seq = self._check_cache()
            memory = self.cache.get("id:" + memory_id)
        if memory is None:
            memory = self.store.get(memory_id, **self._by_user(user_id))
            if memory is None and self._by_user(user_id):  # another user's, or missing?
                memory = self.store.get(memory_id)
            if memory is not None and self.cache is not None:
                self._cache_put("id:" + memory_id, memory, seq)
        if memory is not None and user_id is not None and memory.user_id != user_id:
            raise AccessDeniedError(f"memory {memory_id!r} belongs to another user")
        return memory

    def _by_user(self, user_id: str | None) -> dict[str, str]:
        """``user_id=`` for a store that routes look-ups by id to the owner (sharding)."""
        if user_id is None or not getattr(self.store, "routes_by_user", False):
            return {}
        return {"user_id": user_id}

    def require(self, memory_id: str, user_id: str | None = None) -> Memory:
        memory = self.get(memory_id, user_id)
        if memory is None:
            raise MemoryNotFoundError(f"no memory with id {memory_id!r}")
        return memory

    def history(self, memory_id: str, user_id: str | None = None) -> list[Memory]:
        """The whole supersession chain containing ``memory_id``, oldest first."""
        start = self.require(memory_id, user_id)
        chain = [start]
        seen = {start.id}
        cur = start
        while cur.supersedes and cur.supersedes not in seen:
            prev = self.store.get(cur.supersedes, **self._by_user(start.user_id))
            if prev is None or prev.user_id != start.user_id:
                break
            chain.insert(0, prev)
            seen.add(prev.id)
            cur = prev
        cur = start
        while cur.superseded_by and cur.superseded_by not in seen:
            nxt = self.store.get(cur.superseded_by, **self._by_user(start.user_id))
            if nxt is None or nxt.user_id != start.user_id:
                break
            chain.append(nxt)
            seen.add(nxt.id)
            cur = nxt
        return chain

    def query(self, f: MemoryFilter) -> list[Memory]:
        if f.limit is not None and f.limit < 0:
            raise ValidationError("limit must be >= 0")
        return self.store.query(f)

    def count(self, f: MemoryFilter) -> int:
        return int(self.store.count(f))

    def search(
        self,
        query: str,
        f: MemoryFilter,
        *,
        top_k: int,
        min_similarity: float,
        mode: str,
    ) -> list[SearchResult]:
        if not isinstance(query, str):
            raise ValidationError("query must be a string")
        check_id(f.user_id, "user_id")
        if top_k <= 0:
            raise ValidationError("top_k must be positive")
        if mode not in ("hybrid", "semantic", "text"):
            raise ValidationError("mode must be 'hybrid', 'semantic' or 'text'")
        if not query.strip():
            return []
        key = None
        seq = int(self.store.current_seq())  # read once per search, shared by every step
        if self.cache is not None:
            self._check_cache(seq)
            key = _search_key(query, f, top_k, min_similarity, mode)
            cached = self.cache.get(key)
            if cached is not None:
                return list(cached)
        results = self._search_uncached(
            query, f, top_k=top_k, min_similarity=min_similarity, mode=mode, seq=seq
        )
        if self.cache is not None and key is not None:
            self._cache_put(key, results, seq)
        return results

    def cached_search(
        self, query: str, f: MemoryFilter, *, top_k: int, min_similarity: float, mode: str
    ) -> list[SearchResult] | None:
        """The cached results of this (validated) search if the store has not changed since they
        were computed, else None. Cheap enough for the caller's own thread (a lock, a
        ``PRAGMA data_version`` on SQLite, a dict look-up): a repeated search skips the hop to a
        reader thread."""
        if self.cache is None or not query.strip():
            return None
        self._check_cache(int(self.store.current_seq()))
        cached = self.cache.get(_search_key(query, f, top_k, min_similarity, mode))
        return None if cached is None else list(cached)

    def _allowed_pks(self, f: MemoryFilter, seq: int | None) -> npt.NDArray[np.int64]:
        """The primary keys ``f`` allows (sorted), cached per filter.

        Entries are valid at ``_pks_seq``. When the store has moved on, stores that can say which
        users' rows changed since (``touched_since``) let the entries of every other user live
        on, so one user's writes do not make everybody re-read their row ids; otherwise the
        cache starts over. ``seq`` is the sequence this search already read, if any."""
        if seq is None:
            seq = int(self.store.current_seq())
        if seq != self._pks_seq:
            self._advance_pks_cache(seq)
        key = repr(f)
        with self._reads_lock:
            hit = self._pks_cache.get(key)
            if hit is not None and self._pks_seq == seq:
                self._pks_cache.move_to_end(key)
                return hit[1]
        allowed = np.sort(np.asarray(self.store.matching_pks(f), dtype=np.int64))
        with self._reads_lock:
            cache = self._pks_cache
            if self._pks_seq != seq:  # read before another thread moved the cache on
                return allowed
            cache[key] = (f.user_id, allowed)
            cache.move_to_end(key)
            total = sum(v[1].size for v in cache.values())
            while len(cache) > 1 and (total > _PKS_CACHE_IDS or len(cache) > _PKS_CACHE_FILTERS):
                _, (_, dropped) = cache.popitem(last=False)
                total -= dropped.size
        return allowed

    def _advance_pks_cache(self, seq: int) -> None:
        """Move the row-id cache from ``_pks_seq`` to the store's present, dropping the entries
        of users whose rows changed (or that held a deleted row)."""
        old = self._pks_seq
        touched_since = getattr(self.store, "touched_since", None)
        touched = touched_since(old) if touched_since is not None and old >= 0 else None
        with self._reads_lock:
            if self._pks_seq != old:
                return  # another thread moved it meanwhile
            if touched is None:
                self._pks_cache.clear()
                self._pks_seq = seq
                return
            now, users, deleted = touched
            for key, (user, allowed) in list(self._pks_cache.items()):
                if (
                    user is None
                    or user in users
                    or (deleted.size and np.isin(deleted, allowed, assume_unique=True).any())
                ):
                    del self._pks_cache[key]
            self._pks_seq = now

    def _similarities(
        self, qvec: FloatArray, pks: list[int], user_id: str | None
    ) -> dict[int, float]:
        """Cosine similarity of the query to memories the vector side did not rank: from the
        vector index's own copies when it has them, else from the store's."""
        from_index = getattr(self.vector_index, "similarities", None)
        sims: dict[int, float] = {}
        if from_index is not None:
            with self._index_lock:
                sims = from_index(qvec, pks)
        rest = [pk for pk in pks if pk not in sims]
        if rest:
            for pk, vec in self.store.get_vectors(rest, **self._by_user(user_id)).items():
                sims[pk] = float(np.dot(vec, qvec))
        return sims

    def _search_uncached(
        self,
        query: str,
        f: MemoryFilter,
        *,
        top_k: int,
        min_similarity: float,
        mode: str,
        seq: int | None,
    ) -> list[SearchResult]:
        cfg = self.config
        if self.vector_index is None:
            mode = "text"
        if self.text_index is None:
            mode = "semantic"
        pool = top_k if mode == "semantic" else max(top_k, cfg.hybrid_candidates)
        text_hits: list[tuple[int, float]] = []
        vector_hits: list[tuple[int, float]] = []
        qvec = None
        allowed = None
        visible_text = self._visible_text
        if mode != "text" or visible_text:
            allowed = self._allowed_pks(f, seq)
            if len(allowed) == 0:
                return []
        if mode != "semantic":
            assert self.text_index is not None
            k_text = pool if mode == "hybrid" else top_k
            if visible_text and allowed is not None:
                text_hits = self.text_index.search_visible(query, k_text, f, allowed)  # type: ignore[attr-defined]
            else:
                text_hits = self.text_index.search(query, k_text, f)
            if mode == "hybrid":
                # bm25 gives ~0 to rows matching only terms found in most rows (FTS5 clamps their
                # idf to 1e-6): such rows carry no keyword evidence, so fusion must not rank them.
                text_hits = [hit for hit in text_hits if hit[1] > _MIN_TEXT_EVIDENCE]
        if mode != "text":
            assert self.vector_index is not None
            assert allowed is not None
            qvec = self._embed([query[:_MAX_EMBED_QUERY_CHARS]])[0]
            with self._index_lock:  # never search an index another thread is changing
                self.sync_index(seq)
                vector_hits = self.vector_index.search(
                    qvec, pool, VectorFilter(allowed_ids=allowed, user_id=f.user_id)
                )
        ranked: list[tuple[int, float, float, int | None, int | None]]
        if mode == "text":
            top = text_hits[0][1] if text_hits else 1.0
            ranked = [(pk, score, score / top if top > 0 else 0.0, i + 1, None)
                      for i, (pk, score) in enumerate(text_hits)]  # fmt: skip
        elif mode == "semantic":
            ranked = [(pk, sim, sim, None, i + 1) for i, (pk, sim) in enumerate(vector_hits)]
        else:
            fused = fuse_rankings(
                text_hits, vector_hits,
                text_weight=cfg.hybrid_text_weight, vector_weight=cfg.hybrid_vector_weight,
                rrf_k=cfg.rrf_k,
            )  # fmt: skip
            sims = dict(vector_hits)
            missing = [c.pk for c in fused if c.pk not in sims]
            if missing and qvec is not None:
                sims.update(self._similarities(qvec, missing, f.user_id))
            ranked = [
                (c.pk, c.score, sims.get(c.pk, 0.0), c.text_rank, c.vector_rank) for c in fused
            ]
        if mode != "text":
            ranked = [r for r in ranked if r[2] >= min_similarity]
        memories = self.store.get_by_pks(
            [r[0] for r in ranked[: max(top_k * 3, top_k + 10)]], **self._by_user(f.user_id)
        )
        now = utcnow()
        results = []
        for pk, score, sim, trank, vrank in ranked:
            memory = memories.get(pk)
            if memory is None:
                continue  # deleted meanwhile
            boosted = apply_boosts(
                score, importance=memory.importance, valid_from=memory.valid_from, now=now,
                importance_weight=cfg.importance_weight,
                recency_half_life_days=cfg.recency_half_life_days,
            )  # fmt: skip
            results.append(SearchResult(memory, float(sim), float(boosted), trank, vrank))
        # -- query analysis (headroom.memory.query_analysis): the one reordering step after fusion
        if mode == "hybrid":
            results = boost_named_entities(
                query[:_MAX_EMBED_QUERY_CHARS], results,  # cues from what is embedded too
                entity_boost=cfg.entity_boost, date_boost=cfg.date_boost,
            )  # fmt: skip
        results.sort(key=lambda r: -r.score)
        return results[:top_k]

    def stats(self, user_id: str | None = None) -> dict[str, Any]:
        if user_id is not None:
            check_id(user_id, "user_id")
        data: dict[str, Any] = self.store.stats(user_id)
        data["vector_index_size"] = len(self.vector_index) if self.vector_index is not None else 0
        data["embedder_model"] = self.embedder.model_name
        data["dimension"] = self.embedder.dimension
        return data
