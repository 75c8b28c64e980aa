"""The Mem0 side of ``peer_mem0.py``: runs inside ``benchmarks/.venv-mem0`` (stdlib + mem0 only).

``python _mem0_worker.py MODE CFG_JSON`` prints one JSON line. Modes:

* ``workload`` - fill the store (all but the last ``timed_adds`` facts, see :func:`fill`), then
  ``timed_adds`` public ``add(infer=False)`` calls, then one search per user (its first), then
  the timed searches (each followed by the same query's embedding alone, so the search cost
  beyond the embedding can be computed);
* ``cold`` - open the existing store and answer one search (time from before ``import mem0``);
* ``locomo`` - store every turn (one user per conversation, ``dia_id`` in metadata) and return the
  ``dia_id`` of each question's results, with ``top_k`` and with a large ``top_k`` cut to ``top_k``.

Peak RSS is ``ru_maxrss`` of this process.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any

T0 = time.perf_counter()


def open_memory(cfg: dict) -> Any:
    from mem0 import Memory

    return Memory.from_config(
        {
            "embedder": {
                "provider": "huggingface",
                "config": {"model": cfg["model_path"], "embedding_dims": 384},
            },
            "vector_store": {
                "provider": "faiss",
                "config": {
                    "collection_name": "bench",
                    "path": os.path.join(cfg["dir"], "faiss"),
                    "embedding_model_dims": 384,
                    "distance_strategy": "cosine",
                },
            },
            "history_db_path": os.path.join(cfg["dir"], "history.db"),
        }
    )


def fill(m: Any, items: list[tuple[str, str, dict]]) -> float:
    """Store ``(text, user, metadata)`` items through the public ``add(infer=False)``, faster.

    Same payloads as plain ``add`` calls, two shortcuts: the texts are embedded in batches by the
    embedder's own ``embed_batch`` (its ``embed`` is answered from that table), and
    the FAISS store's ``_save`` (which rewrites the whole index and JSON docstore after every
    insert, so n adds cost O(n^2)) runs once at the end. Returns the seconds taken.
    """
    t = time.perf_counter()
    if not items:
        return 0.0
    texts = list(dict.fromkeys(text for text, _u, _m in items))
    table: dict[str, list[float]] = {}
    for start in range(0, len(texts), 256):
        chunk = texts[start : start + 256]
        table.update(zip(chunk, m.embedding_model.embed_batch(chunk), strict=True))
    embed, save = m.embedding_model.embed, m.vector_store._save
    m.embedding_model.embed = lambda text, memory_action=None: table[text]
    m.vector_store._save = lambda: None
    try:
        for text, user, meta in items:
            m.add(text, user_id=user, infer=False, metadata=meta or None)
    finally:
        m.embedding_model.embed, m.vector_store._save = embed, save
    save()
    return time.perf_counter() - t


def ms_since(t: float) -> float:
    return (time.perf_counter() - t) * 1000


def workload(cfg: dict) -> dict:
    m = open_memory(cfg)
    facts, users, timed = cfg["facts"], cfg["users"], cfg["timed_adds"]
    cut = len(facts) - timed
    fill_s = fill(m, [(f, f"user{i % users}", {}) for i, f in enumerate(facts[:cut])])
    add_one = []
    t_all = time.perf_counter()
    for i in range(cut, len(facts)):
        t = time.perf_counter()
        m.add(facts[i], user_id=f"user{i % users}", infer=False)
        add_one.append(ms_since(t))
    seq_s = time.perf_counter() - t_all
    first = []  # each user's first search, as on the Headroom side
    for u in range(users):
        t = time.perf_counter()
        m.search(cfg["warmup"], filters={"user_id": f"user{u}"}, top_k=10, threshold=0.0)
        first.append(ms_since(t))
    search, embed, returned = [], [], []
    for i, q in enumerate(cfg["queries"]):
        t = time.perf_counter()
        res = m.search(q, filters={"user_id": f"user{i % users}"}, top_k=10, threshold=0.0)
        search.append(ms_since(t))
        t = time.perf_counter()
        m.embedding_model.embed(q, "search")
        embed.append(ms_since(t))
        returned.append(len(res["results"]))
    return {
        "fill_s": fill_s,
        "add_one": add_one,
        "sequential_per_s": timed / seq_s if seq_s else 0.0,
        "first_search": first,
        "search": search,
        "embed": embed,
        "returned": returned,
    }


def cold(cfg: dict) -> dict:
    m = open_memory(cfg)
    res = m.search(cfg["queries"][0], filters={"user_id": "user0"}, top_k=10, threshold=0.0)
    return {"first_result_s": time.perf_counter() - T0, "returned": len(res["results"])}


def locomo(cfg: dict) -> dict:
    m = open_memory(cfg)
    fill_s = fill(m, [(text, user, {"dia_id": dia}) for user, text, dia in cfg["turns"]])
    top_k = cfg["top_k"]
    got: list[list[str]] = []
    got_wide: list[list[str]] = []
    for user, question in cfg["questions"]:
        for k, out in ((top_k, got), (cfg["wide_k"], got_wide)):
            res = m.search(question, filters={"user_id": user}, top_k=k, threshold=0.0)
            out.append(
                [str((r.get("metadata") or {}).get("dia_id")) for r in res["results"]][:top_k]
            )
    return {"fill_s": fill_s, "retrieved": got, "retrieved_wide": got_wide}


def main() -> None:
    mode, path = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as fh:
        cfg = json.load(fh)
    out = {"workload": workload, "cold": cold, "locomo": locomo}[mode](cfg)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


if __name__ == "__main__":
    main()
