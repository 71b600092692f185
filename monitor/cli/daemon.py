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
import json
import signal
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monitor.cli.options import add_config, add_json
from monitor.core.escape import escape

if TYPE_CHECKING:
    from monitor.daemon.context import PassResult

EXIT_CLEAN, EXIT_FINDINGS, EXIT_FAILED = 0, 1, 2


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run",
        help="run the monitor: tail every configured log until stopped",
        description="Run the monitor: tail every configured log, verify and match every "
        "entry, store findings and deliver alerts, and serve the API and /metrics, until "
        "SIGTERM or Ctrl-C. Logs go to standard error.",
    )
    _common(p)
    p.set_defaults(handler=run)

    p = sub.add_parser(
        "once",
        help="one verified catch-up pass of every log, then exit (0 nothing new, "
        "1 new findings, 2 the monitor failed)",
        description="One verified catch-up pass of every configured log, then deliver what "
        "is due and exit: 0 when there is nothing new, 1 when new findings were stored or a "
        "log was caught lying, 2 when the monitor failed for a log. One line per log on "
        "standard output (--json: one document).",
    )
    _common(p)
    add_json(p)
    p.set_defaults(handler=once)

    p = sub.add_parser(
        "backfill",
        help="process the verified range [FROM, TO) of one log (resumable; exit codes as once)",
        description="Process the verified range [I, J) of one log, apart from its tailing "
        "cursor: entries logged before the monitor began watching it. Resumes where an "
        "interrupted backfill stopped. Exit codes as `once`.",
    )
    _common(p)
    p.add_argument("--log", required=True, help="the log's name (as in the config, or a shard)")
    p.add_argument(
        "--from",
        dest="first",
        type=_index,
        required=True,
        metavar="I",
        help="the first index to process",
    )
    p.add_argument(
        "--to",
        dest="end",
        type=_index,
        required=True,
        metavar="J",
        help="the index to stop before (not processed)",
    )
    add_json(p)
    p.set_defaults(handler=backfill)


def _index(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a log index (0 or more)")
    return int(text)


def _common(p: argparse.ArgumentParser) -> None:
    add_config(p)
    p.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="the least level logged (default info)",
    )
    p.add_argument(
        "--log-format",
        choices=("auto", "json", "text"),
        default="auto",
        help="auto (default): JSON lines unless standard error is a terminal",
    )


def _setup(args: argparse.Namespace) -> None:
    import gc

    from monitor.daemon.logsetup import setup_logging

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
    return asyncio.run(_once(args.config, args.json))


async def _once(config: str, as_json: bool) -> int:
    from monitor.daemon.service import Monitor

    async with Monitor.open(config) as monitor:
        results = await monitor.once(show_over=1 if sys.stderr.isatty() else 10_000)
        pending = await monitor.deliver_pending()
    reports = [_report(name, r) for name, r in sorted(results.items())]
    waiting = {sink: left for sink, left in sorted(pending.items()) if left}
    code = max((r.exit for r in reports), default=EXIT_CLEAN)
    if as_json:
        doc = {"logs": [r.doc for r in reports], "alerts_waiting": waiting, "exit": code}
        print(json.dumps(doc, indent=2))
        return code
    for r in reports:
        print(escape(r.line))  # a log's answer may be quoted
    for sink, left in waiting.items():  # kept in the outbox for the next run: not lost
        print(f"alerts: {left} waiting for sink {sink}")
    return code


def backfill(args: argparse.Namespace) -> int:
    _setup(args)
    return asyncio.run(_backfill(args.config, args.log, args.first, args.end, args.json))


async def _backfill(config: str, name: str, first: int, end: int, as_json: bool) -> int:
    from monitor.daemon.service import Monitor

    async with Monitor.open(config) as monitor:
        try:
            result: PassResult | Exception = await monitor.backfill(
                name, first, end, show_over=1 if sys.stderr.isatty() else 10_000
            )
        except Exception as e:
            from monitor.core.errors import ConfigError

            if isinstance(e, ConfigError):
                raise
            result = e
    report = _report(f"{name} [{first}, {end})", result)
    if as_json:
        doc = {**report.doc, "log": name, "from": first, "to": end, "exit": report.exit}
        print(json.dumps(doc, indent=2))
    else:
        print(escape(report.line))
    return report.exit


@dataclass(frozen=True)
class Report:
    """One log's pass: a line for people, a document for programs, an exit code."""

    line: str
    doc: dict[str, Any]
    exit: int


def _report(name: str, r: PassResult | Exception) -> Report:
    from monitor.core.errors import LeaseLostError, MonitorError

    if isinstance(r, LeaseLostError):  # another replica leads it: its work, not a failure
        skipped = {"log": name, "ok": True, "skipped": str(r)}
        return Report(f"{name}: skipped: {r}", skipped, EXIT_CLEAN)
    if isinstance(r, Exception):
        what = str(r) if isinstance(r, MonitorError) else f"{type(r).__name__}: {r}"
        failed = {"log": name, "ok": False, "error": what}
        return Report(f"{name}: FAILED: {what}", failed, EXIT_FAILED)
    line = (
        f"{name}: {r.entries} entries, {r.findings} new findings, cursor {r.cursor} of {r.log_size}"
    )
    doc: dict[str, Any] = {
        "log": name,
        "ok": True,
        "entries": r.entries,
        "new_findings": r.findings,
        "cursor": r.cursor,
        "log_size": r.log_size,
        "integrity_failure": None,
    }
    if r.failure is not None:
        doc["integrity_failure"] = {"type": str(r.failure.type), "message": r.failure.message}
        line += f"; INTEGRITY FAILURE ({r.failure.type}): {r.failure.message}"
        return Report(line, doc, EXIT_FINDINGS)
    return Report(line, doc, EXIT_FINDINGS if r.findings else EXIT_CLEAN)
