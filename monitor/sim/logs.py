"""The simulator's logs: a sharded Rekor v1 log and a Rekor v2 tile log over real Merkle trees.

Bodies are not stored: the seeded factory rebuilds any entry from its index. Only the entry's
signature is kept, made once when the entry is appended (``SignatureColumn``), because signing
costs several times what rebuilding the rest of a body does; serving an entry never signs. A
log of millions of entries costs its tree (about 64 bytes a leaf) and its signatures (about 80
bytes an entry, most of them ECDSA P-256).
"""

from __future__ import annotations

import bisect
import hashlib
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from monitor.core.encoding import b64encode
from monitor.core.errors import ConfigError
from monitor.sim.bundle_cache import BundleCache
from monitor.sim.factory import Draft, EntryFactory, SimEntry
from monitor.sim.signing import NoteSigner
from monitor.sim.tree import MerkleStore
from monitor.tlog.merkle import leaf_hash
from monitor.tlog.promise import promise_payload


def check_key_name(name: str) -> str:
    """``name`` if a note signer can sign under it (non-empty, no whitespace, no ``+``)."""
    if not name or any(c.isspace() or c == "+" for c in name):
        raise ConfigError(f"v1 key name {name!r}: must be non-empty, without whitespace or '+'")
    return name


class SignatureColumn:
    """The signatures of a log's entries 0..n-1, end to end in one ``bytearray``."""

    __slots__ = ("_data", "_ends")

    def __init__(self) -> None:
        self._data = bytearray()
        self._ends = array("Q")  # where each signature ends in ``_data``

    def __len__(self) -> int:
        return len(self._ends)

    def append(self, signature: bytes) -> None:
        self._data += signature
        self._ends.append(len(self._data))

    def __getitem__(self, index: int) -> bytes:
        if not 0 <= index < len(self._ends):
            raise IndexError(index)
        start = self._ends[index - 1] if index else 0
        return bytes(self._data[start : self._ends[index]])

    @property
    def nbytes(self) -> int:
        return len(self._data) + self._ends.itemsize * len(self._ends)


def _signed_leaves(
    draft: Callable[[int], Draft],
    sigs: SignatureColumn,
    start: int,
    count: int,
    keep: Callable[[int, bytes], None] | None = None,
) -> Iterator[bytes]:
    """Leaf hashes of entries ``start..start+count-1``, each signed once and its signature
    kept in ``sigs`` (which must hold exactly the entries before ``start``); ``keep`` is handed
    each body as it is rendered."""
    if len(sigs) != start:
        raise ValueError(f"the signatures cover {len(sigs)} entries, not {start}")
    for index in range(start, start + count):
        d = draft(index)
        sig = d.sign()
        sigs.append(sig)
        body = d.render(sig).body
        if keep is not None:
            keep(index, body)
        yield leaf_hash(body)


def _rendered(draft: Draft, sigs: SignatureColumn, index: int) -> SimEntry:
    """The entry with its kept signature (signed afresh only beyond the log's end)."""
    return draft.render(sigs[index] if index < len(sigs) else draft.sign())


