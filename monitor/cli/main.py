"""Entry point: one sub-command per module in this package."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from monitor import __version__
from monitor.cli import alerts as alerts_cli
from monitor.cli import check_config, cosign_key, demo, inspect, sim, verify_bundle
from monitor.cli import daemon as daemon_cli
from monitor.cli import db as db_cli
from monitor.cli import findings as findings_cli
from monitor.cli import history as history_cli
from monitor.cli import images as images_cli
from monitor.core.errors import MonitorError
from monitor.core.escape import escape_lines


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tlog-monitor",
        description="Monitor Sigstore's Rekor transparency logs.",
    )
    parser.add_argument("--version", action="version", version=f"tlog-monitor {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    daemon_cli.register(sub)
    alerts_cli.register(sub)
    verify_bundle.register(sub)
    inspect.register(sub)
    sim.register(sub)
    db_cli.register(sub)
    history_cli.register(sub)
    findings_cli.register(sub)
    images_cli.register(sub)
    check_config.register(sub)
    cosign_key.register(sub)
    demo.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except MonitorError as e:
        print(escape_lines(f"tlog-monitor: error: {e}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`| head`): not an error; silence the flush at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
