"""Tying an entry of a Rekor v2 log (C2SP tlog-tiles), which has no entry or proof endpoint:
the entry read from its entry bundle and proven from hash tiles.

The proof: the compact ranges of [0, i) and [0, i + 1) read from the tiles of a signed tree,
each proven a prefix of it (``seed_v2``); the served body's leaf hash appended to the first
must give the second's root, so that body is leaf ``i`` of the signed tree. The tree is the
monitor's own verified checkpoint when it already holds index ``i``; else the log's latest,
proven consistent with the monitor's (a consistency proof read from the same tiles).

``TieMismatch`` and ``TieUnavailable`` are how a proof falls short, for both APIs: they never
leave ``LogTies.tie``, which turns them into a tie's status.
"""

from __future__ import annotations

import hashlib

from monitor.core.errors import VerificationError
from monitor.imagesig import LogEntryRef
from monitor.logclient.v2 import RekorV2Client
from monitor.tlog.checkpoint import SignedCheckpoint, consistency_failure
from monitor.tlog.merkle import leaf_hash
from monitor.tlog.tileproofs import seed_v2, v2_consistency_proof


class TieMismatch(Exception):
    """The log holds another body there, or none, or a tree inconsistent with ours."""

    def __init__(self, detail: str, log_body: str | None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.log_body = log_body


class TieUnavailable(Exception):
    """The log could not be read, or could not prove what it served."""


async def prove_v2(client: RekorV2Client, entry: LogEntryRef, ours: SignedCheckpoint | None) -> str:
    """Why the entry is proven in the log (the detail of a ``proven`` tie); raises
    ``TieMismatch``, ``TieUnavailable``, or a ``MonitorError`` of the log client."""
    index = entry.log_index
    if ours is not None and ours.origin != client.log.key_name:
        ours = None  # not this shard's: nothing to compare with
    if ours is not None and index < ours.size:
        tree, how = ours, f"the monitor's verified tree of {ours.size}"
    else:
        tree = await client.checkpoint()
        how = f"the log's signed tree of {tree.size}"
        if ours is not None:
            how += await _consistent(client, ours, tree)
        else:
            how += "; no verified checkpoint of the monitor's to prove it consistent with"
    if index >= tree.size:  # not a lie yet: the bundle may be newer than the tree read
        raise TieUnavailable(
            f"the log holds no entry {index} yet: its signed tree ends at {tree.size}"
        )
    (body,) = await client.entries(index, index + 1, tree.size)
    try:
        before = await seed_v2(client, tree, index)
        after = await seed_v2(client, tree, index + 1)
    except VerificationError as e:
        raise TieUnavailable(f"the log's tiles do not verify: {e}") from None
    rng = before.compact_range()
    rng.append(leaf_hash(body))
    if rng.root() != after.root_hash:
        raise TieUnavailable(f"the entry the log serves at {index} is not the leaf its tiles hold")
    log_body = hashlib.sha256(body).hexdigest()
    if log_body != entry.body_sha256:
        raise TieMismatch(
            f"the log holds another body at {index}: sha256:{log_body} (proven in {how}), the "
            f"signature names sha256:{entry.body_sha256}",
            log_body,
        )
    return f"in the log at {index}, proven in {how}"


async def _consistent(
    client: RekorV2Client, ours: SignedCheckpoint, theirs: SignedCheckpoint
) -> str:
    if min(ours.size, theirs.size) == 0:
        return ", which extends the monitor's empty tree"

    async def proof_of(size: int, larger: SignedCheckpoint) -> list[bytes]:
        return await v2_consistency_proof(client, size, larger)

    if await consistency_failure(ours, theirs, proof_of) is not None:
        raise TieMismatch(
            f"the log's tree of {theirs.size} is not consistent with the monitor's verified "
            f"tree of {ours.size}: the log's own proof fails",
            None,
        )
    return f", consistent with the monitor's verified tree of {ours.size}"
