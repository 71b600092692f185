"""The simulator serves a full Rekor v2 entry bundle from its gzipped copy (as a CDN serves a
tile) with exactly the bytes it would build afresh, and builds it afresh whenever a fault
changes what the tile shows."""

from __future__ import annotations

import gzip
from pathlib import Path

from monitor.sim.bundle_cache import BundleCache
from monitor.sim.logs import SimV2Log
from monitor.tlog.tiles import TILE_WIDTH, decode_entry_bundle, encode_entry_bundle, entries_path
from tests.simlog import Harness, harness, run


def _fresh(log: SimV2Log, tile: int) -> list[bytes]:
    start = tile * TILE_WIDTH
    return [log.entry(i).body for i in range(start, start + TILE_WIDTH)]


async def _served(h: Harness, tile: int, *, gzip_ok: bool = True) -> list[bytes]:
    headers = {"Accept-Encoding": "gzip" if gzip_ok else "identity"}
    url = f"{h.v2.log.base_url}/{entries_path(tile)}"
    async with h.session.get(url, headers=headers) as resp:
        assert resp.status == 200
        assert (resp.headers.get("Content-Encoding") == "gzip") is gzip_ok
        return decode_entry_bundle(await resp.read(), TILE_WIDTH)


def test_cached_bundles_are_the_bundles_built_afresh_and_faults_bypass_them(
    tmp_path: Path,
) -> None:
    async def go() -> None:
        async with harness(tmp_path, entries=600) as h:
            log = h.sim.state.v2
            # the log grows from inside a tile: the tile's earlier bodies are rebuilt once
            await h.admin("append", {"v2": 300})
            for tile in range(3):
                held = log.bundles.gzipped(tile)
                assert held is not None, tile
                assert gzip.decompress(held) == encode_entry_bundle(_fresh(log, tile))
                assert await _served(h, tile) == _fresh(log, tile)
                assert await _served(h, tile, gzip_ok=False) == _fresh(log, tile)
            assert log.bundles.gzipped(3) is None  # 900 entries: tile 3 is partial
            # a tampered body is served in place of the held bundle, then the held one again
            await h.admin("faults", {"tamper": [610]})
            served = await _served(h, 2)
            assert served[610 - 512] != log.entry(610).body
            assert served[:98] == _fresh(log, 2)[:98]
            assert await _served(h, 1) == _fresh(log, 1)
            await h.admin("faults", {"tamper": []})
            assert await _served(h, 2) == _fresh(log, 2)

    run(go)


def test_the_cache_stops_at_its_budget() -> None:
    def body(i: int) -> bytes:
        return f"entry {i}".encode() * 20

    cache = BundleCache(budget=1)
    for i in range(3 * TILE_WIDTH):
        cache.add(i, body(i), body)
    first = cache.gzipped(0)
    assert first is not None
    assert gzip.decompress(first) == encode_entry_bundle([body(i) for i in range(TILE_WIDTH)])
    assert cache.gzipped(1) is None
    assert cache.gzipped(2) is None
    assert cache.nbytes == len(first)
