"""Tables for people: columns of cells, each escaped (values from a log may hold terminal
controls)."""

from __future__ import annotations

from collections.abc import Sequence

from monitor.core.escape import escape

MAX_WIDTH = 80


def print_table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    if not rows:
        print("nothing found")
        return
    rows = [tuple(escape(c) for c in r) for r in rows]
    widths = [min(max(len(r[i]) for r in [head, *rows]), MAX_WIDTH) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
