"""OpenPGP public keys (RFC 4880, RFC 9580; v5 from LibrePGP / rfc4880bis) as Rekor entries
carry them: armored or binary, the primary key's fingerprint (``gpg --fingerprint``), its
algorithm, size or curve, and its user IDs. Every length is checked before it is used."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from monitor.core.errors import MalformedInputError
from monitor.entries import der
from monitor.entries.keyread import KeyReader, b64decode, check_size
from monitor.entries.record import KeySigner

__all__ = ["parse_pgp_public_key"]

MAX_PGP_PACKETS = 8192  # a 1 MiB keyring of minimal packets would otherwise be ~500k packets
MAX_USER_IDS = 32
MAX_USER_ID_BYTES = 2048  # display text only: longer IDs are cut, not rejected


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
    check_size(data, _PGP)
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
    binary = b64decode("".join(body), _PGP, "armor body")
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
    expected = int.from_bytes(b64decode(line[1:], _PGP, "armor checksum"), "big")
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
    reader = KeyReader(data[pos : pos + 6], _PGP)  # a header is at most 6 bytes
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


def _new_format_length(reader: KeyReader) -> int:
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
    reader = KeyReader(body, _PGP)
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


def _pgp_material(algorithm: int, reader: KeyReader) -> tuple[int | None, str | None]:
    """(size, curve) from the public key material, which must fill the packet exactly."""
    parse = _MATERIAL_PARSERS.get(algorithm)
    if parse is None:
        return None, None  # an algorithm from after this code: fingerprint still holds
    size, curve = parse(algorithm, reader)
    reader.expect_end("after key material")
    return size, curve


def _mpi(reader: KeyReader, field: str) -> int:
    """An MPI (RFC 9580 §3.2): 2-byte bit count, then the big-endian value."""
    bits = reader.uint(2, f"{field} MPI")
    return int.from_bytes(reader.take((bits + 7) // 8, f"{field} MPI"), "big")


def _material_rsa(_: int, reader: KeyReader) -> tuple[int | None, str | None]:
    n = _mpi(reader, "RSA n")
    _mpi(reader, "RSA e")
    return n.bit_length(), None


def _material_dl(algorithm: int, reader: KeyReader) -> tuple[int | None, str | None]:
    """DSA (p, q, g, y) and Elgamal (p, g, y): size is that of the prime p."""
    p = _mpi(reader, "p")
    for name in ("q", "g", "y") if algorithm == 17 else ("g", "y"):
        _mpi(reader, name)
    return p.bit_length(), None


def _material_ec(algorithm: int, reader: KeyReader) -> tuple[int | None, str | None]:
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


def _material_raw(algorithm: int, reader: KeyReader) -> tuple[int | None, str | None]:
    length, curve, size = _PGP_RAW_KEYS[algorithm]
    reader.take(length, f"{curve} key")
    return size, curve


_MaterialParser = Callable[[int, KeyReader], tuple[int | None, str | None]]
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
