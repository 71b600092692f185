"""The daemon: per-log catch-up passes that tail, verify, parse, match and store.

The top of the monitor itself (it runs the passes, the alert workers and the API server),
beside the simulator (neither imports the other): may import everything below it.
"""

from __future__ import annotations

from monitor.daemon.catchup import catch_up
from monitor.daemon.context import PassContext, PassResult, Start
from monitor.daemon.source import LogSource
from monitor.daemon.v1source import RekorV1Source
from monitor.daemon.v2source import RekorV2Source

__all__ = [
    "LogSource",
    "PassContext",
    "PassResult",
    "RekorV1Source",
    "RekorV2Source",
    "Start",
    "catch_up",
]
