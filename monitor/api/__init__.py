"""The HTTP API, ``/metrics`` and the health endpoints, served from the daemon's process."""

from monitor.api.app import build_app
from monitor.api.context import ApiContext
from monitor.api.server import ApiServer

__all__ = ["ApiContext", "ApiServer", "build_app"]
