"""The daemon: per-log catch-up passes that tail, verify, parse, match and store.

The top of the monitor itself (it runs the passes, the alert workers and the API server),
beside the simulator (neither imports the other): may import everything below it.
"""

from __future__ import annotations

from monitor.daemon.commit import PassContext, PassResult, Start
from monitor.daemon.v1pass import catch_up_v1
from monitor.daemon.v2pass import catch_up_v2

__all__ = ["PassContext", "PassResult", "Start", "catch_up_v1", "catch_up_v2"]
