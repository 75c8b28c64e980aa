"""The Headroom side of ``peer_mem0.py``, in its own process (the same modes as _mem0_worker.py).

``python _headroom_worker.py MODE CFG_JSON`` prints one JSON line. Default ``MemoryConfig``
(ONNX int8 MiniLM) with the search cache off. Peak RSS is ``ru_maxrss`` of this process.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

T0 = time.perf_counter()


def open_memory(cfg: dict, name: str = "h.db") -> Any:
    from headroom.memory import HierarchicalMemory, MemoryConfig

    config = MemoryConfig(db_path=Path(cfg["dir"]) / name, cache_enabled=False)
    return HierarchicalMemory.create_sync(config)


def ms_since(t: float) -> float:
    return (time.perf_counter() - t) * 1000


def workload(cfg: dict) -> dict:
    hm = open_memory(cfg)
    emb = hm._engine.embedder  # benchmark only: the query embedding alone, to subtract
    facts, users, timed = cfg["facts"], cfg["users"], cfg["timed_adds"]
    cut = len(facts) - timed
    t = time.perf_counter()
    for start in range(0, cut, 1000):
        hm.sync.add_batch(
            [
                {"content": facts[i], "user_id": f"user{i % users}"}
                for i in range(start, min(start + 1000, cut))
            ]
        )
    batch_s = time.perf_counter() - t
    add_one = []
    for i in range(cut, len(facts)):
        t = time.perf_counter()
        hm.sync.add(facts[i], f"user{i % users}")
        add_one.append(ms_since(t))
    first = []  # each user's first search (builds its in-memory structures), then the timed ones
    for u in range(users):
        t = time.perf_counter()
        hm.sync.search(cfg["warmup"], f"user{u}", top_k=10)
        first.append(ms_since(t))
    search, embed, returned = [], [], []
    for i, q in enumerate(cfg["queries"]):
        t = time.perf_counter()
        res = hm.sync.search(q, f"user{i % users}", top_k=10)
        search.append(ms_since(t))
        t = time.perf_counter()
        emb.embed([q])
        embed.append(ms_since(t))
        returned.append(len(res))
    hm.sync.close()
    return {
        "batch_per_s": cut / batch_s if batch_s else 0.0,
        "add_one": add_one,
        "first_search": first,
        "search": search,
        "embed": embed,
        "returned": returned,
    }


def cold(cfg: dict) -> dict:
    hm = open_memory(cfg)
    res = hm.sync.search(cfg["queries"][0], "user0", top_k=10)
    out = {"first_result_s": time.perf_counter() - T0, "returned": len(res)}
    hm.sync.close()
    return out


def locomo(cfg: dict) -> dict:
    """Retrieved ``dia_id`` lists of every dev question, turns stored two ways (see peer_mem0)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from locomo_retrieval import (
        CachedEmbedder,
        _Unclosed,
        build_memories,
        load_samples,
        questions_of,
    )

    from headroom.memory import HierarchicalMemory, MemoryConfig
    from headroom.memory.factory import create_embedder

    samples = load_samples(cfg["data"])
    questions = [q for s in samples for q in questions_of(s)]
    base = MemoryConfig(cache_enabled=False)
    # one embedder for both stores: a turn's vector is computed once (in-memory cache)
    emb = CachedEmbedder(create_embedder(base), Path(cfg["dir"]) / "emb-cache")
    emb.save = lambda: None  # type: ignore[method-assign]  # keep it in memory only
    out: dict = {}
    try:
        for name, context, entities in (
            ("recommended", "previous", True),
            ("plain", "none", False),
        ):
            hm = HierarchicalMemory.create_sync(
                base.with_overrides(db_path=Path(cfg["dir"]) / f"locomo-{name}.db"),
                embedder=_Unclosed(emb),
            )
            try:
                for s in samples:
                    hm.sync.add_batch(build_memories(s, context=context, entities=entities))
                out[name] = [
                    [str(r.memory.metadata.get("dia_id")) for r in hm.sync.search(q.question, q.sample_id, top_k=cfg["top_k"])]
                    for q in questions
                ]  # fmt: skip
            finally:
                hm.sync.close()
    finally:
        emb.close()
    return {"retrieved": out}


def main() -> None:
    mode, path = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as fh:
        cfg = json.load(fh)
    out = {"workload": workload, "cold": cold, "locomo": locomo}[mode](cfg)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


if __name__ == "__main__":
    main()
