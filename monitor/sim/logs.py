"""The simulator's logs: a sharded Rekor v1 log and a Rekor v2 tile log over real Merkle trees.

Bodies are not stored: the seeded factory rebuilds any entry from its index, so a log of
millions of entries costs only its tree (about 64 bytes a leaf).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from monitor.encoding import b64encode
from monitor.merkle import leaf_hash
from monitor.sim.factory import EntryFactory, SimEntry
from monitor.sim.signing import NoteSigner
from monitor.sim.tree import MerkleStore


def _altered(leaf: bytes) -> bytes:
    return hashlib.sha256(b"forked:" + leaf).digest()


def _forked(store: MerkleStore, cached: MerkleStore | None, fork_at: int) -> MerkleStore:
    """The same tree with a different leaf at ``fork_at`` (rebuilt when the tree grew)."""
    if cached is not None and cached.size == store.size:
        return cached
    fork = MerkleStore()
    fork.extend(
        _altered(store.leaf(i)) if i == fork_at else store.leaf(i) for i in range(store.size)
    )
    return fork


@dataclass
class V1Shard:
    tree_id: int
    start: int  # global index of its first entry
    store: MerkleStore
    frozen: bool = False
    fork: MerkleStore | None = None


@dataclass
class SimV1Log:
    """Rekor v1: shards (trees) in order; the last one is active."""

    host: str
    signer: NoteSigner
    factory: EntryFactory
    shards: list[V1Shard] = field(default_factory=list)
    start_time: int = field(default_factory=lambda: int(time.time()) - 86_400)
    next_tree_id: int = 3904496407287907110

    def __post_init__(self) -> None:
        if not self.shards:
            self.shards.append(V1Shard(self._new_tree_id(), 0, MerkleStore()))

    def _new_tree_id(self) -> int:
        tid = self.next_tree_id
        self.next_tree_id = (tid * 6364136223846793005 + 1442695040888963407) % (1 << 63)
        return tid

    @property
    def active(self) -> V1Shard:
        return self.shards[-1]

    @property
    def size(self) -> int:
        return self.active.start + self.active.store.size

    def entry(self, index: int) -> SimEntry:
        return self.factory.v1_entry(index)

    def append(self, count: int) -> None:
        start = self.size
        self.active.store.extend(leaf_hash(self.entry(g).body) for g in range(start, start + count))

    def rotate(self) -> V1Shard:
        """Freeze the active tree and start a new one, as Rekor's shard rotation does."""
        self.active.frozen = True
        shard = V1Shard(self._new_tree_id(), self.size, MerkleStore())
        self.shards.append(shard)
        return shard

    def shard_of(self, index: int) -> V1Shard | None:
        for shard in self.shards:
            if shard.start <= index < shard.start + shard.store.size:
                return shard
        return None

    def shard_by_tree(self, tree_id: int) -> V1Shard | None:
        return next((s for s in self.shards if s.tree_id == tree_id), None)

    def integrated_time(self, index: int) -> int:
        return self.start_time + index // 10

    def origin(self, shard: V1Shard) -> str:
        return f"{self.host} - {shard.tree_id}"

    def checkpoint(self, shard: V1Shard, size: int, store: MerkleStore | None = None) -> str:
        root = (store or shard.store).root(size)
        return self.signer.sign_checkpoint(self.origin(shard), size, root)

    def set_for(self, index: int, body: bytes, log_id: bytes) -> bytes:
        payload = json.dumps(
            {
                "body": b64encode(body),
                "integratedTime": self.integrated_time(index),
                "logID": log_id.hex(),
                "logIndex": index,
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        return self.signer.sign_data(payload)

    def fork_store(self, shard: V1Shard, fork_at: int) -> MerkleStore:
        """The same tree, but a different leaf at ``fork_at`` (a shard-local index)."""
        shard.fork = _forked(shard.store, shard.fork, fork_at)
        return shard.fork

    def log_entry_json(
        self, index: int, body: bytes, log_id: bytes, proof_size: int | None = None
    ) -> dict[str, Any]:
        """A LogEntry exactly as ``GET /api/v1/log/entries`` serves it."""
        shard = self.shard_of(index)
        if shard is None:
            raise KeyError(index)
        local = index - shard.start
        size = proof_size or shard.store.size
        uuid = leaf_hash(self.entry(index).body).hex()
        entry: dict[str, Any] = {
            "body": b64encode(body),
            "integratedTime": self.integrated_time(index),
            "logID": log_id.hex(),
            "logIndex": index,
            "verification": {
                "inclusionProof": {
                    "checkpoint": self.checkpoint(shard, size),
                    "hashes": [h.hex() for h in shard.store.inclusion_proof(local, size)],
                    "logIndex": local,
                    "rootHash": shard.store.root(size).hex(),
                    "treeSize": size,
                },
                "signedEntryTimestamp": b64encode(self.set_for(index, body, log_id)),
            },
        }
        attestation = self.entry(index).attestation
        if attestation is not None:
            entry["attestation"] = {"data": b64encode(attestation)}
        return {f"{shard.tree_id:016x}{uuid}": entry}


@dataclass
class SimV2Log:
    """Rekor v2: one tile-based tree; the origin is the URL without scheme."""

    origin: str
    signer: NoteSigner
    factory: EntryFactory
    store: MerkleStore = field(default_factory=MerkleStore)
    fork: MerkleStore | None = None

    @property
    def size(self) -> int:
        return self.store.size

    def entry(self, index: int) -> SimEntry:
        return self.factory.v2_entry(index)

    def append(self, count: int) -> None:
        start = self.size
        self.store.extend(leaf_hash(self.entry(i).body) for i in range(start, start + count))

    def checkpoint(self, size: int | None = None, store: MerkleStore | None = None) -> str:
        n = self.size if size is None else size
        return self.signer.sign_checkpoint(self.origin, n, (store or self.store).root(n))

    def fork_store(self, fork_at: int) -> MerkleStore:
        self.fork = _forked(self.store, self.fork, fork_at)
        return self.fork
