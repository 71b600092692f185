"""The ``tlog-monitor`` command line."""

from monitor.cli.main import main

__all__ = ["main"]
