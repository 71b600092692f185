"""Public keys as Rekor entries carry them: PKIX (PEM/DER), OpenPGP, OpenSSH and minisign.

Each parser turns one key into a ``KeySigner`` (type, fingerprint, size, curve, details). Input
comes straight from the log, so it is hostile: every length is checked before it is used, every
loop is bounded, and the only exception that leaves this module is ``MalformedInputError`` with a
message naming the format and the fault (``pgp key: packet length exceeds data``).

Fingerprints are the ones the usual tools print, so that a person can match them by eye:
``sha256:<hex>`` of the DER SubjectPublicKeyInfo (``openssl pkey -pubin -outform DER |
sha256sum``), the OpenPGP fingerprint (``gpg --fingerprint``, lower-case), ``SHA256:<base64>``
(``ssh-keygen -lf``) and the minisign key ID (``minisign`` key file comment).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
    load_pem_public_key,
)

from monitor.core.errors import MalformedInputError
from monitor.entries import der
from monitor.entries.record import KeySigner

__all__ = [
    "MAX_KEY_BYTES",
    "curve_name",
    "parse_minisign_public_key",
    "parse_pgp_public_key",
    "parse_pkix_public_key",
    "parse_public_key",
    "parse_ssh_public_key",
]

# Largest key text accepted. Real keys are a few KiB (a PGP key with many certifications maybe
# a few hundred); anything larger is abuse, and refusing it early bounds all the work below.
MAX_KEY_BYTES = 1 << 20
MAX_PGP_PACKETS = 8192  # a 1 MiB keyring of minimal packets would otherwise be ~500k packets
MAX_USER_IDS = 32
MAX_USER_ID_BYTES = 2048  # display text only: longer IDs are cut, not rejected


class _Reader:
    """A bounds-checked cursor over bytes: reading past the end is a ``MalformedInputError``."""

    def __init__(self, data: bytes, what: str) -> None:
        self._data = data
        self._pos = 0
        self._what = what

    def remaining(self) -> int:
        return len(self._data) - self._pos

    def position(self) -> int:
        return self._pos

    def take(self, n: int, field: str) -> bytes:
        if n < 0 or n > self.remaining():
            raise MalformedInputError(f"{self._what}: {field} exceeds data")
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def uint(self, n: int, field: str) -> int:
        return int.from_bytes(self.take(n, field), "big")

    def expect_end(self, field: str) -> None:
        if self.remaining():
            raise MalformedInputError(f"{self._what}: {self.remaining()} trailing bytes {field}")


def _check_size(data: bytes, what: str) -> None:
    if len(data) > MAX_KEY_BYTES:
        raise MalformedInputError(f"{what}: input is {len(data)} bytes, more than {MAX_KEY_BYTES}")
    if not data.strip():
        raise MalformedInputError(f"{what}: input is empty")


def _b64decode(text: str | bytes, what: str, field: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedInputError(f"{what}: bad base64 in {field}") from exc


def _text(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedInputError(f"{what}: not UTF-8 text") from exc


# --------------------------------------------------------------------------------------------
# PKIX (X.509 SubjectPublicKeyInfo)

_PKIX = "pkix key"
_PEM_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]{1,64})-----")
# Labels cryptography loads as a public key: SPKI, and PKCS#1 RSA (openssl -RSAPublicKey_out).
_PEM_KEY_LABELS = (b"PUBLIC KEY", b"RSA PUBLIC KEY")
_PKIX_FIXED_SIZE: tuple[tuple[type, tuple[str, int, str]], ...] = (
    (ed25519.Ed25519PublicKey, ("ed25519", 256, "Ed25519")),
    (ed448.Ed448PublicKey, ("ed448", 448, "Ed448")),
    # Key-agreement keys cannot sign: "unknown" as a signer, but say which curve they are.
    (x25519.X25519PublicKey, ("unknown", 256, "X25519")),
    (x448.X448PublicKey, ("unknown", 448, "X448")),
)


_NIST_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


def curve_name(curve: ec.EllipticCurve) -> str:
    """A curve as signing records name it: NIST's name (P-256) where it has one."""
    return _NIST_CURVES.get(curve.name, curve.name)


