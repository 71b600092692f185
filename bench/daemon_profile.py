"""Where a profiled backfill's main thread spends its time (``bench_daemon --profile``)."""

from __future__ import annotations

import pstats
from pathlib import Path
from typing import Any

STAGES = (  # synchronous functions of the main thread, whose cumulative time cProfile gets right
    ("gzip decompress of tiles", "~", "<method 'decompress' of 'zlib.Decompress' objects>"),
    ("leaf hashes", "monitor/tlog/merkle.py", "leaf_hash"),
    ("verify_extension", "tlog/proofs.py", "verify_extension"),
    ("parse", "entries/parse.py", "parse_entry"),
    ("match (rules, chain checks)", "rules/engine.py", "evaluate"),
    ("  of which chain checks", "entries/parse.py", "with_chain_status"),
    ("index_all rows", "storage/batch.py", "from_record"),
    ("idle: awaiting network or SQLite", "~", "<method 'poll' of 'select.epoll' objects>"),
)


def profile_summary(path: Path, top: int = 12) -> str:
    """Where the monitor's main thread spends its time. SQLite itself runs in aiosqlite's
    thread, which cProfile does not see; and the store's coroutines switch greenlets, which
    confuses cumulative times: ``--breakdown`` measures the stages of a batch instead."""
    stats = pstats.Stats(str(path))
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]]
    raw = stats.stats  # type: ignore[attr-defined]
    total = stats.total_tt  # type: ignore[attr-defined]
    lines = [f"  total {total:.1f} s in the main thread (profiled, so slower than measured)"]
    lines.append("  by function (cumulative):")
    for title, file, func in STAGES:
        cum = max(
            (v[3] for (f, _, fn), v in raw.items() if fn == func and f.endswith(file)),
            default=None,
        )
        if cum is not None:
            lines.append(f"    {cum:7.1f} s {cum / total:6.1%}  {title}")
    lines.append("  by function (self time):")
    rows = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    for (file, line, func), (_, calls, tt, _, _) in rows:
        where = "" if file == "~" else f" ({file.rsplit('/', 2)[-2:][-1]}:{line})"
        lines.append(f"    {tt:7.1f} s {tt / total:6.1%}  {func}{where}  [{calls:,} calls]")
    return "\n".join(lines)
