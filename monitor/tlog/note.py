"""C2SP signed notes: parsing and signature verification.

A signed note is a UTF-8 text ending in a newline, a blank line, then one or more signature
lines ``— <key name> base64(key ID || signature)``. Verification follows the spec: signatures
from unknown keys (witness cosignatures, for example) are ignored, every signature from a known
(name, key ID) pair must verify, and at least one must.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from monitor.core.encoding import b64decode_strict
from monitor.core.errors import NoteError

SIGNATURE_PREFIX = "\u2014 "
MAX_SIGNATURES = 100
MAX_NOTE_BYTES = 1 << 20

_MALFORMED = "note-format"
_SIGNATURE = "checkpoint-signature"


def decode_base64(text: str, what: str, check: str = _MALFORMED) -> bytes:
    try:
        return b64decode_strict(text)
    except ValueError as e:
        raise NoteError(check, f"{what} is not valid base64") from e


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a note."""

    name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True)
class SignedNote:
    """A parsed (not yet verified) signed note. ``text`` is what the signatures cover."""

    text: str
    signatures: tuple[NoteSignature, ...]

    @classmethod
    def from_text(cls, raw: str | bytes) -> SignedNote:
        """Parse a signed note, rejecting anything the C2SP format does not allow."""
        if isinstance(raw, bytes):
            if len(raw) > MAX_NOTE_BYTES:
                raise NoteError(_MALFORMED, f"note is larger than {MAX_NOTE_BYTES} bytes")
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise NoteError(_MALFORMED, "note is not valid UTF-8") from e
        if len(raw) > MAX_NOTE_BYTES:
            raise NoteError(_MALFORMED, f"note is larger than {MAX_NOTE_BYTES} bytes")
        try:
            size = len(raw.encode("utf-8"))  # a str (e.g. from JSON) may hold lone surrogates
        except UnicodeEncodeError as e:
            raise NoteError(_MALFORMED, "note is not valid UTF-8") from e
        if size > MAX_NOTE_BYTES:
            raise NoteError(_MALFORMED, f"note is larger than {MAX_NOTE_BYTES} bytes")
        for ch in raw:
            if ch < " " and ch != "\n":
                raise NoteError(_MALFORMED, f"note contains control character {ord(ch):#04x}")
        if not raw.endswith("\n"):
            raise NoteError(_MALFORMED, "note does not end with a newline")
        split = raw.rfind("\n\n")
        if split < 0:
            raise NoteError(_MALFORMED, "note has no blank line before its signatures")
        text = raw[: split + 1]
        block = raw[split + 2 : -1]
        if not block:
            raise NoteError(_MALFORMED, "note has no signatures")
        sig_lines = block.split("\n")
        if len(sig_lines) > MAX_SIGNATURES:
            raise NoteError(_MALFORMED, f"note has more than {MAX_SIGNATURES} signatures")
        sigs = tuple(_parse_signature_line(line, i + 1) for i, line in enumerate(sig_lines))
        return cls(text=text, signatures=sigs)


def _parse_signature_line(line: str, number: int) -> NoteSignature:
    if not line.startswith(SIGNATURE_PREFIX):
        raise NoteError(_MALFORMED, f"signature line {number} does not start with an em dash")
    rest = line[len(SIGNATURE_PREFIX) :]
    name, sep, b64 = rest.rpartition(" ")
    if not sep or not name:
        raise NoteError(_MALFORMED, f"signature line {number} has no key name")
    if any(c.isspace() or c == "+" for c in name):
        raise NoteError(_MALFORMED, f"signature line {number} has an invalid key name {name!r}")
    blob = decode_base64(b64, f"signature line {number}")
    if len(blob) < 5:
        raise NoteError(_MALFORMED, f"signature line {number} is too short")
    return NoteSignature(name=name, key_id=blob[:4], signature=blob[4:])