def parse_pkix_public_key(data: bytes) -> KeySigner:
    """A PEM ``PUBLIC KEY`` / ``RSA PUBLIC KEY`` or DER SubjectPublicKeyInfo."""
    _check_size(data, _PKIX)
    key = _load_pkix(data)
    try:
        # Re-encode so that PKCS#1 input and SPKI input of one key share one fingerprint.
        der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise MalformedInputError(f"{_PKIX}: cannot encode as SubjectPublicKeyInfo") from exc
    key_type, size, curve = _describe_pkix(key)
    return KeySigner(
        key_type=key_type,
        fingerprint="sha256:" + hashlib.sha256(der).hexdigest(),
        size=size,
        curve=curve,
    )


def _load_pkix(data: bytes) -> PublicKeyTypes:
    begin = _PEM_BEGIN.search(data)
    try:
        if begin is None:
            return load_der_public_key(data)
        return load_pem_public_key(_pem_block(data, begin))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        form = "DER" if begin is None else "PEM"
        raise MalformedInputError(f"{_PKIX}: {form} is not a loadable public key") from exc


def _pem_block(data: bytes, begin: re.Match[bytes]) -> bytes:
    """The first PEM block, alone: a certificate or a second block must not be read instead."""
    label = begin.group(1)
    if label not in _PEM_KEY_LABELS:
        shown = label.decode("ascii")
        raise MalformedInputError(f"{_PKIX}: PEM block is {shown!r}, not a public key")
    end_marker = b"-----END " + label + b"-----"
    end = data.find(end_marker, begin.end())
    if end < 0:
        raise MalformedInputError(f"{_PKIX}: PEM END line missing")
    return data[begin.start() : end + len(end_marker)]


