"""The daemon: per-log catch-up passes that tail, verify, parse, match and store."""

from __future__ import annotations

from monitor.daemon.v2pass import PassResult, Start, catch_up_v2

__all__ = ["PassResult", "Start", "catch_up_v2"]
