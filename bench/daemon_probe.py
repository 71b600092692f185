"""One ``once`` pass of the monitor in this process, with the time spent inside each stage of
a batch measured (no profiler: wrappers around the stage functions, wherever they exist in
this version of the daemon): parsing, matching, index_all rows, the store, the whole commit;
and the store's own steps (``Store.after_step``), its transaction's end (COMMIT: the WAL
written and synced, and any checkpoint) among them. ``bench_daemon --breakdown`` runs it in a
child process, with the collector set up as ``tlog-monitor once`` sets it up.

Stages that overlap (a store running while the next chunk is parsed) need not add up to the
wall time; "parse + match of a chunk" includes what other tasks do while the parse lets the
event loop run between slices (the store's last steps, fetches); work done in worker
processes is not seen by the wrappers, only as their CPU.

Prints one line per log as ``tlog-monitor once`` does, then ``BREAKDOWN {json}``.

Run: .venv/bin/python -m bench.daemon_probe CONFIG
"""

from __future__ import annotations

import asyncio
import functools
import gc
import importlib
import inspect
import json
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

SECONDS: defaultdict[str, float] = defaultdict(float)

# (module, class or None, attribute, stage); missing ones are skipped
TARGETS = (
    ("monitor.daemon.parsing", None, "parse_entry", "parse"),
    ("monitor.rules.engine", "RuleEngine", "evaluate", "match"),
    ("monitor.storage.batch", "IndexRow", "from_record", "index_all rows"),
    ("monitor.daemon.writer", None, "parse_chunk", "parse + match of a chunk"),
    ("monitor.storage.store", "Store", "store_batch", "store"),
    ("monitor.daemon.writer", "BatchWriter", "entries", "commit (awaited by the pass)"),
)


def _timed(stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def awrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                SECONDS[stage] += time.perf_counter() - t0

        return awrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SECONDS[stage] += time.perf_counter() - t0

    return wrapper


STEP_PREFIX = "store step: "
_step_clock = [0.0]  # when the store's current step began


def _store_steps(store: Any) -> None:
    """Time each step of ``store_batch`` (the test hook ``after_step``), and its end."""

    def step(name: str) -> None:
        now = time.perf_counter()
        SECONDS[STEP_PREFIX + name] += now - _step_clock[0]
        _step_clock[0] = now

    run = store.store_batch

    @functools.wraps(run)
    async def store_batch(*args: Any, **kwargs: Any) -> Any:
        _step_clock[0] = time.perf_counter()
        try:
            return await run(*args, **kwargs)
        finally:
            step("transaction end (COMMIT)")

    store.after_step = step
    store.store_batch = store_batch


def instrument() -> list[str]:
    """Wrap every target that exists (once, in the class that defines it); what was wrapped."""
    done: list[str] = []
    for module_name, class_name, attr, stage in TARGETS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        owner: Any = module
        if class_name is not None:
            cls = getattr(module, class_name, None)
            owner = next((c for c in getattr(cls, "__mro__", ()) if attr in vars(c)), None)
        if owner is None:
            continue
        raw = vars(owner).get(attr)
        where = f"{getattr(owner, '__qualname__', module_name)}.{attr}"
        if raw is None or where in done:
            continue
        if isinstance(raw, classmethod):
            setattr(owner, attr, classmethod(_timed(stage, raw.__func__)))
        elif callable(raw):
            setattr(owner, attr, _timed(stage, raw))
        else:
            continue
        done.append(where)
    return done


async def probe(config: str) -> dict[str, Any]:
    from monitor.daemon.service import Monitor  # noqa: PLC0415 - after instrument()

    async with Monitor.open(config) as monitor:
        _store_steps(monitor.store)
        wall0, cpu0, main0 = time.perf_counter(), time.process_time(), time.thread_time()
        results = await monitor.once(show_over=1 << 62)
        wall = time.perf_counter() - wall0
        cpu, main = time.process_time() - cpu0, time.thread_time() - main0
    # worker processes, if any, have been waited for once the monitor is closed
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
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
        "worker_cpu": children.ru_utime + children.ru_stime,
        "stages": dict(SECONDS),
    }


def main() -> int:
    # as the CLI does before a pass (monitor/cli/daemon.py), so that the collector costs here
    # what it costs there
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    wrapped = instrument()
    res = asyncio.run(probe(sys.argv[1]))
    res["instrumented"] = wrapped
    print("BREAKDOWN " + json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
