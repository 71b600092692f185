"""Full Rekor v2 entry bundles, gzipped once when their tile fills.

A real Rekor v2 log serves its tiles as static files behind a CDN: a full tile never changes, so
it is compressed once and then only copied. The simulator does the same, so that a client
reading a large log is measured by its own work, not by the simulator rebuilding and
compressing each bundle again (about 35 us of CPU an entry, most of it gzip). The bodies come
from the log's own append, which renders each entry once to hash it; the cache holds at most
``budget`` bytes of compressed bundles (the first ones filled: a backfill reads from the
start), and the server builds any other bundle afresh, as before.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable

from monitor.tlog.tiles import TILE_WIDTH, encode_entry_bundle

BUDGET = 256 << 20  # about 450,000 entries of the simulator's mix (about 590 bytes each)


class BundleCache:
    """Gzipped full entry bundles by tile index, fed with each body as the log appends it."""

    __slots__ = ("_gz", "_pending", "budget", "nbytes")

    def __init__(self, budget: int = BUDGET) -> None:
        self._gz: dict[int, bytes] = {}
        self._pending: list[bytes] = []  # bodies of the tile being filled, from its first
        self.budget = budget
        self.nbytes = 0

    def add(self, index: int, body: bytes, render: Callable[[int], bytes]) -> None:
        """The body of entry ``index``, appended right after ``index - 1``; ``render`` rebuilds
        an earlier entry's body (needed when an append starts inside a tile)."""
        if self.nbytes >= self.budget:
            return
        start = index - index % TILE_WIDTH
        if len(self._pending) != index - start:  # the first append into this tile
            self._pending = [render(i) for i in range(start, index)]
        self._pending.append(body)
        if len(self._pending) == TILE_WIDTH:
            data = gzip.compress(encode_entry_bundle(self._pending), mtime=0)
            self._gz[start // TILE_WIDTH] = data
            self.nbytes += len(data)
            self._pending = []

    def gzipped(self, tile: int) -> bytes | None:
        """The full bundle of ``tile``, gzipped, if it is held."""
        return self._gz.get(tile)
