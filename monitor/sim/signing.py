"""Checkpoint signing for the simulator: real signed notes, as Rekor v1 and v2 write them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from monitor.core.encoding import b64encode
from monitor.tlog.checkpoint import Checkpoint
from monitor.tlog.note import EcdsaNoteVerifier, Ed25519NoteVerifier, spki_der


def _seeded_scalar(seed: int, label: str, order: int) -> int:
    digest = hashlib.sha256(f"tlog-monitor-sim:{seed}:{label}".encode()).digest()
    return int.from_bytes(digest, "big") % (order - 1) + 1


_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@dataclass(frozen=True)
class NoteSigner:
    """Signs checkpoint notes under ``name`` (Rekor v1: the host; v2: the origin)."""

    name: str
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    key_id: bytes

    @classmethod
    def ecdsa(cls, name: str, seed: int, label: str) -> NoteSigner:
        key = ec.derive_private_key(_seeded_scalar(seed, label, _P256_ORDER), ec.SECP256R1())
        return cls(name, key, EcdsaNoteVerifier.create(name, key.public_key()).key_id)

    @classmethod
    def ed25519(cls, name: str, seed: int, label: str) -> NoteSigner:
        raw = hashlib.sha256(f"tlog-monitor-sim:{seed}:{label}".encode()).digest()
        key = ed25519.Ed25519PrivateKey.from_private_bytes(raw)
        return cls(name, key, Ed25519NoteVerifier.create(name, key.public_key()).key_id)

    def renamed(self, name: str) -> NoteSigner:
        """The same key signing under ``name`` (for Ed25519 the key ID depends on the name)."""
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            key_id = Ed25519NoteVerifier.create(name, self.key.public_key()).key_id
        else:
            key_id = EcdsaNoteVerifier.create(name, self.key.public_key()).key_id
        return NoteSigner(name, self.key, key_id)

    def public_spki(self) -> bytes:
        return spki_der(self.key.public_key())

    def sign_text(self, text: str) -> str:
        """The signed note for ``text`` (which ends in a newline)."""
        msg = text.encode()
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            sig = self.key.sign(msg)
        else:
            sig = self.key.sign(msg, ec.ECDSA(hashes.SHA256()))
        return f"{text}\n\u2014 {self.name} {b64encode(self.key_id + sig)}\n"

    def sign_checkpoint(self, origin: str, size: int, root: bytes) -> str:
        return self.sign_text(Checkpoint(origin, size, root).to_text())

    def sign_data(self, data: bytes) -> bytes:
        """A plain signature (Rekor v1's SignedEntryTimestamp)."""
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return self.key.sign(data)
        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