def _describe_pkix(key: PublicKeyTypes) -> tuple[str, int | None, str | None]:
    """(key_type, size in bits, curve) of a loaded key."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ecdsa", key.curve.key_size, curve_name(key.curve)
    if isinstance(key, rsa.RSAPublicKey | dsa.DSAPublicKey):
        return ("rsa" if isinstance(key, rsa.RSAPublicKey) else "dsa"), key.key_size, None
    for cls, description in _PKIX_FIXED_SIZE:
        if isinstance(key, cls):
            return description
    return "unknown", None, None


# --------------------------------------------------------------------------------------------
# OpenPGP (RFC 4880, RFC 9580; v5 from LibrePGP / rfc4880bis)

_PGP = "pgp key"
_ARMOR_BEGIN = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
_ARMOR_END = "-----END PGP PUBLIC KEY BLOCK-----"
_TAG_PUBLIC_KEY = 6
_TAG_MARKER = 10  # RFC 4880 §5.8: "must be ignored when received"; may precede a key
_TAG_USER_ID = 13
_TAG_NAMES = {
    1: "PKESK",
    2: "Signature",
    3: "SKESK",
    4: "One-Pass Signature",
    5: "Secret-Key",
    6: "Public-Key",
    7: "Secret-Subkey",
    8: "Compressed Data",
    9: "Symmetrically Encrypted Data",
    11: "Literal Data",
    12: "Trust",
    13: "User ID",
    14: "Public-Subkey",
    17: "User Attribute",
    18: "SEIPD",
}
_PGP_ALGORITHMS = {
    1: "RSA",
    2: "RSA-E",
    3: "RSA-S",
    16: "Elgamal",
    17: "DSA",
    18: "ECDH",
    19: "ECDSA",
    20: "Elgamal-S",
    22: "EdDSALegacy",
    25: "X25519",
    26: "X448",
    27: "Ed25519",
    28: "Ed448",
}
# Curve OIDs (DER contents, hex) of RFC 9580 §9.2 plus the RFC 8410 ones GnuPG 2.3+ writes.
_PGP_CURVES: dict[str, tuple[str, int]] = {
    "2a8648ce3d030107": ("P-256", 256),
    "2b81040022": ("P-384", 384),
    "2b81040023": ("P-521", 521),
    "2b8104000a": ("secp256k1", 256),
    "2b2403030208010107": ("brainpoolP256r1", 256),
    "2b240303020801010b": ("brainpoolP384r1", 384),
    "2b240303020801010d": ("brainpoolP512r1", 512),
    "2b06010401da470f01": ("Ed25519", 256),
    "2b060104019755010501": ("Curve25519", 256),
    "2b656e": ("X25519", 256),
    "2b656f": ("X448", 448),
    "2b6570": ("Ed25519", 256),
    "2b6571": ("Ed448", 448),
}
# Native-key algorithms of RFC 9580: fixed-size raw keys, (bytes, curve, bits).
_PGP_RAW_KEYS = {
    25: (32, "X25519", 256),
    26: (56, "X448", 448),
    27: (32, "Ed25519", 256),
    28: (57, "Ed448", 448),
}
_FINGERPRINT_PREFIX = {4: (b"\x99", 2), 5: (b"\x9a", 4), 6: (b"\x9b", 4)}


def _crc24_table() -> tuple[int, ...]:
    """RFC 4880 §6.1 CRC-24 (poly 0x864CFB), one entry per byte value."""
    table = []
    for byte in range(256):
        crc = byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
        table.append(crc & 0xFFFFFF)
    return tuple(table)


_CRC24_TABLE = _crc24_table()


def _crc24(data: bytes) -> int:
    crc = 0xB704CE
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFF) ^ _CRC24_TABLE[(crc >> 16) ^ byte]
    return crc


def parse_pgp_public_key(data: bytes) -> KeySigner:
    """An OpenPGP transferable public key, ASCII-armored or binary. The primary key is the first
    Public-Key packet; the User IDs are those that follow it (up to 32)."""
    _check_size(data, _PGP)
    binary = _dearmor(data) if data.lstrip().startswith(b"-----") else data
    packets = _pgp_packets(binary)
    primary = _primary_index(packets)
    fingerprint, details, size, curve = _pgp_key(packets[primary][1])
    return KeySigner(
        key_type="pgp",
        fingerprint=fingerprint,
        size=size,
        curve=curve,
        details=details + _user_ids(packets[primary + 1 :]),
    )


def _dearmor(data: bytes) -> bytes:
    """The binary inside one ``PGP PUBLIC KEY BLOCK`` armor (RFC 9580 §6.2)."""
    try:
        lines = [line.strip() for line in data.decode("ascii").splitlines()]
    except UnicodeDecodeError as exc:
        raise MalformedInputError(f"{_PGP}: armor is not ASCII") from exc
    start = next((i for i, line in enumerate(lines) if line), len(lines))
    if start == len(lines) or lines[start] != _ARMOR_BEGIN:
        raise MalformedInputError(f"{_PGP}: armor does not begin with {_ARMOR_BEGIN}")
    try:
        end = lines.index(_ARMOR_END, start + 1)
    except ValueError as exc:
        raise MalformedInputError(f"{_PGP}: armor END line missing") from exc
    body = _skip_armor_headers(lines[start + 1 : end])
    checksum = None
    if body and body[-1].startswith("="):
        checksum = body.pop()
    if any(line.startswith("=") for line in body):
        raise MalformedInputError(f"{_PGP}: armor checksum line is not the last line")
    binary = _b64decode("".join(body), _PGP, "armor body")
    if checksum is not None:
        _check_crc24(binary, checksum)
    return binary


def _skip_armor_headers(lines: list[str]) -> list[str]:
    """Drop ``Key: value`` header lines and the blank line after them. Base64 never holds a
    colon, so a writer that omits the blank line (no headers) is still read correctly."""
    index = 0
    while index < len(lines) and ":" in lines[index]:
        index += 1
    if index < len(lines) and not lines[index]:
        index += 1
    body = lines[index:]
    if any(not line for line in body):
        raise MalformedInputError(f"{_PGP}: blank line inside armor body")
    return body


def _check_crc24(binary: bytes, line: str) -> None:
    if len(line) != 5:
        raise MalformedInputError(f"{_PGP}: armor checksum line is not '=' and 4 characters")
    expected = int.from_bytes(_b64decode(line[1:], _PGP, "armor checksum"), "big")
    if _crc24(binary) != expected:
        raise MalformedInputError(f"{_PGP}: armor CRC24 mismatch")


def _pgp_packets(data: bytes) -> list[tuple[int, bytes]]:
    """(tag, body) of every packet; the whole input must be whole packets."""
    packets: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        if len(packets) >= MAX_PGP_PACKETS:
            raise MalformedInputError(f"{_PGP}: more than {MAX_PGP_PACKETS} packets")
        tag, body_start, length = _packet_header(data, pos)
        if length > len(data) - body_start:
            raise MalformedInputError(f"{_PGP}: packet length exceeds data")
        packets.append((tag, data[body_start : body_start + length]))
        pos = body_start + length
    if not packets:
        raise MalformedInputError(f"{_PGP}: no packets")
    return packets


def _packet_header(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, offset of the body, body length) of the packet at ``pos`` (RFC 9580 §4.2)."""
    reader = _Reader(data[pos : pos + 6], _PGP)  # a header is at most 6 bytes
    ctb = reader.uint(1, "packet header")
    if not ctb & 0x80:
        raise MalformedInputError(f"{_PGP}: packet header bit 7 not set at offset {pos}")
    if ctb & 0x40:
        tag = ctb & 0x3F
        length = _new_format_length(reader)
    else:
        tag = (ctb >> 2) & 0x0F
        length_type = ctb & 0x03
        if length_type == 3:
            # Indeterminate length runs to the end of the input: for data packets only.
            raise MalformedInputError(f"{_PGP}: indeterminate packet length not allowed")
        length = reader.uint(1 << length_type, "packet length")
    if tag == 0:
        raise MalformedInputError(f"{_PGP}: packet tag 0 is reserved")
    return tag, pos + reader.position(), length


