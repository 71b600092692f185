"""Rekor v2 client: C2SP tlog-tiles read API (REKOR-FORMATS.md §6.2).

The checkpoint leaves this module only after its signature verified for this shard's
origin, and only for a size a log can hold (``MAX_LOG_SIZE``). Entry bundles are fetched full,
or partial for the tree's last group, falling back to the full bundle when a partial one has
disappeared. Every answer is capped as it is read to what its width allows (a hash tile: 32
bytes a hash; a bundle: 256 entries of 65,535 bytes at most), and one that does not decode to
exactly that width is a malformed answer (``LogResponseError``).
"""

from __future__ import annotations

import asyncio

from monitor.core.errors import (
    CheckpointError,
    LogResponseError,
    MalformedInputError,
    TransientLogError,
    VerificationError,
)
from monitor.logclient.budget import ByteBudget
from monitor.logclient.http import LogHttp
from monitor.logclient.limits import CHECKPOINT_ANSWER, MAX_LOG_SIZE, bundle_answer, tile_answer
from monitor.logclient.owed import Owed
from monitor.tlog.checkpoint import SignedCheckpoint, open_checkpoint
from monitor.tlog.tiles import TILE_WIDTH, decode_entry_bundle, entries_path, split_tile, tile_path
from monitor.trust import TransparencyLog


class RekorV2Client:
    def __init__(self, http: LogHttp, log: TransparencyLog) -> None:
        self.http = http
        self.log = log
        self._verifier = log.note_verifier()
        self.budget = ByteBudget(http.policy.memory_budget_bytes)  # passes fetch within it
        self.owed = Owed()  # entries of signed trees the log has not served, and since when
        self.missing_after = http.policy.missing_after_seconds  # then they are withheld

    @staticmethod
    def bundle_cap() -> int:
        """The most one entry bundle may take (a partial one may fall back to the full one)."""
        return bundle_answer(TILE_WIDTH)

    async def checkpoint(self) -> SignedCheckpoint:
        resp = await self.http.get("checkpoint", accept="text/plain", max_bytes=CHECKPOINT_ANSWER)
        if resp.status == 404:
            raise TransientLogError(f"{self.log.key_name}: no checkpoint served")
        return self.open_note(resp.body)

    def open_note(self, body: bytes) -> SignedCheckpoint:
        """A checkpoint of this log from wherever it came (the log, a distributor, a
        witness): verified with the log's key, for this log's origin, of a possible size."""
        raw = body.decode("utf-8", "replace")
        try:
            cp = open_checkpoint(body, [self._verifier])
        except VerificationError as e:
            raise CheckpointError(e.check, f"{self.log.key_name}: {e.message}", raw) from None
        if cp.origin != self.log.key_name:
            raise CheckpointError(
                "checkpoint-origin",
                f"checkpoint origin {cp.origin!r} is not {self.log.key_name}",
                raw,
            )
        if cp.size > MAX_LOG_SIZE:
            raise CheckpointError(
                "checkpoint-size",
                f"{self.log.key_name}: the log signed a tree of {cp.size} entries, more than "
                f"the {MAX_LOG_SIZE} (2^48) any log can serve",
                raw,
            )
        return cp

    async def entry_bundle(self, index: int, width: int = TILE_WIDTH) -> list[bytes]:
        """The entries of bundle ``index`` (``width`` < 256 for the tree's last group)."""
        data = await self._fetch(entries_path(index, width), bundle_answer(width))
        if data is None and width < TILE_WIDTH:
            data = await self._fetch(entries_path(index), bundle_answer(TILE_WIDTH))
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
        data = await self._fetch(tile_path(level, index, width), tile_answer(width))
        if data is None and width < TILE_WIDTH:
            full = await self._fetch(tile_path(level, index), tile_answer(TILE_WIDTH))
            if full is not None:
                return self._split(full, TILE_WIDTH)[:width]
        if data is None:
            raise TransientLogError(f"{self.log.key_name}: tile {level}/{index}/{width} missing")
        return self._split(data, width)

    async def _fetch(self, path: str, max_bytes: int) -> bytes | None:
        resp = await self.http.get(path, max_bytes=max_bytes)
        return None if resp.status == 404 else resp.body

    def _decode_bundle(self, data: bytes, width: int, index: int) -> list[bytes]:
        try:
            return decode_entry_bundle(data, expected=width)
        except MalformedInputError as e:
            raise LogResponseError(
                f"{self.log.key_name}: entry bundle {index} is malformed: {e}"
            ) from None

    def _split(self, data: bytes, width: int) -> list[bytes]:
        try:
            return split_tile(data, width)
        except MalformedInputError as e:
            raise LogResponseError(f"{self.log.key_name}: malformed tile: {e}") from None
