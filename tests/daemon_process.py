"""The daemon in a process of its own, as ``tlog-monitor run`` runs it, with what tests tune:

    python -m tests.daemon_process CONFIG [--retry-base S] [--http JSON]

``--http`` is a JSON object of ``HttpPolicy`` fields that replace every log's (shorter HTTP
backoff, a shorter wait for withheld entries); ``--retry-base`` is the tailers' first backoff.
It logs JSON lines to standard error and stops on SIGTERM. Tests measure its memory and time
its API from outside, as they would a deployed daemon's.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import signal
import sys
from typing import Any

from monitor.daemon.logsetup import setup_logging
from monitor.daemon.service import Monitor
from monitor.logclient.http import HttpPolicy


async def _run(config: str, retry_base: float, http: dict[str, Any]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def tune(policy: HttpPolicy) -> HttpPolicy:
        return dataclasses.replace(policy, **http)

    async with Monitor.open(config, retry_base=retry_base, tune_http=tune) as monitor:
        await monitor.run(stop)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config")
    p.add_argument("--retry-base", type=float, default=1.0)
    p.add_argument("--http", type=json.loads, default={})
    args = p.parse_args(argv)
    # as ``tlog-monitor run`` sets the collector up (monitor.cli.daemon)
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    setup_logging("info", json_format=True)
    asyncio.run(_run(args.config, args.retry_base, args.http))
    return 0


if __name__ == "__main__":
    sys.exit(main())
