"""The HTTP API, ``/metrics`` and the health endpoints, served from the daemon's process.

Above alerts: may import everything below it; never the daemon, which serves it (the
per-log status it reads is ``monitor.core.status``).
"""

from monitor.api.app import build_app
from monitor.api.context import ApiContext
from monitor.api.server import ApiServer

__all__ = ["ApiContext", "ApiServer", "build_app"]
