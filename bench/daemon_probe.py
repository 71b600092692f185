"""One ``once`` pass of the monitor in this process, with the time of each stage of a batch
measured (no profiler: wrappers around the stage functions): parse, match, index_all rows,
the store (awaited), and the whole commit. ``bench_daemon --breakdown`` runs it in a child.

Prints one line per log as ``tlog-monitor once`` does, then ``BREAKDOWN {json}``.

Run: .venv/bin/python -m bench.daemon_probe CONFIG
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from monitor.daemon import commit, parsing
from monitor.daemon.service import Monitor
from monitor.rules.engine import RuleEngine
from monitor.storage.batch import IndexRow
from monitor.storage.store import Store

SECONDS: defaultdict[str, float] = defaultdict(float)


def _timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SECONDS[name] += time.perf_counter() - t0

    return wrapper


def _atimed(name: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            SECONDS[name] += time.perf_counter() - t0

    return wrapper


def instrument() -> None:
    parsing.parse_entry = _timed("parse", parsing.parse_entry)  # type: ignore[attr-defined]
    RuleEngine.evaluate = _timed("match", RuleEngine.evaluate)  # type: ignore[method-assign]
    from_record = IndexRow.from_record.__func__  # type: ignore[attr-defined]
    IndexRow.from_record = classmethod(_timed("index_all rows", from_record))  # type: ignore[assignment]
    Store.store_batch = _atimed("store (awaited)", Store.store_batch)  # type: ignore[method-assign]
    commit.Committer.commit = _atimed("commit", commit.Committer.commit)  # type: ignore[method-assign]


async def probe(config: str) -> dict[str, Any]:
    async with Monitor.open(config) as monitor:
        wall0, cpu0, main0 = time.perf_counter(), time.process_time(), time.thread_time()
        results = await monitor.once(show_over=1 << 62)
        wall = time.perf_counter() - wall0
        cpu, main = time.process_time() - cpu0, time.thread_time() - main0
    entries = 0
    for name, r in sorted(results.items()):
        if isinstance(r, Exception):
            print(f"{name}: FAILED: {r}")
            continue
        entries += r.entries
        print(
            f"{name}: {r.entries} entries, {r.findings} new findings, cursor {r.cursor} of "
            f"{r.log_size}"
        )
    return {
        "entries": entries,
        "wall": wall,
        "cpu": cpu,
        "main_thread_cpu": main,
        "stages": dict(SECONDS),
    }


def main() -> int:
    instrument()
    res = asyncio.run(probe(sys.argv[1]))
    print("BREAKDOWN " + json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
