"""Test helpers: sign C2SP notes with freshly generated keys, independently of monitor.tlog.note.

Key IDs are computed here from the specs (C2SP signed-note, Rekor's ECDSA convention, Sigstore's
0xFF RSA rule), not by calling monitor code, so that tests can compare the two.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

EM_DASH = "\u2014"


@dataclass(frozen=True)
class NoteSigner:
    """A private key able to sign notes, with the (name, key ID) it signs as."""

    name: str
    key_id: bytes
    sign: Callable[[bytes], bytes]

    def line(self, text: str) -> str:
        """The signature line (with final newline) for note ``text``."""
        return signature_line(self.name, self.key_id, self.sign(text.encode("utf-8")))


def spki(key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def ed25519_key_id(name: str, key: ed25519.Ed25519PublicKey) -> bytes:
    """C2SP signed-note: SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4]."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert len(raw) == 32
    return hashlib.sha256(name.encode("utf-8") + bytes([0x0A, 0x01]) + raw).digest()[:4]


def ecdsa_key_id(key: ec.EllipticCurvePublicKey) -> bytes:
    """Rekor v1 convention: SHA-256(DER SubjectPublicKeyInfo)[:4] (the log ID's prefix)."""
    return hashlib.sha256(spki(key)).digest()[:4]


def rsa_key_id(name: str, key: rsa.RSAPublicKey) -> bytes:
    """Sigstore convention: SHA-256(name || 0x0A || 0xFF || "PKIX-RSA-PKCS#1v1.5" || SPKI)[:4]."""
    material = bytes([0x0A, 0xFF]) + b"PKIX-RSA-PKCS#1v1.5" + spki(key)
    return hashlib.sha256(name.encode("utf-8") + material).digest()[:4]


def ed25519_signer(
    name: str, key: ed25519.Ed25519PrivateKey | None = None
) -> tuple[NoteSigner, ed25519.Ed25519PrivateKey]:
    priv = key or ed25519.Ed25519PrivateKey.generate()
    kid = ed25519_key_id(name, priv.public_key())
    return NoteSigner(name, kid, priv.sign), priv


def ecdsa_signer(
    name: str, curve: ec.EllipticCurve, hash_algorithm: hashes.HashAlgorithm
) -> tuple[NoteSigner, ec.EllipticCurvePrivateKey]:
    priv = ec.generate_private_key(curve)

    def sign(message: bytes) -> bytes:
        return priv.sign(message, ec.ECDSA(hash_algorithm))

    return NoteSigner(name, ecdsa_key_id(priv.public_key()), sign), priv


def rsa_signer(name: str, bits: int = 2048) -> tuple[NoteSigner, rsa.RSAPrivateKey]:
    priv = rsa.generate_private_key(public_exponent=65537, key_size=bits)

    def sign(message: bytes) -> bytes:
        return priv.sign(message, padding.PKCS1v15(), hashes.SHA256())

    return NoteSigner(name, rsa_key_id(name, priv.public_key()), sign), priv


def signature_line(name: str, key_id: bytes, signature: bytes) -> str:
    blob = base64.b64encode(key_id + signature).decode("ascii")
    return f"{EM_DASH} {name} {blob}\n"


def make_note(text: str, lines: Iterable[str]) -> str:
    """A signed note: ``text`` (ending in a newline), a blank line, then the signature lines."""
    assert text.endswith("\n")
    return text + "\n" + "".join(lines)


def sign_note(text: str, signers: Iterable[NoteSigner]) -> str:
    return make_note(text, (s.line(text) for s in signers))


def checkpoint_text(origin: str, size: int, root: bytes, *extensions: str) -> str:
    lines = [origin, str(size), base64.b64encode(root).decode("ascii"), *extensions]
    return "\n".join(lines) + "\n"


def flip_bit(data: bytes, index: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[index] ^= 1 << bit
    return bytes(out)


def flip_signature_bit(note: str, line_number: int = 0) -> str:
    """Flip the lowest bit of the last signature byte (not the key ID) of one signature line."""
    text, sigs = note[: note.rindex("\n\n") + 2], note[note.rindex("\n\n") + 2 :]
    lines = sigs.splitlines(keepends=True)
    prefix, _, b64 = lines[line_number].rstrip("\n").rpartition(" ")
    blob = base64.b64decode(b64)
    lines[line_number] = f"{prefix} {base64.b64encode(flip_bit(blob, -1)).decode('ascii')}\n"
    return text + "".join(lines)
