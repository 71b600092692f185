"""Witness cosignatures (C2SP tlog-cosignature) on signed notes, and witness verifier keys.

A vkey is ``<name>+<8 hex key ID>+base64(type byte || public key)``. Witnesses use type 0x04
(``cosignature/v1``, Ed25519) or 0x06 (``subtree/v1``, ML-DSA-44: parsed, not yet verified).
A cosignature line's payload is an 8-byte big-endian UNIX time then the signature, over
``cosignature/v1\\ntime <t>\\n`` followed by the note text.

Pure and synchronous. What a log relays from witnesses is hostile: a bad cosignature is
reported as ``invalid`` on its line, never raised; only a bad vkey (configuration) raises.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from monitor.core.encoding import b64decode_strict, b64encode
from monitor.core.errors import WitnessConfigError
from monitor.tlog.note import NoteSignature, SignedNote

Algorithm = Literal["cosignature/v1", "subtree/v1"]
Status = Literal["verified", "invalid", "unsupported"]

TYPE_ED25519 = 0x01
TYPE_COSIGNATURE_V1 = 0x04
TYPE_SUBTREE_V1 = 0x06
_WITNESS_TYPES: dict[int, tuple[Algorithm, int]] = {
    TYPE_COSIGNATURE_V1: ("cosignature/v1", 32),
    TYPE_SUBTREE_V1: ("subtree/v1", 1312),  # ML-DSA-44 public key size (FIPS 204)
}
# a vkey with the largest key we know (ML-DSA-44, ~1750 base64 characters) fits well below
MAX_VKEY_CHARS = 4096
MAX_KEY_NAME_BYTES = 1024
_KEY_ID_RE = re.compile(r"[0-9a-fA-F]{8}")

_TIME_BYTES = 8
_ED25519_SIG_BYTES = 64
# Bounds of a plausible cosignature time: cosignature/v1 did not exist before 2022, and a time
# past 2100 is a broken or hostile clock, whatever ``now`` is.
MIN_COSIGNATURE_TIME = 1640995200  # 2022-01-01T00:00:00Z
MAX_COSIGNATURE_TIME = 4102444800  # 2100-01-01T00:00:00Z
# how far ahead of the caller's ``now`` a witness clock may run before its time is refused
MAX_CLOCK_SKEW = 600


def key_id_for(name: str, type_byte: int, material: bytes) -> bytes:
    """C2SP signed-note key ID: SHA-256(name || 0x0A || type || public key)[:4]."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([type_byte]) + material).digest()[:4]


def check_key_name(name: str, what: str = "key name") -> None:
    """Signed-note key names: non-empty, no Unicode spaces, no '+', no control characters."""
    if not name:
        raise WitnessConfigError(f"{what} is empty")
    for ch in name:
        if ch.isspace() or ch == "+" or ch < " " or ch == "\x7f":
            raise WitnessConfigError(f"{what} {name!r} contains {ch!r}, not allowed in key names")
        if "\ud800" <= ch <= "\udfff":
            raise WitnessConfigError(f"{what} {name!r} is not valid UTF-8")
    if len(name.encode("utf-8")) > MAX_KEY_NAME_BYTES:
        raise WitnessConfigError(f"{what} is longer than {MAX_KEY_NAME_BYTES} bytes")


def split_vkey(vkey: str) -> tuple[str, bytes, int, bytes]:
    """Split a vkey into (name, key ID, type byte, key material), checking its syntax.

    The key type, its length and the key ID are the caller's to check (``check_key_id``), in
    that order, so that a wrong type is named as such rather than as a key ID mismatch.
    """
    if len(vkey) > MAX_VKEY_CHARS:
        raise WitnessConfigError(f"verifier key is longer than {MAX_VKEY_CHARS} characters")
    # the base64 part may itself contain '+': split on the first two only
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise WitnessConfigError(f"verifier key {vkey[:80]!r} is not <name>+<key ID>+<base64 key>")
    name, hex_id, b64 = parts
    check_key_name(name, "verifier key name")
    if not _KEY_ID_RE.fullmatch(hex_id):
        raise WitnessConfigError(
            f"verifier key {name!r}: key ID {hex_id[:20]!r} is not 8 hex digits"
        )
    try:
        blob = b64decode_strict(b64)
    except ValueError as e:
        raise WitnessConfigError(f"verifier key {name!r}: key is not valid base64") from e
    if len(blob) < 2:
        raise WitnessConfigError(f"verifier key {name!r}: key is {len(blob)} bytes, too short")
    return name, bytes.fromhex(hex_id), blob[0], blob[1:]


def check_key_id(name: str, key_id: bytes, type_byte: int, material: bytes) -> None:
    """Every key type we accept binds its key ID to the name and key; a vkey must agree."""
    expected = key_id_for(name, type_byte, material)
    if key_id != expected:
        raise WitnessConfigError(
            f"verifier key {name!r}: key ID {key_id.hex()} does not match the name and key "
            f"(expected {expected.hex()})"
        )


