"""Hand-built trees for the proof tests (MerkleStore is the oracle): signed checkpoints of
a v2 and a v1 log, the leaves and stores of up to 70,001 entries, verified trees proven from
scratch, hash tiles served from a store (some tampered), and the checks that a lie fails
with the right IntegrityType and JSON-ready evidence."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from monitor.core.errors import VerificationError
from monitor.core.findings import IntegrityType
from monitor.sim.signing import NoteSigner
from monitor.sim.tree import MerkleStore
from monitor.tlog.checkpoint import SignedCheckpoint, open_checkpoint
from monitor.tlog.merkle import leaf_hash
from monitor.tlog.note import Ed25519NoteVerifier
from monitor.tlog.proofs import IntegrityFailure, VerifiedTree, verify_extension
from monitor.tlog.tiles import split_tile, tile_path

V2_ORIGIN = "log.example/v2/test"
V1_HOST = "rekor.example"
TREE_ID = 1234567890123
V1_ORIGIN = f"{V1_HOST} - {TREE_ID}"


def _signer(name: str, seed: bytes) -> tuple[NoteSigner, Ed25519NoteVerifier]:
    key = ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed).digest())
    verifier = Ed25519NoteVerifier.create(name, key.public_key())
    return NoteSigner(name, key, verifier.key_id), verifier


V2_SIGNER, V2_VERIFIER = _signer(V2_ORIGIN, b"v2")
V1_SIGNER, V1_VERIFIER = _signer(V1_HOST, b"v1")


def signed(
    store: MerkleStore, size: int | None = None, origin: str = V2_ORIGIN
) -> SignedCheckpoint:
    """A checkpoint of ``store`` at ``size``, signed and opened as the clients do."""
    n = store.size if size is None else size
    signer, verifier = (V2_SIGNER, V2_VERIFIER) if origin == V2_ORIGIN else (V1_SIGNER, V1_VERIFIER)
    return open_checkpoint(signer.sign_checkpoint(origin, n, store.root(n)), [verifier])


def leaves(n: int, salt: str = "") -> list[bytes]:
    return [leaf_hash(f"{salt}entry {i}".encode()) for i in range(n)]


LEAVES = leaves(70_001)
_STORES: dict[int, MerkleStore] = {}


def store_of(size: int) -> MerkleStore:
    if size not in _STORES:
        _STORES[size] = MerkleStore(LEAVES[:size])
    return _STORES[size]


def verified(store: MerkleStore, size: int, origin: str = V2_ORIGIN) -> VerifiedTree:
    """The verified tree of [0, size) of ``store``, proven from scratch."""
    cp = signed(store, size, origin)
    tree_id = None if origin == V2_ORIGIN else TREE_ID
    return verify_extension(VerifiedTree.empty(cp, tree_id), cp, LEAVES[:size], 0)


class StoreTiles:
    """Hash tiles served from a MerkleStore, optionally with every hash of some tiles flipped."""

    def __init__(self, store: MerkleStore, tamper: frozenset[str] = frozenset()) -> None:
        self.store = store
        self.tamper = tamper
        self.read: list[str] = []

    async def tile(self, level: int, index: int, width: int) -> list[bytes]:
        path = tile_path(level, index, width)
        self.read.append(path)
        hashes = split_tile(self.store.tile(level, index, width), width)
        return [flip(h) for h in hashes] if path in self.tamper else hashes


def flip(h: bytes) -> bytes:
    return bytes([h[0] ^ 1]) + h[1:]


def fails(kind: IntegrityType, fn: Callable[[], object]) -> IntegrityFailure:
    """Run ``fn``; it must raise IntegrityFailure of ``kind`` with JSON-ready evidence."""
    with pytest.raises(IntegrityFailure) as info:
        fn()
    return _checked(info.value, kind)


async def afails(kind: IntegrityType, aw: Awaitable[object]) -> IntegrityFailure:
    with pytest.raises(IntegrityFailure) as info:
        await aw
    return _checked(info.value, kind)


def _checked(err: IntegrityFailure, kind: IntegrityType) -> IntegrityFailure:
    assert err.type == kind, err
    assert err.check == str(kind)
    assert isinstance(err, VerificationError)
    assert json.loads(json.dumps(err.evidence)) == err.evidence  # JSON round trip, unchanged
    return err
