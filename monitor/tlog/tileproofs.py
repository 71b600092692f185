"""Proofs a Rekor v2 (C2SP tlog-tiles) log does not serve, built from its hash tiles.

Rekor v2 has no proof endpoints: the RFC 6962 consistency proof between two tree sizes
(``v2_consistency_proof``) and the compact range of a prefix of a signed tree (``seed_v2``, a
start point for ``verify_extension``) are computed here from the nodes of the tiles that
cover them, O(log n) tiles. The tiles are untrusted: a consistency proof is judged by
``verify_consistency`` like any other, and a seed is proven against the signed checkpoint's
root before it is returned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Protocol

from monitor.core.errors import ProofError, TransientLogError
from monitor.core.findings import IntegrityType
from monitor.tlog.checkpoint import SignedCheckpoint
from monitor.tlog.merkle import (
    HASH_SIZE,
    CompactRange,
    node_hash,
    verify_consistency,
)
from monitor.tlog.proofs import (
    IntegrityFailure,
    VerifiedTree,
    checkpoint_evidence,
    hexes,
)
from monitor.tlog.tiles import TILE_HEIGHT, node_to_tile, tile_path, tile_width

__all__ = ["TileSource", "seed_v2", "v2_consistency_proof"]


class TileSource(Protocol):
    """Where hash tiles come from (``RekorV2Client`` is one): ``width`` hashes of tile
    ``level``/``index``, full (256) or partial; untrusted until proven."""

    async def tile(self, level: int, index: int, width: int) -> list[bytes]: ...


Node = tuple[int, int]  # (tree level, index): the perfect subtree over [index << level, ...)


def _split(n: int) -> int:
    """RFC 6962's k: the largest power of two strictly below ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _prefix_nodes(size: int) -> list[Node]:
    """The perfect subtrees that make up [0, size), largest first (the compact range)."""
    nodes: list[Node] = []
    start = 0
    for level in reversed(range(size.bit_length())):
        if size >> level & 1:
            nodes.append((level, start >> level))
            start += 1 << level
    return nodes


def _cover(lo: int, hi: int) -> list[Node]:
    """The perfect subtrees that RFC 6962's split of MTH(D[lo:hi]) bottoms out in."""
    n = hi - lo
    if not n & (n - 1) and not lo & (n - 1):
        level = n.bit_length() - 1
        return [(level, lo >> level)]
    k = _split(n)
    return _cover(lo, lo + k) + _cover(lo + k, hi)


def _mth(lo: int, hi: int, nodes: dict[Node, bytes]) -> bytes:
    n = hi - lo
    if not n & (n - 1) and not lo & (n - 1):
        level = n.bit_length() - 1
        return nodes[level, lo >> level]
    k = _split(n)
    return node_hash(_mth(lo, lo + k, nodes), _mth(lo + k, hi, nodes))


def _consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """The leaf ranges whose tree hashes make up PROOF(size1, D[size2]), in proof order
    (RFC 6962 §2.1.2, as ``monitor.sim.tree.MerkleStore.consistency_proof``)."""
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size2
    whole = True
    while size1 != hi:
        mid = lo + _split(hi - lo)
        if size1 <= mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
            whole = False
    if not whole:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


async def _fetch_nodes(
    source: TileSource, tree_size: int, wanted: Iterable[Node]
) -> tuple[dict[Node, bytes], list[str]]:
    """Read tree nodes from hash tiles of the tree of ``tree_size`` (each tile once, at the
    width that tree has); rows between tile levels are recomputed by hashing pairs.

    Returns the nodes and the paths of the tiles read (for evidence)."""
    by_tile: dict[tuple[int, int], list[Node]] = {}
    for node in sorted(set(wanted)):
        level, index = node
        if (index + 1) << level > tree_size:
            raise ValueError(f"node {node} is not complete in a tree of size {tree_size}")
        addr = node_to_tile(level, index)
        by_tile.setdefault((addr.tile_level, addr.tile_index), []).append(node)
    keys = sorted(by_tile)
    widths = [tile_width(level, index, tree_size) for level, index in keys]
    tiles = await asyncio.gather(
        *(source.tile(level, index, w) for (level, index), w in zip(keys, widths, strict=True))
    )
    out: dict[Node, bytes] = {}
    for (tile_level, tile_index), width, hashes in zip(keys, widths, tiles, strict=True):
        if len(hashes) != width or any(len(h) != HASH_SIZE for h in hashes):
            raise TransientLogError(
                f"hash tile {tile_path(tile_level, tile_index, width)} is not {width} hashes"
            )
        for level, index in by_tile[tile_level, tile_index]:
            row = level % TILE_HEIGHT
            position = node_to_tile(level, index).position
            row_hashes = hashes[position << row : (position + 1) << row]
            while len(row_hashes) > 1:
                row_hashes = [
                    node_hash(row_hashes[i], row_hashes[i + 1])
                    for i in range(0, len(row_hashes), 2)
                ]
            out[level, index] = row_hashes[0]
    paths = [tile_path(level, index, w) for (level, index), w in zip(keys, widths, strict=True)]
    return out, paths


