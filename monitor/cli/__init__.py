"""The ``tlog-monitor`` command line.

The top: may import every other package.
"""

from monitor.cli.main import main

__all__ = ["main"]
