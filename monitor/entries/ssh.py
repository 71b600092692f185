"""OpenSSH public keys (RFC 4253 §6.6, RFC 5656, RFC 8709, OpenSSH PROTOCOL.u2f) as Rekor
entries carry them: the ``ssh-keygen -lf`` fingerprint, the type, size or curve, and the
comment."""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives.asymmetric import ec

from monitor.core.errors import MalformedInputError
from monitor.entries.keyread import KeyReader, b64decode, check_size, key_text
from monitor.entries.record import KeySigner

__all__ = ["SSH_TYPES", "parse_ssh_public_key"]

_SSH = "ssh key"
_SK_ECDSA = "sk-ecdsa-sha2-nistp256@openssh.com"
_SK_ED25519 = "sk-ssh-ed25519@openssh.com"
_SSH_ECDSA = {
    "ecdsa-sha2-nistp256": ("nistp256", "P-256", ec.SECP256R1()),
    "ecdsa-sha2-nistp384": ("nistp384", "P-384", ec.SECP384R1()),
    "ecdsa-sha2-nistp521": ("nistp521", "P-521", ec.SECP521R1()),
    _SK_ECDSA: ("nistp256", "P-256", ec.SECP256R1()),
}
_SSH_EDDSA = {
    "ssh-ed25519": (32, "Ed25519", 256),
    _SK_ED25519: (32, "Ed25519", 256),
    "ssh-ed448": (57, "Ed448", 448),
}
SSH_TYPES = frozenset({"ssh-rsa", "ssh-dss", *_SSH_ECDSA, *_SSH_EDDSA})


def parse_ssh_public_key(data: bytes) -> KeySigner:
    """One OpenSSH public key line, ``<type> <base64 blob> [comment]`` (no options)."""
    check_size(data, _SSH)
    key_type, blob, comment = _ssh_fields(key_text(data, _SSH))
    reader = KeyReader(blob, _SSH)
    blob_type = _ssh_string(reader, "key type")
    if blob_type != key_type.encode():
        shown = blob_type.decode("utf-8", errors="replace")
        raise MalformedInputError(f"{_SSH}: blob type {shown!r} does not match {key_type!r}")
    size, curve = _ssh_material(key_type, reader)
    reader.expect_end("after key blob")
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")
    details = (("algorithm", key_type),) + ((("comment", comment),) if comment else ())
    return KeySigner(
        key_type="ssh", fingerprint="SHA256:" + digest, size=size, curve=curve, details=details
    )


def _ssh_fields(text: str) -> tuple[str, bytes, str]:
    """(type, blob, comment) of the line."""
    line = text.strip()
    if "\n" in line or "\r" in line:
        raise MalformedInputError(f"{_SSH}: more than one line")
    fields = line.split(None, 2)
    if len(fields) < 2:
        raise MalformedInputError(f"{_SSH}: expected '<type> <base64> [comment]'")
    if fields[0] not in SSH_TYPES:
        # Also what an authorized_keys options prefix or a certificate looks like here.
        raise MalformedInputError(f"{_SSH}: unsupported key type {fields[0][:64]!r}")
    blob = b64decode(fields[1], _SSH, "key blob")
    return fields[0], blob, fields[2].strip() if len(fields) == 3 else ""


def _ssh_string(reader: KeyReader, field: str) -> bytes:
    return reader.take(reader.uint(4, field), field)


def _ssh_mpint(reader: KeyReader, field: str) -> int:
    """A positive mpint (RFC 4251 §5): two's complement, so a set top bit means negative."""
    value = _ssh_string(reader, field)
    if not value or value[0] & 0x80:
        raise MalformedInputError(f"{_SSH}: {field} is not a positive integer")
    return int.from_bytes(value, "big")


def _ssh_material(key_type: str, reader: KeyReader) -> tuple[int | None, str | None]:
    """(size, curve) from the blob after its type string."""
    if key_type == "ssh-rsa":
        _ssh_mpint(reader, "RSA e")
        return _ssh_mpint(reader, "RSA n").bit_length(), None
    if key_type == "ssh-dss":
        p = _ssh_mpint(reader, "DSA p")
        for name in ("DSA q", "DSA g", "DSA y"):
            _ssh_mpint(reader, name)
        return p.bit_length(), None
    if key_type in _SSH_ECDSA:
        size, curve = _ssh_ecdsa(key_type, reader)
    else:
        length, curve, size = _SSH_EDDSA[key_type]
        if len(_ssh_string(reader, "public key")) != length:
            raise MalformedInputError(f"{_SSH}: {curve} key is not {length} bytes")
    if key_type.startswith("sk-"):
        _ssh_string(reader, "sk application")  # FIDO application, e.g. "ssh:"
    return size, curve


def _ssh_ecdsa(key_type: str, reader: KeyReader) -> tuple[int, str]:
    identifier, curve_name, curve = _SSH_ECDSA[key_type]
    if _ssh_string(reader, "curve name") != identifier.encode():
        raise MalformedInputError(f"{_SSH}: curve name does not match {key_type!r}")
    point = _ssh_string(reader, "EC point")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    except ValueError as exc:
        raise MalformedInputError(f"{_SSH}: EC point is not on {curve_name}") from exc
    return curve.key_size, curve_name