def altered_body(body: bytes) -> bytes:
    """``body`` with the same meaning and a different leaf hash (a tampered or forked entry)."""
    return body.replace(b'"kind"', b'"kind" ', 1)


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
    """Rekor v1: shards (trees) in order; the last one is active. Its checkpoints are signed
    under ``signer.name``, also the first part of every tree's origin (``rename``)."""

    signer: NoteSigner
    factory: EntryFactory
    shards: list[V1Shard] = field(default_factory=list)
    sigs: SignatureColumn = field(default_factory=SignatureColumn)
    # the backlog (the entries the log starts with) was logged over the past day, ten a
    # second; an entry appended later was logged when appended, as Rekor logs it: one (first
    # index, unix seconds) per ``append``, so that an entry planted in both logs at once has
    # the same time in each (the monitor dates a Rekor v2 entry, which has none, by when it
    # stores it)
    start_time: int = field(default_factory=lambda: int(time.time()) - 86_400)
    next_tree_id: int = 3904496407287907110
    clock: Callable[[], float] = time.time
    _run_starts: array[int] = field(default_factory=lambda: array("Q"))
    _run_times: array[int] = field(default_factory=lambda: array("q"))

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

    @property
    def key_name(self) -> str:
        return self.signer.name

    def rename(self, name: str) -> None:
        """Sign every checkpoint from now on under ``name``, with the same key: what a
        restarted Rekor v1 pod with a new hostname does."""
        self.signer = self.signer.renamed(check_key_name(name))

    def entry(self, index: int) -> SimEntry:
        return _rendered(self.factory.v1_draft(index), self.sigs, index)

    def append(self, count: int, *, backlog: bool = False) -> None:
        """Log ``count`` new entries now (``backlog``: as logged over the past day)."""
        if count > 0 and not backlog:
            self._run_starts.append(self.size)
            self._run_times.append(int(self.clock()))
        self.active.store.extend(_signed_leaves(self.factory.v1_draft, self.sigs, self.size, count))

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
        """When the entry at ``index`` was logged (unix seconds)."""
        run = bisect.bisect_right(self._run_starts, index) - 1
        if run < 0:
            return self.start_time + index // 10  # the backlog
        return self._run_times[run]

    def origin(self, shard: V1Shard) -> str:
        return f"{self.signer.name} - {shard.tree_id}"

    def checkpoint(self, shard: V1Shard, size: int, store: MerkleStore | None = None) -> str:
        root = (store or shard.store).root(size)
        return self.signer.sign_checkpoint(self.origin(shard), size, root)

    def set_for(self, index: int, body: bytes, log_id: bytes) -> bytes:
        payload = promise_payload(body, self.integrated_time(index), log_id, index)
        return self.signer.sign_data(payload)

    def fork_store(self, shard: V1Shard, fork_at: int) -> MerkleStore:
        """The same tree, but a different leaf at ``fork_at`` (a shard-local index)."""
        shard.fork = _forked(shard.store, shard.fork, fork_at)
        return shard.fork

    def split_store(self, shard: V1Shard, at: int | None) -> MerkleStore | None:
        """View b of a split of ``shard`` from the global index ``at`` (None: it does not
        reach into the shard): only ever handed to the distributor, never served."""
        local = None if at is None else at - shard.start
        if local is None or not 0 <= local < shard.store.size:
            return None
        return _forked(shard.store, None, local)

    def log_entry_json(
        self, index: int, entry: SimEntry, log_id: bytes, proof_size: int | None = None
    ) -> dict[str, Any]:
        """A LogEntry exactly as ``GET /api/v1/log/entries`` serves it, for ``entry`` (the
        one at ``index``, or a tampered copy: its UUID stays the logged leaf's)."""
        shard = self.shard_of(index)
        if shard is None:
            raise KeyError(index)
        body = entry.body
        local = index - shard.start
        size = proof_size or shard.store.size
        uuid = shard.store.leaf(local).hex()
        doc: dict[str, Any] = {
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
        if entry.attestation is not None:
            doc["attestation"] = {"data": b64encode(entry.attestation)}
        return {f"{shard.tree_id:016x}{uuid}": doc}


@dataclass
class SimV2Log:
    """Rekor v2: one tile-based tree; the origin is the URL without scheme."""

    origin: str
    signer: NoteSigner
    factory: EntryFactory
    store: MerkleStore = field(default_factory=MerkleStore)
    fork: MerkleStore | None = None
    sigs: SignatureColumn = field(default_factory=SignatureColumn)
    split: tuple[int, MerkleStore] | None = None  # view b of a split: (index, its tree)
    bundles: BundleCache = field(default_factory=BundleCache)

    @property
    def size(self) -> int:
        return self.store.size

    def entry(self, index: int) -> SimEntry:
        return _rendered(self.factory.v2_draft(index), self.sigs, index)

    def append(self, count: int) -> None:
        self.store.extend(
            _signed_leaves(self.factory.v2_draft, self.sigs, self.size, count, self._keep)
        )

    def _keep(self, index: int, body: bytes) -> None:
        self.bundles.add(index, body, lambda i: self.entry(i).body)

    def checkpoint(self, size: int | None = None, store: MerkleStore | None = None) -> str:
        n = self.size if size is None else size
        return self.signer.sign_checkpoint(self.origin, n, (store or self.store).root(n))

    def fork_store(self, fork_at: int) -> MerkleStore:
        self.fork = _forked(self.store, self.fork, fork_at)
        return self.fork

    def split_store(self, at: int) -> MerkleStore:
        """View b of a split: the entry at ``at`` is ``altered_body`` of the logged one, hashed
        as such, so that view b is a tree its clients can verify from end to end (rebuilt when
        the log grew)."""
        if self.split is not None and self.split[0] == at and self.split[1].size == self.size:
            return self.split[1]
        other = leaf_hash(altered_body(self.entry(at).body))
        view = MerkleStore()
        view.extend(other if i == at else self.store.leaf(i) for i in range(self.size))
        self.split = (at, view)
        return view
