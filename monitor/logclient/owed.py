"""Since when a log has owed data: entries (or tiles) of a tree it signed that it has not
served.

A log that signs a tree and then does not serve its entries may be down, or may be hiding
them; only time tells the two apart. A pass that reads a signed tree head and then fails to
get the data it promises notes it here (``failing``); any entry stored, or a pass that reaches
the signed size, clears it (``served``). Once the data has been owed for the log's
``missing_after``, the pass reports a ``missing_entries`` integrity failure instead of an
outage. The clock lives as long as the log's client (the daemon's process): a restart starts
it again, which only delays the finding.
"""

from __future__ import annotations

from collections.abc import Hashable


class Owed:
    """One clock per reader of the log (its tailing passes, each backfill), by key."""

    def __init__(self) -> None:
        self._since: dict[Hashable, float] = {}

    def failing(self, key: Hashable, now: float) -> float:
        """The data promised to ``key`` could not be had at ``now``: since when it is owed."""
        return self._since.setdefault(key, now)

    def served(self, key: Hashable) -> None:
        """Data was served (or nothing is owed any more): the clock stops."""
        self._since.pop(key, None)

    def since(self, key: Hashable) -> float | None:
        return self._since.get(key)
