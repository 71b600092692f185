"""``tlog-monitor demo``: the offline demo (``make demo``)."""

from __future__ import annotations

import argparse
import asyncio
import functools
from pathlib import Path

DEFAULT_CONFIG = "config/demo.yaml"  # = monitor.demo.run.DEFAULT_CONFIG
DEFAULT_PORT = 9464  # = monitor.demo.layout.DEFAULT_PORT


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="offline demo: a simulated growing log, the monitor, and a webhook receiver",
        description=(
            "Run the simulator (a Rekor v1 and a Rekor v2 log, growing), the monitor with "
            "the demo configuration, and a webhook receiver that checks and prints each "
            "alert, on this host only. Entries that the demo's rules catch are planted in "
            "the logs as it runs. Writes only under .demo/ in the working directory (a "
            "fresh database every time). Ctrl-C stops it."
        ),
    )
    p.add_argument(
        "--config",
        type=Path,
        default=Path(DEFAULT_CONFIG),
        metavar="FILE",
        help=f"the demo configuration (default {DEFAULT_CONFIG})",
    )
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"the API and metrics port (default {DEFAULT_PORT}); the simulator and the "
        "receiver take the next two",
    )
    p.add_argument(
        "--duration", type=float, metavar="SECONDS", help="stop by itself after this long"
    )
    p.add_argument(
        "--trust-only",
        action="store_true",
        help="write the simulator's trust files under .demo/trust and exit "
        "(what check-config needs to check the demo configuration)",
    )
    p.add_argument(
        "--log-level",
        default="warning",
        choices=("debug", "info", "warning", "error"),
        help="the least level the monitor logs (default warning)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from monitor.core.errors import ConfigError
    from monitor.daemon.logsetup import setup_logging
    from monitor.demo.run import DemoOptions, run_demo, write_trust

    if args.trust_only:
        print(f"trust files written to {write_trust(args.port)}")
        return 0
    if args.duration is not None and args.duration <= 0:
        raise ConfigError("--duration: a number of seconds, more than 0")
    setup_logging(args.log_level, json_format=False)
    options = DemoOptions(config=args.config, port=args.port, duration=args.duration)
    asyncio.run(run_demo(options, functools.partial(print, flush=True)))
    return 0