def _new_format_length(reader: _Reader) -> int:
    first = reader.uint(1, "packet length")
    if first < 192:
        return first
    if first < 224:
        return ((first - 192) << 8) + reader.uint(1, "packet length") + 192
    if first == 255:
        return reader.uint(4, "packet length")
    # Partial lengths stream literal/encrypted data; RFC 9580 §4.2.1.4 forbids them elsewhere.
    raise MalformedInputError(f"{_PGP}: partial body length not allowed for key packets")


def _primary_index(packets: list[tuple[int, bytes]]) -> int:
    for index, (tag, _) in enumerate(packets):
        if tag == _TAG_PUBLIC_KEY:
            return index
        if tag != _TAG_MARKER:
            name = _TAG_NAMES.get(tag, "unknown")
            raise MalformedInputError(
                f"{_PGP}: packet tag {tag} ({name}) before the Public-Key packet (tag 6)"
            )
    raise MalformedInputError(f"{_PGP}: no Public-Key packet (tag 6)")


def _pgp_key(
    body: bytes,
) -> tuple[str, tuple[tuple[str, str], ...], int | None, str | None]:
    """(fingerprint, details, size, curve) of a Public-Key packet body (RFC 9580 §5.5.2)."""
    reader = _Reader(body, _PGP)
    version = reader.uint(1, "key version")
    if version not in _FINGERPRINT_PREFIX:
        raise MalformedInputError(f"{_PGP}: unsupported key packet version {version}")
    reader.take(4, "creation time")
    algorithm = reader.uint(1, "algorithm")
    # v5/v6 state the key material length; it must be exactly what is left.
    if version >= 5 and reader.uint(4, "key material length") != reader.remaining():
        raise MalformedInputError(f"{_PGP}: key material length mismatch")
    size, curve = _pgp_material(algorithm, reader)
    fingerprint = _pgp_fingerprint(version, body)
    key_id = fingerprint[-16:] if version == 4 else fingerprint[:16]
    name = _PGP_ALGORITHMS.get(algorithm, f"unknown({algorithm})")
    return fingerprint, (("algorithm", name), ("key-id", key_id)), size, curve


def _pgp_fingerprint(version: int, body: bytes) -> str:
    prefix, length_bytes = _FINGERPRINT_PREFIX[version]
    if len(body) >= 1 << (8 * length_bytes):
        raise MalformedInputError(f"{_PGP}: v{version} key packet too long to fingerprint")
    framed = prefix + len(body).to_bytes(length_bytes, "big") + body
    if version == 4:
        # SHA-1 is what the v4 fingerprint is defined as; it identifies, it does not protect.
        return hashlib.sha1(framed, usedforsecurity=False).hexdigest()
    return hashlib.sha256(framed).hexdigest()


def _pgp_material(algorithm: int, reader: _Reader) -> tuple[int | None, str | None]:
    """(size, curve) from the public key material, which must fill the packet exactly."""
    parse = _MATERIAL_PARSERS.get(algorithm)
    if parse is None:
        return None, None  # an algorithm from after this code: fingerprint still holds
    size, curve = parse(algorithm, reader)
    reader.expect_end("after key material")
    return size, curve


