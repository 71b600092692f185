"""``tlog-monitor run`` (the daemon), ``once`` (one catch-up pass, for cron and CI) and
``backfill`` (a verified range of one log, resumable).

Exit codes of ``once`` and ``backfill``: 0 when there is nothing new, 1 when new findings
were stored or a log is caught lying (an integrity failure stops it), 2 when the monitor
itself failed for any log (a log it could not read, a database error, a bad configuration):
a monitoring failure must never look like success, and 2 wins over 1 since an incomplete
check is not a complete one.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import TYPE_CHECKING

from monitor.config.load import DEFAULT_CONFIG_PATH
from monitor.escape import escape

if TYPE_CHECKING:
    from monitor.daemon.commit import PassResult

EXIT_CLEAN, EXIT_FINDINGS, EXIT_FAILED = 0, 1, 2


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run the monitor: tail every configured log until stopped")
    _common(p)
    p.set_defaults(handler=run)

    p = sub.add_parser(
        "once",
        help="one verified catch-up pass of every log, then exit (0 nothing new, "
        "1 new findings, 2 the monitor failed)",
    )
    _common(p)
    p.set_defaults(handler=once)

    p = sub.add_parser(
        "backfill",
        help="process the verified range [FROM, TO) of one log (resumable; exit codes as once)",
    )
    _common(p)
    p.add_argument("--log", required=True, help="the log's name (as in the config, or a shard)")
    p.add_argument("--from", dest="first", type=_index, required=True, metavar="I")
    p.add_argument("--to", dest="end", type=_index, required=True, metavar="J")
    p.set_defaults(handler=backfill)


def _index(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a log index (0 or more)")
    return int(text)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        default=DEFAULT_CONFIG_PATH,
        metavar="FILE",
        help=f"configuration file (default {DEFAULT_CONFIG_PATH})",
    )
    p.add_argument("--log-level", default="info", help="debug, info, warning or error")
    p.add_argument(
        "--log-format",
        choices=("auto", "json", "text"),
        default="auto",
        help="auto (default): JSON unless standard error is a terminal",
    )


def _setup(args: argparse.Namespace) -> None:
    import gc

    from monitor.daemon.logs import setup_logging

    # what is imported and configured lives as long as the process: keep the collector off
    # it, and collect the young generation less often (parsing allocates in bursts)
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)

    fmt = {"auto": None, "json": True, "text": False}[args.log_format]
    setup_logging(args.log_level, json_format=fmt)


def run(args: argparse.Namespace) -> int:
    _setup(args)
    return asyncio.run(_run(args.config))


async def _run(config: str) -> int:
    from monitor.daemon.service import Monitor

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Monitor.open(config) as monitor:
        await monitor.run(stop)
    return EXIT_CLEAN


def once(args: argparse.Namespace) -> int:
    _setup(args)
    return asyncio.run(_once(args.config))


async def _once(config: str) -> int:
    from monitor.daemon.service import Monitor

    async with Monitor.open(config) as monitor:
        results = await monitor.once(show_over=1 if sys.stderr.isatty() else 10_000)
        pending = await monitor.deliver_pending()
    codes = [_report(name, r) for name, r in sorted(results.items())]
    for sink, left in sorted(pending.items()):
        if left:  # kept in the outbox for the next run: not lost, but worth saying
            print(f"alerts: {left} waiting for sink {sink}")
    return max(codes, default=EXIT_CLEAN)


def backfill(args: argparse.Namespace) -> int:
    _setup(args)
    return asyncio.run(_backfill(args.config, args.log, args.first, args.end))


async def _backfill(config: str, name: str, first: int, end: int) -> int:
    from monitor.daemon.service import Monitor

    async with Monitor.open(config) as monitor:
        try:
            result: PassResult | Exception = await monitor.backfill(
                name, first, end, show_over=1 if sys.stderr.isatty() else 10_000
            )
        except Exception as e:
            from monitor.errors import ConfigError

            if isinstance(e, ConfigError):
                raise
            result = e
    return _report(f"{name} [{first}, {end})", result)


def _report(name: str, r: PassResult | Exception) -> int:
    """One line on standard output per log; its exit code."""
    from monitor.errors import MonitorError

    if isinstance(r, Exception):
        what = str(r) if isinstance(r, MonitorError) else f"{type(r).__name__}: {r}"
        print(escape(f"{name}: FAILED: {what}"))  # a log's answer may be quoted
        return EXIT_FAILED
    line = (
        f"{name}: {r.entries} entries, {r.findings} new findings, cursor {r.cursor} of {r.log_size}"
    )
    if r.failure is not None:
        print(escape(f"{line}; INTEGRITY FAILURE ({r.failure.type}): {r.failure.message}"))
        return EXIT_FINDINGS
    print(line)
    return EXIT_FINDINGS if r.findings else EXIT_CLEAN