async def v2_consistency_proof(
    source: TileSource, old_size: int, checkpoint: SignedCheckpoint
) -> list[bytes]:
    """The RFC 6962 consistency proof from ``old_size`` to ``checkpoint.size``, read from
    hash tiles (a tile log has no proof endpoint); ``[]`` when there is nothing to prove
    (``old_size`` is 0 or not below the checkpoint's size: ``advance_checkpoint`` judges
    those). Untrusted: hand it to ``advance_checkpoint``, which verifies it."""
    if not 0 < old_size < checkpoint.size:
        return []
    ranges = _consistency_ranges(old_size, checkpoint.size)
    wanted = [node for lo, hi in ranges for node in _cover(lo, hi)]
    nodes, _ = await _fetch_nodes(source, checkpoint.size, wanted)
    return [_mth(lo, hi, nodes) for lo, hi in ranges]


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose tree hashes make up PATH(index, D[size]), leaf first (RFC 6962
    §2.1.1): at each split, the side that does not hold ``index``."""
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
    ranges.reverse()
    return ranges


async def v2_inclusion_proof(
    source: TileSource, index: int, checkpoint: SignedCheckpoint
) -> list[bytes]:
    """The RFC 6962 inclusion proof of leaf ``index`` in the tree of ``checkpoint``, read from
    hash tiles (evidence a user can check offline). Untrusted until verified against the
    checkpoint's root."""
    if not 0 <= index < checkpoint.size:
        raise ValueError(f"leaf {index} is not in a tree of size {checkpoint.size}")
    ranges = _inclusion_ranges(index, checkpoint.size)
    wanted = [node for lo, hi in ranges for node in _cover(lo, hi)]
    nodes, _ = await _fetch_nodes(source, checkpoint.size, wanted)
    return [_mth(lo, hi, nodes) for lo, hi in ranges]


async def seed_v2(source: TileSource, checkpoint: SignedCheckpoint, start: int) -> VerifiedTree:
    """Start a Rekor v2 log at ``start`` (0 <= start <= checkpoint.size) from hash tiles.

    Reads the compact range of [0, start) (one perfect subtree per set bit of ``start``)
    from the tiles of the checkpoint's tree, then proves it: its root must be the
    checkpoint's root (``start == checkpoint.size``) or verify against it with the
    consistency proof read from the same tiles. O(log n) tiles. The result's
    ``checkpoint_raw`` is ``checkpoint``'s. ``IntegrityFailure(CONSISTENCY_FAILURE)`` if the
    tiles contradict the signed checkpoint (the log's own data does not match what it signed).
    Also the way to a proven intermediate target for a bounded catch-up step.
    """
    size = checkpoint.size
    if not 0 <= start <= size:
        raise ValueError(f"start {start} is not within the tree of size {size}")
    if start == 0 and size > 0:
        return VerifiedTree.empty(checkpoint)  # the empty prefix needs no proof
    left = _prefix_nodes(start)
    ranges = _consistency_ranges(start, size) if start < size else []
    wanted = left + [node for lo, hi in ranges for node in _cover(lo, hi)]
    nodes, paths = await _fetch_nodes(source, size, wanted)
    rng = CompactRange(start, [nodes[node] for node in left])
    root = rng.root()
    proof = [_mth(lo, hi, nodes) for lo, hi in ranges]
    try:
        if start == size:
            if root != checkpoint.root_hash:
                raise ProofError(
                    "tile-root",
                    f"hash tiles give root {root.hex()}, the checkpoint says "
                    f"{checkpoint.root_hash.hex()}",
                )
        else:
            verify_consistency(start, size, proof, root, checkpoint.root_hash)
    except ProofError as e:
        raise IntegrityFailure(
            IntegrityType.CONSISTENCY_FAILURE,
            f"{checkpoint.origin}: hash tiles contradict the signed tree of size {size}: the "
            f"compact range of [0, {start}) they hold (root {root.hex()}) is not its prefix: "
            f"{e.message}",
            {
                "new": checkpoint_evidence(checkpoint),
                "start": start,
                "compact_range": hexes(rng.hashes),
                "computed_root": root.hex(),
                "proof": hexes(proof),
                "tiles": paths,
            },
        ) from None
    return VerifiedTree(start, root, checkpoint.raw, rng.state(), None)
