"""The daemon: per-log catch-up passes that tail, verify, parse, match and store.

The top of the monitor itself (it runs the passes, the alert workers and the API server),
beside the simulator (neither imports the other): may import everything below it.

Its names are imported when first used, so that a parse worker (``parseworker``, which
imports only the parser and the rules) does not load the whole daemon.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_MODULES = {
    "LogSource": "source",
    "PassContext": "context",
    "PassResult": "context",
    "RekorV1Source": "v1source",
    "RekorV2Source": "v2source",
    "Start": "context",
    "catch_up": "catchup",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"monitor.daemon.{module}"), name)