def _mpi(reader: _Reader, field: str) -> int:
    """An MPI (RFC 9580 §3.2): 2-byte bit count, then the big-endian value."""
    bits = reader.uint(2, f"{field} MPI")
    return int.from_bytes(reader.take((bits + 7) // 8, f"{field} MPI"), "big")


def _material_rsa(_: int, reader: _Reader) -> tuple[int | None, str | None]:
    n = _mpi(reader, "RSA n")
    _mpi(reader, "RSA e")
    return n.bit_length(), None


def _material_dl(algorithm: int, reader: _Reader) -> tuple[int | None, str | None]:
    """DSA (p, q, g, y) and Elgamal (p, g, y): size is that of the prime p."""
    p = _mpi(reader, "p")
    for name in ("q", "g", "y") if algorithm == 17 else ("g", "y"):
        _mpi(reader, name)
    return p.bit_length(), None


def _material_ec(algorithm: int, reader: _Reader) -> tuple[int | None, str | None]:
    """ECDH / ECDSA / EdDSALegacy: curve OID, point MPI, and for ECDH the KDF parameters."""
    oid_length = reader.uint(1, "curve OID")
    if oid_length in (0, 0xFF):  # RFC 9580 §5.5.5: reserved for future extensions
        raise MalformedInputError(f"{_PGP}: reserved curve OID length {oid_length}")
    oid = reader.take(oid_length, "curve OID")
    _mpi(reader, "EC point")
    if algorithm == 18:
        reader.take(reader.uint(1, "ECDH KDF parameters"), "ECDH KDF parameters")
    known = _PGP_CURVES.get(oid.hex())
    if known is None:  # a curve this code has no name for: its OID, dotted
        if oid[-1] & 0x80:  # the last arc never ended (oid is non-empty: length 0 is refused)
            raise MalformedInputError(f"{_PGP}: truncated curve OID")
        return None, der.decode_oid(oid, f"{_PGP}: curve OID")
    return known[1], known[0]


def _material_raw(algorithm: int, reader: _Reader) -> tuple[int | None, str | None]:
    length, curve, size = _PGP_RAW_KEYS[algorithm]
    reader.take(length, f"{curve} key")
    return size, curve


_MaterialParser = Callable[[int, _Reader], tuple[int | None, str | None]]
_MATERIAL_PARSERS: dict[int, _MaterialParser] = {
    1: _material_rsa,
    2: _material_rsa,
    3: _material_rsa,
    16: _material_dl,
    17: _material_dl,
    20: _material_dl,
    18: _material_ec,
    19: _material_ec,
    22: _material_ec,
    **dict.fromkeys(_PGP_RAW_KEYS, _material_raw),
}


def _user_ids(packets: list[tuple[int, bytes]]) -> tuple[tuple[str, str], ...]:
    """("user-id", text) for the User ID packets of the primary key: those before any next
    primary key in a keyring."""
    found: list[tuple[str, str]] = []
    for tag, body in packets:
        if tag == _TAG_PUBLIC_KEY or len(found) >= MAX_USER_IDS:
            break
        if tag == _TAG_USER_ID:
            text = body[:MAX_USER_ID_BYTES].decode("utf-8", errors="replace")
            found.append(("user-id", text))
    return tuple(found)


# --------------------------------------------------------------------------------------------
# OpenSSH (RFC 4253 §6.6, RFC 5656, RFC 8709, OpenSSH PROTOCOL.u2f)

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
_SSH_TYPES = frozenset({"ssh-rsa", "ssh-dss", *_SSH_ECDSA, *_SSH_EDDSA})


def parse_ssh_public_key(data: bytes) -> KeySigner:
    """One OpenSSH public key line, ``<type> <base64 blob> [comment]`` (no options)."""
    _check_size(data, _SSH)
    key_type, blob, comment = _ssh_fields(_text(data, _SSH))
    reader = _Reader(blob, _SSH)
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
    if fields[0] not in _SSH_TYPES:
        # Also what an authorized_keys options prefix or a certificate looks like here.
        raise MalformedInputError(f"{_SSH}: unsupported key type {fields[0][:64]!r}")
    blob = _b64decode(fields[1], _SSH, "key blob")
    return fields[0], blob, fields[2].strip() if len(fields) == 3 else ""


def _ssh_string(reader: _Reader, field: str) -> bytes:
    return reader.take(reader.uint(4, field), field)


def _ssh_mpint(reader: _Reader, field: str) -> int:
    """A positive mpint (RFC 4251 §5): two's complement, so a set top bit means negative."""
    value = _ssh_string(reader, field)
    if not value or value[0] & 0x80:
        raise MalformedInputError(f"{_SSH}: {field} is not a positive integer")
    return int.from_bytes(value, "big")


def _ssh_material(key_type: str, reader: _Reader) -> tuple[int | None, str | None]:
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


def _ssh_ecdsa(key_type: str, reader: _Reader) -> tuple[int, str]:
    identifier, curve_name, curve = _SSH_ECDSA[key_type]
    if _ssh_string(reader, "curve name") != identifier.encode():
        raise MalformedInputError(f"{_SSH}: curve name does not match {key_type!r}")
    point = _ssh_string(reader, "EC point")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    except ValueError as exc:
        raise MalformedInputError(f"{_SSH}: EC point is not on {curve_name}") from exc
    return curve.key_size, curve_name


# --------------------------------------------------------------------------------------------
# minisign (https://jedisct1.github.io/minisign/, "Public key format")

_MINISIGN = "minisign key"
_MINISIGN_COMMENT = "untrusted comment:"
_MINISIGN_LENGTH = 42  # "Ed" + 8-byte key ID + 32-byte Ed25519 public key


def parse_minisign_public_key(data: bytes) -> KeySigner:
    """A minisign public key: the ``.pub`` file (comment line, base64 line) or the bare line."""
    _check_size(data, _MINISIGN)
    comment, encoded = _minisign_lines(_text(data, _MINISIGN))
    raw = _b64decode(encoded, _MINISIGN, "key")
    if len(raw) != _MINISIGN_LENGTH:
        raise MalformedInputError(
            f"{_MINISIGN}: decoded key is {len(raw)} bytes, expected {_MINISIGN_LENGTH}"
        )
    if raw[:2] != b"Ed":
        raise MalformedInputError(f"{_MINISIGN}: algorithm {raw[:2]!r} is not b'Ed'")
    # The key ID is a little-endian uint64; minisign prints it as 16 upper-case hex digits.
    key_id = raw[2:10][::-1].hex().upper()
    return KeySigner(
        key_type="minisign",
        fingerprint=key_id,
        size=256,
        curve="Ed25519",
        details=(("comment", comment),) if comment else (),
    )


def _minisign_lines(text: str) -> tuple[str, str]:
    """(comment, base64 key) of the file or bare line."""
    lines = text.strip().splitlines()
    if len(lines) == 1:
        return "", lines[0].strip()
    if len(lines) != 2:
        raise MalformedInputError(f"{_MINISIGN}: expected a comment line and a key line")
    if not lines[0].startswith(_MINISIGN_COMMENT):
        raise MalformedInputError(f"{_MINISIGN}: first line is not '{_MINISIGN_COMMENT} ...'")
    return lines[0][len(_MINISIGN_COMMENT) :].strip(), lines[1].strip()


# --------------------------------------------------------------------------------------------
# Dispatch

_PARSERS: dict[str, Callable[[bytes], KeySigner]] = {
    "x509": parse_pkix_public_key,
    "pkix": parse_pkix_public_key,
    "pgp": parse_pgp_public_key,
    "ssh": parse_ssh_public_key,
    "minisign": parse_minisign_public_key,
}
# A bare minisign key line: base64 of b"Ed" + 40 bytes is "RW" + 54 more characters.
_MINISIGN_BARE = re.compile(rb"RW[A-Za-z0-9+/]{54}")


def parse_public_key(data: bytes, fmt: str | None = None) -> KeySigner:
    """A key in format ``fmt`` (a rekord ``signature.format``: x509, pgp, ssh, minisign, or
    pkix), or in whichever of them ``data`` looks like when ``fmt`` is None."""
    if fmt is None:
        fmt = _sniff(data)
    parse = _PARSERS.get(fmt.lower())
    if parse is None:
        raise MalformedInputError(f"unknown key format {fmt[:32]!r}")
    return parse(data)


def _sniff(data: bytes) -> str:
    head = data.lstrip()[:64]
    fmt = _sniff_text(head, data) or _sniff_binary(head)
    if fmt is None:
        raise MalformedInputError("key: format not recognised (not PKIX, PGP, SSH or minisign)")
    return fmt


def _sniff_text(head: bytes, data: bytes) -> str | None:
    if head.startswith(b"-----BEGIN PGP"):
        return "pgp"
    if head.startswith(b"-----BEGIN"):
        return "pkix"
    if head.startswith(_MINISIGN_COMMENT.encode()) or _MINISIGN_BARE.fullmatch(data.strip()):
        return "minisign"
    if head.split(b" ", 1)[0].decode("ascii", errors="replace") in _SSH_TYPES:
        return "ssh"
    return None


def _sniff_binary(head: bytes) -> str | None:
    if head[:1] == b"\x30":  # DER SEQUENCE: a SubjectPublicKeyInfo
        return "pkix"
    if head[:1] and head[0] & 0x80:  # an OpenPGP packet header
        return "pgp"
    return None
