"""Cosigning checkpoints as a witness does (C2SP tlog-cosignature, ``cosignature/v1``), with the
monitor's own key: a peer that trusts the monitor can check that the checkpoint it publishes
(``/api/v1/logs/<log>/checkpoint``) is one the monitor verified and proved consistent with
everything it saw before, which is what a witness's cosignature states.

The private key is kept in the signed-note form of Go's ``golang.org/x/mod/sumdb/note``, which
the transparency-dev witness also reads: ``PRIVATE+KEY+<name>+<8 hex: the Ed25519 note key
ID>+<base64 of 0x01 and the 32-byte seed>``. Its cosignatures carry the cosignature/v1 key ID,
SHA-256(name || 0x0A || 0x04 || public key)[:4]; the verifier key published for peers is
``<name>+<that key ID>+<base64 of 0x04 and the public key>``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from monitor.core.errors import WitnessConfigError
from monitor.tlog.note import SignedNote
from monitor.tlog.witness import TYPE_COSIGNATURE_V1, TYPE_ED25519, check_key_name, key_id_for

__all__ = ["CheckpointCosigner"]

PRIVATE_PREFIX = "PRIVATE+KEY+"
_SEED_BYTES = 32


def _raw(public: ed25519.Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class CheckpointCosigner:
    """The monitor's cosignature/v1 key."""

    name: str
    key: ed25519.Ed25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls, name: str) -> CheckpointCosigner:
        check_key_name(name)
        return cls(name, ed25519.Ed25519PrivateKey.generate())

    @classmethod
    def parse(cls, text: str, where: str = "cosigning key") -> CheckpointCosigner:
        """A private key in Go's note form; ``WitnessConfigError`` naming what is wrong
        (never quoting the key)."""
        text = text.strip()
        if not text.startswith(PRIVATE_PREFIX):
            raise WitnessConfigError(f"does not start with {PRIVATE_PREFIX}", where)
        parts = text[len(PRIVATE_PREFIX) :].split("+", 2)
        if len(parts) != 3:
            raise WitnessConfigError(f"is not {PRIVATE_PREFIX}<name>+<key ID>+<key>", where)
        name, hex_id, b64 = parts
        try:
            check_key_name(name)
        except WitnessConfigError as e:
            raise WitnessConfigError(e.reason, where) from None
        try:
            blob = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise WitnessConfigError("its key is not valid base64", where) from None
        if len(blob) != 1 + _SEED_BYTES or blob[0] != TYPE_ED25519:
            raise WitnessConfigError("is not an Ed25519 signed-note key (0x01 and 32 bytes)", where)
        key = ed25519.Ed25519PrivateKey.from_private_bytes(blob[1:])
        expected = key_id_for(name, TYPE_ED25519, _raw(key.public_key())).hex()
        if hex_id.lower() != expected:
            raise WitnessConfigError(
                f"key ID {hex_id[:16]!r} does not match the name and key (expected {expected})",
                where,
            )
        return cls(name, key)

    def private_text(self) -> str:
        seed = self.key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        note_id = key_id_for(self.name, TYPE_ED25519, _raw(self.key.public_key())).hex()
        b64 = base64.b64encode(bytes([TYPE_ED25519]) + seed).decode()
        return f"{PRIVATE_PREFIX}{self.name}+{note_id}+{b64}"

    @property
    def key_id(self) -> bytes:
        return key_id_for(self.name, TYPE_COSIGNATURE_V1, _raw(self.key.public_key()))

    def vkey(self) -> str:
        """The verifier key peers configure to check this monitor's cosignatures."""
        material = bytes([TYPE_COSIGNATURE_V1]) + _raw(self.key.public_key())
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(material).decode()}"

    def cosign(self, note: str, time: int) -> str:
        """``note`` (a signed checkpoint) with this key's cosignature at ``time`` (unix
        seconds) appended after its signatures."""
        body = note if note.endswith("\n") else note + "\n"  # as stored, it may lack it
        parsed = SignedNote.from_text(body)
        message = b"cosignature/v1\ntime %d\n" % time + parsed.text.encode()
        blob = self.key_id + time.to_bytes(8, "big") + self.key.sign(message)
        return f"{body}\u2014 {self.name} {base64.b64encode(blob).decode()}\n"
