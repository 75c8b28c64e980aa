"""Block parser benchmark: streaming ``<memory>`` stripping is linear in the reply's size.

For each size it times the stripper over (a) a reply carrying one block of that size, fed in
4-character chunks, (b) that many whitespace characters between two words, fed 1 character at a
time, (c) that many ``"`` characters inside a block in 4-character chunks, and (d) the whole reply
at once (``split_memory_block``). Time per KB stays flat as the size grows when the work is linear
(issue #11 measured 4.4 s for (a) and 13.4 s for (b) at 400 KB before the rewrite).

    python benchmarks/block_parser.py [--quick]

Prints a table and writes ``benchmarks/results/block_parser.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

from headroom.inline.extraction import StreamingMemoryStripper, split_memory_block

RESULTS = Path(__file__).resolve().parent / "results" / "block_parser.json"


def _stream(chunks: list[str]) -> str:
    stripper = StreamingMemoryStripper()
    out = [stripper.feed(c) for c in chunks]
    out.append(stripper.finish())
    return "".join(out)


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(size: int) -> dict[str, float]:
    payload = json.dumps({"memories": [{"content": "x" * size}]})
    block = "Hi.<memory>" + payload + "</memory> bye"
    spaces = "a" + " " * size + "b"
    quotes = "<memory>" + '"' * size + "</memory>"
    return {
        "size_kb": size / 1000,
        "block_4char_s": _timed(lambda: _stream(_chunks(block, 4))),
        "whitespace_1char_s": _timed(lambda: _stream(list(spaces))),
        "quotes_4char_s": _timed(lambda: _stream(_chunks(quotes, 4))),
        "whole_s": _timed(lambda: split_memory_block(block)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes up to 100 KB only")
    args = parser.parse_args()
    sizes = [25_000, 50_000, 100_000] if args.quick else [50_000, 100_000, 200_000, 400_000]
    rows = [measure(size) for size in sizes]
    print(
        f"{'KB':>6} {'block/4ch s':>12} {'ws/1ch s':>10} {'quotes/4ch s':>13} {'whole s':>8}  us/KB(a,b)"
    )
    for r in rows:
        per = (
            1e6 * r["block_4char_s"] / r["size_kb"],
            1e6 * r["whitespace_1char_s"] / r["size_kb"],
        )
        print(
            f"{r['size_kb']:>6.0f} {r['block_4char_s']:>12.3f} {r['whitespace_1char_s']:>10.3f} "
            f"{r['quotes_4char_s']:>13.3f} {r['whole_s']:>8.3f}  {per[0]:.0f}, {per[1]:.0f}"
        )
    first, last = rows[0], rows[-1]
    growth = last["size_kb"] / first["size_kb"]
    ratios = {
        k: last[k] / first[k] for k in ("block_4char_s", "whitespace_1char_s", "quotes_4char_s")
    }
    print(f"size x{growth:.0f} -> time x " + ", ".join(f"{k}={v:.1f}" for k, v in ratios.items()))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"machine": platform.platform(), "rows": rows, "time_growth": ratios,
                    "size_growth": growth}, indent=2) + "\n",
        encoding="utf-8",
    )  # fmt: skip


if __name__ == "__main__":
    main()
