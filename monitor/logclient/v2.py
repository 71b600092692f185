"""Rekor v2 client: C2SP tlog-tiles read API (REKOR-FORMATS.md §6.2).

The checkpoint leaves this module only after its signature verified for this shard's
origin. Entry bundles are fetched full, or partial for the tree's last group, falling back to
the full bundle when a partial one has disappeared.
"""

from __future__ import annotations

import asyncio

from monitor.checkpoint import SignedCheckpoint, open_checkpoint
from monitor.errors import (
    CheckpointError,
    MalformedInputError,
    TransientLogError,
    VerificationError,
)
from monitor.logclient.http import LogHttp
from monitor.tiles import TILE_WIDTH, decode_entry_bundle, entries_path, split_tile, tile_path
from monitor.trust import TransparencyLog


class RekorV2Client:
    def __init__(self, http: LogHttp, log: TransparencyLog) -> None:
        self.http = http
        self.log = log
        self._verifier = log.note_verifier()

    async def checkpoint(self) -> SignedCheckpoint:
        resp = await self.http.get("checkpoint", accept="text/plain")
        if resp.status == 404:
            raise TransientLogError(f"{self.log.key_name}: no checkpoint served")
        raw = resp.body.decode("utf-8", "replace")
        try:
            cp = open_checkpoint(resp.body, [self._verifier])
        except VerificationError as e:
            raise CheckpointError(e.check, f"{self.log.key_name}: {e.message}", raw) from None
        if cp.origin != self.log.key_name:
            raise CheckpointError(
                "checkpoint-origin",
                f"checkpoint origin {cp.origin!r} is not {self.log.key_name}",
                raw,
            )
        return cp

    async def entry_bundle(self, index: int, width: int = TILE_WIDTH) -> list[bytes]:
        """The entries of bundle ``index`` (``width`` < 256 for the tree's last group)."""
        data = await self._fetch(entries_path(index, width), f"entry bundle {index}")
        if data is None and width < TILE_WIDTH:
            data = await self._fetch(entries_path(index), f"entry bundle {index}")
            if data is not None:
                return self._decode_bundle(data, TILE_WIDTH, index)[:width]
        if data is None:
            raise TransientLogError(f"{self.log.key_name}: entry bundle {index}/{width} missing")
        return self._decode_bundle(data, width, index)

    async def entries(self, start: int, end: int, tree_size: int) -> list[bytes]:
        """Entries [start, end) of a tree of ``tree_size`` leaves, in order."""
        if not 0 <= start <= end <= tree_size:
            raise ValueError(f"range [{start}, {end}) is not within tree size {tree_size}")
        if start == end:
            return []
        first, last = start // TILE_WIDTH, (end - 1) // TILE_WIDTH
        widths = [
            TILE_WIDTH if (k + 1) * TILE_WIDTH <= tree_size else tree_size % TILE_WIDTH
            for k in range(first, last + 1)
        ]
        bundles = await asyncio.gather(
            *(self.entry_bundle(k, w) for k, w in zip(range(first, last + 1), widths, strict=True))
        )
        flat = [e for bundle in bundles for e in bundle]
        offset = first * TILE_WIDTH
        return flat[start - offset : end - offset]

    async def tile(self, level: int, index: int, width: int = TILE_WIDTH) -> list[bytes]:
        data = await self._fetch(tile_path(level, index, width), f"tile {level}/{index}")
        if data is None and width < TILE_WIDTH:
            full = await self._fetch(tile_path(level, index), f"tile {level}/{index}")
            if full is not None:
                return self._split(full, TILE_WIDTH)[:width]
        if data is None:
            raise TransientLogError(f"{self.log.key_name}: tile {level}/{index}/{width} missing")
        return self._split(data, width)

    async def _fetch(self, path: str, what: str) -> bytes | None:
        resp = await self.http.get(path)
        return None if resp.status == 404 else resp.body

    def _decode_bundle(self, data: bytes, width: int, index: int) -> list[bytes]:
        try:
            return decode_entry_bundle(data, expected=width)
        except MalformedInputError as e:
            raise TransientLogError(
                f"{self.log.key_name}: entry bundle {index} is malformed: {e}"
            ) from None

    def _split(self, data: bytes, width: int) -> list[bytes]:
        try:
            return split_tile(data, width)
        except MalformedInputError as e:
            raise TransientLogError(f"{self.log.key_name}: malformed tile: {e}") from None