class NoteVerifier(Protocol):
    """A key that can verify note signatures: identified by (name, key ID)."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def verify(self, message: bytes, signature: bytes) -> bool: ...


@dataclass(frozen=True)
class Ed25519NoteVerifier:
    """C2SP Ed25519 (signature type 0x01)."""

    name: str
    key_id: bytes
    public_key: ed25519.Ed25519PublicKey

    @classmethod
    def create(cls, name: str, public_key: ed25519.Ed25519PublicKey) -> Ed25519NoteVerifier:
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        key_id = hashlib.sha256(name.encode() + b"\n\x01" + raw).digest()[:4]
        return cls(name, key_id, public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


_EC_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}


def spki_der(key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass(frozen=True)
class EcdsaNoteVerifier:
    """ECDSA (signature type 0x02): key ID is SHA-256 of the DER SPKI, as Rekor v1 uses."""

    name: str
    key_id: bytes
    public_key: ec.EllipticCurvePublicKey
    hash_algorithm: type[hashes.HashAlgorithm]

    @classmethod
    def create(
        cls,
        name: str,
        public_key: ec.EllipticCurvePublicKey,
        hash_algorithm: type[hashes.HashAlgorithm] | None = None,
    ) -> EcdsaNoteVerifier:
        algo = hash_algorithm or _EC_HASHES.get(public_key.curve.name)
        if algo is None:
            raise NoteError(_SIGNATURE, f"unsupported ECDSA curve {public_key.curve.name}")
        key_id = hashlib.sha256(spki_der(public_key)).digest()[:4]
        return cls(name, key_id, public_key, algo)

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self.public_key.verify(signature, message, ec.ECDSA(self.hash_algorithm()))
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class RsaNoteVerifier:
    """RSA PKCS#1 v1.5 or PSS with SHA-256 (Sigstore's 0xFF "PKIX-RSA-PKCS#1v1.5" convention)."""

    name: str
    key_id: bytes
    public_key: rsa.RSAPublicKey
    pss: bool = False

    @classmethod
    def create(cls, name: str, public_key: rsa.RSAPublicKey, pss: bool = False) -> RsaNoteVerifier:
        key_id = hashlib.sha256(
            name.encode() + b"\n\xff" + b"PKIX-RSA-PKCS#1v1.5" + spki_der(public_key)
        ).digest()[:4]
        return cls(name, key_id, public_key, pss)

    def verify(self, message: bytes, signature: bytes) -> bool:
        pad: padding.AsymmetricPadding = (
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
            if self.pss
            else padding.PKCS1v15()
        )
        try:
            self.public_key.verify(signature, message, pad, hashes.SHA256())
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class AnyNameVerifier:
    """A key that is matched by its key hint alone, whatever name the signature line carries.

    Rekor v1 signs checkpoints under its configured hostname (a Kubernetes pod name, say),
    which need not be the name it is reached by and changes when the pod restarts; Sigstore's
    clients pick its signature line by key hint and verify it with the log's key. C2SP keys
    (Rekor v2, witnesses) are never wrapped like this: their key IDs derive from the name.
    """

    inner: NoteVerifier

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def key_id(self) -> bytes:
        return self.inner.key_id

    def verify(self, message: bytes, signature: bytes) -> bool:
        return self.inner.verify(message, signature)


def verified_signatures(
    note: SignedNote, verifiers: Sequence[NoteVerifier]
) -> tuple[tuple[NoteVerifier, NoteSignature], ...]:
    """Verify ``note`` against the trusted ``verifiers``; return each verifier whose signature
    verified, with the signature line it verified (whose name an ``AnyNameVerifier`` takes as
    it comes).

    A line is matched by (name, key ID), or by key ID alone for an ``AnyNameVerifier``.
    Unknown signers are ignored; a known signer with a bad signature rejects the whole note;
    a note with no verified signature from a known key is rejected.
    """
    named = {(v.name, v.key_id): v for v in verifiers if not isinstance(v, AnyNameVerifier)}
    by_hint = {v.key_id: v for v in verifiers if isinstance(v, AnyNameVerifier)}
    message = note.text.encode("utf-8")
    verified: list[tuple[NoteVerifier, NoteSignature]] = []
    for sig in note.signatures:
        v = named.get((sig.name, sig.key_id)) or by_hint.get(sig.key_id)
        if v is None:
            continue
        if any(done is v for done, _ in verified):
            raise NoteError(_MALFORMED, f"note is signed twice by {sig.name}/{sig.key_id.hex()}")
        if not v.verify(message, sig.signature):
            raise NoteError(
                _SIGNATURE,
                f"signature by {sig.name} (key ID {sig.key_id.hex()}) does not verify",
            )
        verified.append((v, sig))
    if not verified:
        signers = ", ".join(f"{s.name}/{s.key_id.hex()}" for s in note.signatures)
        wanted = ", ".join(_describe(v) for v in verifiers) or "none"
        raise NoteError(
            _SIGNATURE,
            f"no signature from a trusted key (signed by: {signers}; trusted: {wanted})",
        )
    return tuple(verified)


def _describe(v: NoteVerifier) -> str:
    if isinstance(v, AnyNameVerifier):
        return f"any name/{v.key_id.hex()}"
    return f"{v.name}/{v.key_id.hex()}"


def verify_note(note: SignedNote, verifiers: Sequence[NoteVerifier]) -> tuple[NoteVerifier, ...]:
    """Verify ``note`` (see ``verified_signatures``); return the verifiers whose signature
    verified."""
    return tuple(v for v, _ in verified_signatures(note, verifiers))
