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


# C2SP signature types: a log's note signature, a witness's cosignature/v1
NOTE_ED25519 = 0x01
COSIGNATURE_V1 = 0x04


def vkey(name: str, sig_type: int, public_key: bytes) -> str:
    """A C2SP verifier key: ``name+<key ID hex>+base64(type || public key)``."""
    material = bytes([sig_type]) + public_key
    key_id = hashlib.sha256(name.encode() + b"\n" + material).digest()[:4]
    return f"{name}+{key_id.hex()}+{b64encode(material)}"


def log_vkey(signer: NoteSigner) -> str:
    """The vkey of an Ed25519 log signer (Rekor v2's)."""
    if not isinstance(signer.key, ed25519.Ed25519PrivateKey):
        raise TypeError("only Ed25519 log keys have a vkey")
    return vkey(signer.name, NOTE_ED25519, signer.public_spki()[-32:])


def cosigned_message(body: str, timestamp: int) -> bytes:
    """What a cosignature/v1 signs: a header line, a time line, then the note's body (which
    ends in its newline)."""
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


@dataclass(frozen=True)
class Cosigner:
    """A witness's Ed25519 cosignature/v1 key, named like a witness (``witness-a.sim.example``)."""

    name: str
    key: ed25519.Ed25519PrivateKey
    key_id: bytes

    @classmethod
    def seeded(cls, name: str, seed: int) -> Cosigner:
        raw = hashlib.sha256(f"tlog-monitor-sim:{seed}:witness:{name}".encode()).digest()
        key = ed25519.Ed25519PrivateKey.from_private_bytes(raw)
        key_id = bytes.fromhex(vkey(name, COSIGNATURE_V1, _raw_public(key)).split("+")[1])
        return cls(name, key, key_id)

    @property
    def public_raw(self) -> bytes:
        return _raw_public(self.key)

    def vkey(self) -> str:
        return vkey(self.name, COSIGNATURE_V1, self.public_raw)

    def cosign(self, body: str, timestamp: int, *, corrupt: bool = False) -> str:
        """The signature line (with its newline) cosigning the note ``body`` at ``timestamp``;
        ``corrupt``: one bit of the signature flipped (a line that parses but fails)."""
        sig = bytearray(self.key.sign(cosigned_message(body, timestamp)))
        if corrupt:
            sig[7] ^= 0x01
        payload = self.key_id + timestamp.to_bytes(8, "big") + bytes(sig)
        return f"\u2014 {self.name} {b64encode(payload)}\n"


def _raw_public(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