@dataclass(frozen=True)
class WitnessKey:
    """A witness's verifier key: who (name, key ID), which cosignature format, which key."""

    name: str
    key_id: bytes
    alg: Algorithm
    public_key: bytes

    @classmethod
    def parse(cls, vkey: str) -> WitnessKey:
        """Parse a witness vkey, raising ``WitnessConfigError`` that names what is wrong."""
        if not isinstance(vkey, str):
            raise WitnessConfigError(f"verifier key must be a string, not {type(vkey).__name__}")
        name, key_id, type_byte, material = split_vkey(vkey)
        _check_witness_type(name, type_byte, len(material))
        check_key_id(name, key_id, type_byte, material)
        return cls(name, key_id, _WITNESS_TYPES[type_byte][0], material)

    def vkey(self) -> str:
        """The vkey text this key parses from."""
        type_byte = TYPE_COSIGNATURE_V1 if self.alg == "cosignature/v1" else TYPE_SUBTREE_V1
        return f"{self.name}+{self.key_id.hex()}+{b64encode(bytes([type_byte]) + self.public_key)}"


def _check_witness_type(name: str, type_byte: int, length: int) -> None:
    known = _WITNESS_TYPES.get(type_byte)
    if known is None:
        hint = " (a log's Ed25519 key, not a witness key)" if type_byte == TYPE_ED25519 else ""
        raise WitnessConfigError(
            f"verifier key {name!r}: unknown witness key type byte {type_byte:#04x}{hint}; "
            "expected 0x04 (cosignature/v1) or 0x06 (subtree/v1)"
        )
    alg, size = known
    if length != size:
        raise WitnessConfigError(
            f"verifier key {name!r}: {alg} key is {length} bytes, expected {size}"
        )


@dataclass(frozen=True)
class Cosignature:
    """What one cosignature line from a known witness says. ``time`` is None when the line is
    too short to hold one; ``reason`` says why a line is not verified (empty when it is)."""

    witness: str
    key_id: str
    time: int | None
    status: Status
    reason: str = ""


def verify_cosignatures(
    note_text: str,
    signatures: Sequence[NoteSignature],
    keys: Sequence[WitnessKey],
    *,
    now: int | None = None,
) -> tuple[Cosignature, ...]:
    """Check every signature line that matches a known witness key by (name, key ID).

    Lines of unknown keys (the log's own among them) are ignored. Each matched line is reported
    once, in note order: ``verified``, ``invalid`` (bad length, implausible time, or a signature
    that does not verify) or ``unsupported`` (subtree/v1). With ``now`` (UNIX seconds), a time
    more than ``MAX_CLOCK_SKEW`` ahead of it is invalid too.
    """
    by_id: dict[tuple[str, bytes], list[WitnessKey]] = {}
    for key in keys:
        by_id.setdefault((key.name, key.key_id), []).append(key)
    body = note_text.encode("utf-8")
    found: list[Cosignature] = []
    for sig in signatures:
        matched = by_id.get((sig.name, sig.key_id))
        if matched:
            found.append(_check_line(body, sig, matched, now))
    return tuple(found)


def verify_note_cosignatures(
    raw: str | bytes, keys: Sequence[WitnessKey], *, now: int | None = None
) -> tuple[Cosignature, ...]:
    """``verify_cosignatures`` on a whole signed note; a malformed note raises ``NoteError``."""
    note = SignedNote.from_text(raw)
    return verify_cosignatures(note.text, note.signatures, keys, now=now)


def _check_line(
    body: bytes, sig: NoteSignature, keys: list[WitnessKey], now: int | None
) -> Cosignature:
    payload = sig.signature
    time = int.from_bytes(payload[:_TIME_BYTES], "big") if len(payload) >= _TIME_BYTES else None

    def result(status: Status, reason: str = "") -> Cosignature:
        return Cosignature(sig.name, sig.key_id.hex(), time, status, reason)

    ed_keys = [k for k in keys if k.alg == "cosignature/v1"]
    if not ed_keys:
        return result("unsupported", "subtree/v1 (ML-DSA-44) cosignatures are not verified")
    expected = _TIME_BYTES + _ED25519_SIG_BYTES
    if time is None or len(payload) != expected:
        return result("invalid", f"cosignature is {len(payload)} bytes, expected {expected}")
    if time < MIN_COSIGNATURE_TIME or time >= MAX_COSIGNATURE_TIME:
        return result("invalid", f"cosignature time {time} is not a plausible date")
    if now is not None and time > now + MAX_CLOCK_SKEW:
        return result("invalid", f"cosignature time {time} is {time - now} s in the future")
    message = b"cosignature/v1\ntime %d\n" % time + body
    for key in ed_keys:
        try:
            ed25519.Ed25519PublicKey.from_public_bytes(key.public_key).verify(
                payload[_TIME_BYTES:], message
            )
        except (InvalidSignature, ValueError):
            continue
        return result("verified")
    return result("invalid", "cosignature does not verify")
