"""Public-key parsing (monitor/entries/keys.py).

Every expected fingerprint below was printed by an independent tool when the fixture was made
(ssh-keygen -lf, gpg --with-colons --fingerprint, OpenPGP.js getFingerprint(), openssl pkey
-outform DER | sha256sum, minisign) or is stated by RFC 9580; see fixtures/keys/README.md.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.errors import MalformedInputError
from monitor.entries.keys import (
    MAX_KEY_BYTES,
    parse_minisign_public_key,
    parse_pgp_public_key,
    parse_pkix_public_key,
    parse_public_key,
    parse_ssh_public_key,
)
from monitor.entries.record import KeySigner
from tests.conftest import FIXTURES

KEYS = FIXTURES / "keys"
REKOR_PUB = FIXTURES / "trust" / "rekor.pub.prod.pem"
MANAGED_KEY_PUB = FIXTURES / "v1-bundles" / "conformance.managed-key.key.pub"


def _read(name: str) -> bytes:
    return (KEYS / name).read_bytes()


# --------------------------------------------------------------------------------------------
# Helpers that build OpenPGP / SSH bytes by hand (independent of the code under test)


def _armor_payload(armored: bytes) -> bytes:
    """The base64 body of an armored block: after the first blank line, before '=' or END."""
    lines = armored.decode("ascii").splitlines()
    start = lines.index("") + 1
    body = []
    for line in lines[start:]:
        if line.startswith(("=", "-----END")):
            break
        body.append(line)
    return base64.b64decode("".join(body))


def _armor(binary: bytes, checksum: str | None = None) -> bytes:
    """Armor without headers; ``checksum`` is the '=XXXX' line, or None for none (RFC 9580)."""
    encoded = base64.b64encode(binary).decode("ascii")
    lines = [encoded[i : i + 64] for i in range(0, len(encoded), 64)]
    tail = [checksum] if checksum else []
    begin, end = "-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----END PGP PUBLIC KEY BLOCK-----"
    text = "\n".join([begin, "", *lines, *tail, end, ""])
    return text.encode("ascii")


def _new_packet(tag: int, body: bytes, *, five_byte: bool = False) -> bytes:
    """A new-format packet (RFC 9580 §4.2.1) with the shortest length, or a 5-byte one."""
    n = len(body)
    if five_byte or n >= 8384:
        length = b"\xff" + n.to_bytes(4, "big")
    elif n < 192:
        length = bytes([n])
    else:
        length = bytes([((n - 192) >> 8) + 192, (n - 192) & 0xFF])
    return bytes([0xC0 | tag]) + length + body


def _old_packet(tag: int, body: bytes, length_type: int = 2) -> bytes:
    """An old-format packet (RFC 4880 §4.2.1) with a 1-, 2- or 4-byte length."""
    size = 1 << length_type
    return bytes([0x80 | (tag << 2) | length_type]) + len(body).to_bytes(size, "big") + body


def _mpi(value: int) -> bytes:
    return value.bit_length().to_bytes(2, "big") + value.to_bytes((value.bit_length() + 7) // 8)


def _v4_body(algorithm: int, material: bytes) -> bytes:
    return b"\x04" + b"\x5f\x00\x00\x00" + bytes([algorithm]) + material


def _ssh_string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def _ssh_line(key_type: str, blob: bytes, comment: str = "") -> bytes:
    line = f"{key_type} {base64.b64encode(blob).decode('ascii')} {comment}".strip()
    return (line + "\n").encode()


def _ssh_blob(name: str) -> tuple[str, bytes]:
    key_type, encoded = _read(name).split()[:2]
    return key_type.decode(), base64.b64decode(encoded)


# RFC 9580 A.1: a bare v4 Ed25519Legacy Public-Key packet (new-format header 0xC6, length 51).
LEGACY_PACKET = _read("rfc9580_v4_ed25519legacy.gpg")
LEGACY_BODY = LEGACY_PACKET[2:]
LEGACY_FPR = "c959bdbafa32a2f89a153b678cfde12197965a9a"  # gpg and RFC 9580 A.1
MARKER = _old_packet(10, b"PGP", 0)


def test_helper_fixtures_are_what_they_claim() -> None:
    assert LEGACY_PACKET[:2] == b"\xc6\x33"
    assert len(LEGACY_BODY) == 51
    assert _armor_payload(_read("pgp_ed25519.asc")) == _read("pgp_ed25519.gpg")


# --------------------------------------------------------------------------------------------
# PKIX

PKIX_CASES = [
    # file, fingerprint (openssl pkey -pubin -outform DER | sha256sum), key_type, size, curve
    (
        REKOR_PUB,
        "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d",
        "ecdsa",
        256,
        "P-256",
    ),
    (
        MANAGED_KEY_PUB,
        "4cb32c4837c6dda8cfb1681efb3fef5f94ffce5b979e6bdb9139302c857af139",
        "ecdsa",
        256,
        "P-256",
    ),
    (
        KEYS / "pkix_ecdsa_p384.pem",
        "64446f64e06da225e000062c6d349359e1dbdb7b850e83eab9ee203ac5fe56d1",
        "ecdsa",
        384,
        "P-384",
    ),
    (
        KEYS / "pkix_ecdsa_secp256k1.pem",
        "3893cfee0731c055a6fde6346c68cd79683c9c4f5228070a3ca2aa9d5b39182b",
        "ecdsa",
        256,
        "secp256k1",
    ),
    (
        KEYS / "pkix_ecdsa_brainpoolp256r1_compressed.pem",
        "293ea705521140c00ac8261add8e0260ed53752f7c5e050dab9535117649241a",
        "ecdsa",
        256,
        "brainpoolP256r1",
    ),
    (
        KEYS / "pkix_rsa3072.pem",
        "36b49cb94f925efd270ecfad6541034bb878bd5b7e650498f505df3ca7ca2263",
        "rsa",
        3072,
        None,
    ),
    (
        KEYS / "pkix_rsa2048.der",
        "c825db2c9eccf771ea6af3851652dd582cafd0a42c8a6e994afaaf4f541825b6",
        "rsa",
        2048,
        None,
    ),
    (
        KEYS / "pkcs1_rsa2048.pem",
        "c825db2c9eccf771ea6af3851652dd582cafd0a42c8a6e994afaaf4f541825b6",
        "rsa",
        2048,
        None,
    ),
    (
        KEYS / "pkix_ed25519.pem",
        "3adfcd3c6050a7691cbaa8f92115c3fa4ed81df86d5c9cdcadc3d19e6fff75f6",
        "ed25519",
        256,
        "Ed25519",
    ),
    (
        KEYS / "pkix_ed448.pem",
        "d77b68366062132a65abf8bf2531fa8ba74ca717bc951fcacb91ec2dbd2b3d51",
        "ed448",
        448,
        "Ed448",
    ),
    (
        KEYS / "pkix_dsa2048.pem",
        "4d7ff8a217d355e66cb608d549b1f1be31eef13525b9b6c6b41c923a983e12d2",
        "dsa",
        2048,
        None,
    ),
    (
        KEYS / "pkix_x25519.pem",
        "068c64a8fbe3e829b9971f6c28c06551f218a8759a1ac9b32d80d51c810cb956",
        "unknown",
        256,
        "X25519",
    ),
]


@pytest.mark.parametrize(
    ("path", "fingerprint", "key_type", "size", "curve"),
    PKIX_CASES,
    ids=[case[0].name for case in PKIX_CASES],
)
def test_pkix_keys_match_openssl(
    path: Path, fingerprint: str, key_type: str, size: int, curve: str | None
) -> None:
    data = path.read_bytes()
    expected = KeySigner(key_type, "sha256:" + fingerprint, size, curve)
    assert parse_pkix_public_key(data) == expected
    assert parse_public_key(data) == expected
    assert parse_public_key(data, "x509") == expected
    assert parse_public_key(data, "PKIX") == expected


def test_pkix_pem_with_explanatory_text_and_a_second_block() -> None:
    pem = REKOR_PUB.read_bytes()
    data = b"Rekor production key\n" + pem + _read("pkix_ed25519.pem")
    assert parse_pkix_public_key(data).fingerprint == (
        "sha256:c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"
    )


def _pem_body_cut(pem: bytes) -> bytes:
    lines = pem.splitlines()
    return b"\n".join([lines[0], lines[1][:20], lines[-1]]) + b"\n"


PKIX_MALFORMED = [
    (b"\x30\x03\x02\x01\x01", "pkix key: DER is not a loadable public key"),
    (_read("pkix_rsa2048.der") + b"\x00", "pkix key: DER is not a loadable public key"),
    (_read("pkix_rsa2048.der")[:-1], "pkix key: DER is not a loadable public key"),
    (b"junk that is no key", "pkix key: DER is not a loadable public key"),
    (_pem_body_cut(REKOR_PUB.read_bytes()), "pkix key: PEM is not a loadable public key"),
    (
        REKOR_PUB.read_bytes().replace(b"MFkw", b"MF!w"),
        "pkix key: PEM is not a loadable public key",
    ),
    (
        REKOR_PUB.read_bytes().replace(b"PUBLIC KEY", b"CERTIFICATE"),
        "pkix key: PEM block is 'CERTIFICATE', not a public key",
    ),
    (
        REKOR_PUB.read_bytes().replace(b"PUBLIC KEY", b"EC PUBLIC KEY"),
        "pkix key: PEM block is 'EC PUBLIC KEY', not a public key",
    ),
    (
        REKOR_PUB.read_bytes().replace(b"-----END PUBLIC KEY-----", b""),
        "pkix key: PEM END line missing",
    ),
    (b" \n\t", "pkix key: input is empty"),
    (b"0" * (MAX_KEY_BYTES + 1), "pkix key: input is 1048577 bytes, more than 1048576"),
]


@pytest.mark.parametrize(("data", "message"), PKIX_MALFORMED)
def test_pkix_malformed(data: bytes, message: str) -> None:
    with pytest.raises(MalformedInputError, match=f"^{re.escape(message)}$"):
        parse_pkix_public_key(data)


# --------------------------------------------------------------------------------------------
# OpenPGP

RSA_UIDS = (
    "Test RSA Key <test-rsa@example.invalid>",
    "Test RSA Key (second) <test-rsa-2@example.invalid>",
)


@dataclass(frozen=True)
class PgpCase:
    name: str
    fingerprint: str
    key_id: str
    size: int
    curve: str | None
    algorithm: str
    uids: tuple[str, ...]  # in packet order


PGP_CASES = [
    PgpCase(  # gpg --with-colons --fingerprint
        "pgp_rsa3072.asc",
        "aebee0f1bbfffd1e0aec5771d007d593c14f42f2",
        "d007d593c14f42f2",
        3072,
        None,
        "RSA",
        RSA_UIDS,
    ),
    PgpCase(
        "pgp_ed25519.asc",
        "e544ca6535155149bbdce48e86bc261e72b43a46",
        "86bc261e72b43a46",
        256,
        "Ed25519",
        "EdDSALegacy",
        ("Test Ed25519 Key <test-ed25519@example.invalid>",),
    ),
    PgpCase(
        "pgp_ed25519.gpg",
        "e544ca6535155149bbdce48e86bc261e72b43a46",
        "86bc261e72b43a46",
        256,
        "Ed25519",
        "EdDSALegacy",
        ("Test Ed25519 Key <test-ed25519@example.invalid>",),
    ),
    PgpCase(
        "pgp_nistp384.asc",
        "8d51ac2ac6a9ad9532a30f5b6b92cf86f82cec1f",
        "6b92cf86f82cec1f",
        384,
        "P-384",
        "ECDSA",
        ("Test NIST P-384 Key <test-p384@example.invalid>",),
    ),
    PgpCase(  # gpg and OpenPGP.js; RFC 9580 A.1
        "rfc9580_v4_ed25519legacy.gpg",
        LEGACY_FPR,
        "8cfde12197965a9a",
        256,
        "Ed25519",
        "EdDSALegacy",
        (),
    ),
    PgpCase(  # OpenPGP.js 5 getFingerprint() / getKeyID()
        "pgp_v5_ed25519.asc",
        "2c6a9fc062d0fd8836d01391a899f7e9e05eb33ba642a5e6206cda9d20347f92",
        "2c6a9fc062d0fd88",
        256,
        "Ed25519",
        "EdDSALegacy",
        ("Test V5 Key <test-v5@example.invalid>",),
    ),
    PgpCase(
        "pgp_v5_p256.asc",
        "3e961c5cccef62ceef65d7c20da0018ed88755eecb80c56a1de731ccdc23f81a",
        "3e961c5cccef62ce",
        256,
        "P-256",
        "ECDSA",
        ("Test V5 Key <test-v5@example.invalid>",),
    ),
    PgpCase(  # OpenPGP.js 6 getFingerprint() / getKeyID()
        "pgp_v6_ed25519.asc",
        "5474547435170ab37809b6474c566d8fde1224d2fa995b742dd82e85dfdd9eab",
        "5474547435170ab3",
        256,
        "Ed25519",
        "Ed25519",
        ("Test V6 Key <test-v6@example.invalid>",),
    ),
    PgpCase(
        "pgp_v6_ed448.asc",
        "91dbc482b59e65fce4fd57c15efcbbc2deba144821098b7c96ef9fd713173f30",
        "91dbc482b59e65fc",
        448,
        "Ed448",
        "Ed448",
        ("Test V6 Key <test-v6@example.invalid>",),
    ),
    PgpCase(  # RFC 9580 A.3, fingerprint as the RFC states it
        "rfc9580_a3_v6_cert.asc",
        "cb186c4f0609a697e4d52dfa6c722b0c1f1e27c18a56708f6525ec27bad9acc9",
        "cb186c4f0609a697",
        256,
        "Ed25519",
        "Ed25519",
        (),
    ),
]


@pytest.mark.parametrize("case", PGP_CASES, ids=[case.name for case in PGP_CASES])
def test_pgp_keys_match_gpg_and_openpgpjs(case: PgpCase) -> None:
    data = _read(case.name)
    uids = tuple(("user-id", uid) for uid in case.uids)
    expected = KeySigner(
        key_type="pgp",
        fingerprint=case.fingerprint,
        size=case.size,
        curve=case.curve,
        details=(("algorithm", case.algorithm), ("key-id", case.key_id), *uids),
    )
    assert parse_pgp_public_key(data) == expected
    assert parse_public_key(data) == expected
    assert parse_public_key(data, "pgp") == expected


def _split_first_packet_old_2byte(binary: bytes) -> tuple[bytes, bytes]:
    """(body of the first packet, the rest) for gpg's old-format 2-byte-length header."""
    assert binary[0] == 0x99  # tag 6, length type 1
    length = int.from_bytes(binary[1:3], "big")
    return binary[3 : 3 + length], binary[3 + length :]


RSA_BINARY = _armor_payload(_read("pgp_rsa3072.asc"))
RSA_BODY, RSA_REST = _split_first_packet_old_2byte(RSA_BINARY)


@pytest.mark.parametrize(
    "header_form",
    [
        _new_packet(6, RSA_BODY),  # new format, 2-byte length (397 bytes)
        _new_packet(6, RSA_BODY, five_byte=True),
        _old_packet(6, RSA_BODY, 2),  # old format, 4-byte length
    ],
    ids=["new-2byte", "new-5byte", "old-4byte"],
)
def test_pgp_header_forms_do_not_change_the_key(header_form: bytes) -> None:
    expected = parse_pgp_public_key(_read("pgp_rsa3072.asc"))
    assert expected.fingerprint == "aebee0f1bbfffd1e0aec5771d007d593c14f42f2"  # gpg
    assert parse_pgp_public_key(header_form + RSA_REST) == expected
    assert parse_pgp_public_key(_armor(header_form + RSA_REST)) == expected


def test_pgp_armor_headers_crlf_and_missing_blank_line() -> None:
    armored = _read("pgp_ed25519.asc").decode("ascii")
    with_headers = armored.replace(
        "BLOCK-----\n\n", "BLOCK-----\nVersion: test\nComment: two headers\n\n", 1
    )
    no_blank = _armor(_read("pgp_ed25519.gpg")).replace(b"BLOCK-----\n\n", b"BLOCK-----\n", 1)
    expected = parse_pgp_public_key(_read("pgp_ed25519.gpg"))
    assert parse_pgp_public_key(with_headers.encode()) == expected
    assert parse_pgp_public_key(armored.replace("\n", "\r\n").encode()) == expected
    assert parse_pgp_public_key(b"\n  " + armored.encode() + b"trailing text\n") == expected
    assert parse_pgp_public_key(no_blank) == expected


def test_pgp_user_ids_are_decoded_with_replacement_and_capped() -> None:
    uids = b"".join(_new_packet(13, f"uid {i}".encode()) for i in range(40))
    signer = parse_pgp_public_key(LEGACY_PACKET + _new_packet(13, b"\xffbad") + uids)
    assert signer.fingerprint == LEGACY_FPR
    found = [value for key, value in signer.details if key == "user-id"]
    assert found == ["\ufffdbad"] + [f"uid {i}" for i in range(31)]


def test_pgp_keyring_reports_first_key_and_its_user_ids_only() -> None:
    keyring = (
        MARKER  # RFC 4880 §5.8: a Marker packet is ignored
        + LEGACY_PACKET
        + _new_packet(13, b"first")
        + _new_packet(6, RSA_BODY)
        + _new_packet(13, b"second")
    )
    signer = parse_pgp_public_key(keyring)
    assert signer.fingerprint == LEGACY_FPR
    assert ("user-id", "first") in signer.details
    assert ("user-id", "second") not in signer.details


def test_pgp_unknown_algorithm_and_curve_still_fingerprint() -> None:
    # SHA-1 framing of RFC 9580 §5.5.4.2 computed by hashlib here, independent of the parser.
    body = _v4_body(99, b"\x01\x02\x03")
    framed = b"\x99" + len(body).to_bytes(2, "big") + body
    signer = parse_pgp_public_key(_new_packet(6, body))
    assert signer.fingerprint == hashlib.sha1(framed, usedforsecurity=False).hexdigest()
    assert signer.details[0] == ("algorithm", "unknown(99)")
    assert (signer.size, signer.curve) == (None, None)
    odd_curve = _v4_body(19, b"\x03\x2a\x03\x04" + _mpi(0x04AB))  # OID 1.2.3.4
    assert parse_pgp_public_key(_new_packet(6, odd_curve)).curve == "1.2.3.4"


def _replace_checksum(armored: bytes, line: bytes) -> bytes:
    return re.sub(rb"\n=[A-Za-z0-9+/]{4}\n", b"\n" + line + b"\n", armored)


def _flip_first_body_char(armored: bytes) -> bytes:
    head, _, body = armored.partition(b"\n\n")
    swapped = bytes([body[0] + 1 if body[0] != ord("z") else ord("a")]) + body[1:]
    return head + b"\n\n" + swapped


ED_ASC = _read("pgp_ed25519.asc")
ED_GPG = _read("pgp_ed25519.gpg")
A3_BINARY = _armor_payload(_read("rfc9580_a3_v6_cert.asc"))
A3_BODY = A3_BINARY[2 : 2 + A3_BINARY[1]]
RSA_MATERIAL_TRUNCATED = _v4_body(1, b"\x10\x00\x01\x02")  # n claims 4096 bits, has 2 bytes

PGP_MALFORMED = [
    (ED_GPG[:-1], "pgp key: packet length exceeds data"),
    (ED_GPG + b"\xc6", "pgp key: packet length exceeds data"),
    (b"\xc6\xff\xff\xff\xff\xff" + LEGACY_BODY, "pgp key: packet length exceeds data"),
    (b"\x9a\x7f\xff\xff\xff" + LEGACY_BODY, "pgp key: packet length exceeds data"),
    (b"\xc6\xff\x00", "pgp key: packet length exceeds data"),
    (b"\xc6\xe1" + LEGACY_BODY, "pgp key: partial body length not allowed for key packets"),
    (b"\x9b" + LEGACY_BODY, "pgp key: indeterminate packet length not allowed"),
    (b"\x46\x33" + LEGACY_BODY, "pgp key: packet header bit 7 not set at offset 0"),
    (LEGACY_PACKET + b"\x01", "pgp key: packet header bit 7 not set at offset 53"),
    (b"\x80\x01\x00", "pgp key: packet tag 0 is reserved"),
    (b"hello", "pgp key: packet header bit 7 not set at offset 0"),
    (
        _new_packet(2, b"\x04\x00") + LEGACY_PACKET,
        "pgp key: packet tag 2 (Signature) before the Public-Key packet (tag 6)",
    ),
    (
        _new_packet(5, LEGACY_BODY),
        "pgp key: packet tag 5 (Secret-Key) before the Public-Key packet (tag 6)",
    ),
    (
        _new_packet(14, LEGACY_BODY),
        "pgp key: packet tag 14 (Public-Subkey) before the Public-Key packet (tag 6)",
    ),
    (MARKER + MARKER, "pgp key: no Public-Key packet (tag 6)"),
    (MARKER * 8193, "pgp key: more than 8192 packets"),
    (_new_packet(6, b"\x03" + LEGACY_BODY[1:]), "pgp key: unsupported key packet version 3"),
    (_new_packet(6, b"\x04\x00\x00"), "pgp key: creation time exceeds data"),
    (_new_packet(6, LEGACY_BODY + b"\x00"), "pgp key: 1 trailing bytes after key material"),
    (
        _new_packet(6, A3_BODY[:6] + b"\x00\x00\x00\x21" + A3_BODY[10:]),
        "pgp key: key material length mismatch",
    ),
    (_new_packet(6, A3_BODY[:-1]), "pgp key: key material length mismatch"),
    (_new_packet(6, RSA_MATERIAL_TRUNCATED), "pgp key: RSA n MPI exceeds data"),
    (_new_packet(6, _v4_body(19, b"\x00")), "pgp key: reserved curve OID length 0"),
    (_new_packet(6, _v4_body(19, b"\xff")), "pgp key: reserved curve OID length 255"),
    (_new_packet(6, _v4_body(19, b"\x05\x2b")), "pgp key: curve OID exceeds data"),
    (
        _new_packet(6, _v4_body(19, b"\x02\x2a\x83" + _mpi(4))),
        "pgp key: truncated curve OID",
    ),
    (
        _new_packet(6, _v4_body(19, b"\x02\x2a\x80" + _mpi(4))),
        "pgp key: truncated curve OID",
    ),
    (_new_packet(6, _v4_body(27, b"\x00" * 31)), "pgp key: Ed25519 key exceeds data"),
    (
        _new_packet(6, _v4_body(99, b"\x00" * 70000)),
        "pgp key: v4 key packet too long to fingerprint",
    ),
    # Armor
    (ED_ASC.replace(b"-----END PGP PUBLIC KEY BLOCK-----", b""), "pgp key: armor END line missing"),
    (ED_ASC.replace(b"mDMEawb7", b"mDM!awb7"), "pgp key: bad base64 in armor body"),
    (_replace_checksum(ED_ASC, b"=AAAA"), "pgp key: armor CRC24 mismatch"),
    (_flip_first_body_char(ED_ASC), "pgp key: armor CRC24 mismatch"),
    (_replace_checksum(ED_ASC, b"=A!AA"), "pgp key: bad base64 in armor checksum"),
    (
        _replace_checksum(ED_ASC, b"=AAA"),
        "pgp key: armor checksum line is not '=' and 4 characters",
    ),
    (
        ED_ASC.replace(b"\nLRHN", b"\n=AAAA\nLRHN"),
        "pgp key: armor checksum line is not the last line",
    ),
    (ED_ASC.replace(b"\nLRHN", b"\n\nLRHN"), "pgp key: blank line inside armor body"),
    (
        ED_ASC.replace(b"PUBLIC KEY BLOCK", b"PRIVATE KEY BLOCK"),
        "pgp key: armor does not begin with -----BEGIN PGP PUBLIC KEY BLOCK-----",
    ),
    (
        b"-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n",
        "pgp key: armor does not begin with -----BEGIN PGP PUBLIC KEY BLOCK-----",
    ),
    (ED_ASC + "\u00e9".encode(), "pgp key: armor is not ASCII"),
    (_armor(b""), "pgp key: no packets"),
    (b"", "pgp key: input is empty"),
    (b"\x99" * (MAX_KEY_BYTES + 1), "pgp key: input is 1048577 bytes, more than 1048576"),
]


def test_pgp_malformed_fixture_edits_took_effect() -> None:
    # Every .replace() above must have matched: an edit that misses would test the valid key.
    assert all(data not in (ED_ASC, ED_GPG) for data, _ in PGP_MALFORMED)


@pytest.mark.parametrize(("data", "message"), PGP_MALFORMED)
def test_pgp_malformed(data: bytes, message: str) -> None:
    with pytest.raises(MalformedInputError, match=f"^{re.escape(message)}$"):
        parse_pgp_public_key(data)


# --------------------------------------------------------------------------------------------
# OpenSSH


@dataclass(frozen=True)
class SshCase:
    name: str
    fingerprint: str  # as ssh-keygen -lf printed it
    size: int
    curve: str | None
    algorithm: str
    comment: str


SSH_CASES = [
    SshCase(
        "ssh_ed25519.pub",
        "SHA256:M5cJUcd4RMqDeAqGQiZle+h9vJrQwthP868YZgApcB8",
        256,
        "Ed25519",
        "ssh-ed25519",
        "test-ed25519@example.invalid",
    ),
    SshCase(
        "ssh_rsa3072.pub",
        "SHA256:htkYg51ZeysdWCQxr6R54yfOdHhpYJ3w33lpDx7lSOc",
        3072,
        None,
        "ssh-rsa",
        "test-rsa3072@example.invalid",
    ),
    SshCase(
        "ssh_ecdsa256.pub",
        "SHA256:m+ktzcPjcayJ9nO9k7/eambf5zGpN9Ws3P5QtMoSOVg",
        256,
        "P-256",
        "ecdsa-sha2-nistp256",
        "test-ecdsa256@example.invalid",
    ),
    SshCase(
        "ssh_ecdsa384.pub",
        "SHA256:T2EMVfa8DscERbKg8k5x/g2lNkunlQDFRTUHOXMS5Jw",
        384,
        "P-384",
        "ecdsa-sha2-nistp384",
        "test-ecdsa384@example.invalid",
    ),
    SshCase(
        "ssh_ecdsa521.pub",
        "SHA256:3dBAcv3FP4bWPFmIZBhV7+QQLtRc1utG1DFUg+80QZU",
        521,
        "P-521",
        "ecdsa-sha2-nistp521",
        "test-ecdsa521@example.invalid",
    ),
    SshCase(
        "ssh_dsa.pub",
        "SHA256:JGKZX+7tDRMHm26Pod1TSYlIa4axiPPvEC3yhT/YP3M",
        1024,
        None,
        "ssh-dss",
        "test-dsa@example.invalid",
    ),
    SshCase(
        "ssh_sk_ed25519.pub",
        "SHA256:B90LX4tJsdnda/fC+I2ddm4nuqJsbCJtEszzuFU7nf0",
        256,
        "Ed25519",
        "sk-ssh-ed25519@openssh.com",
        "test-sk-ed25519@example.invalid",
    ),
    SshCase(
        "ssh_sk_ecdsa256.pub",
        "SHA256:Z+PKjFWwz3n+OgMU7OXtc7kNUmhS4qK6Qlbo0VuTRcI",
        256,
        "P-256",
        "sk-ecdsa-sha2-nistp256@openssh.com",
        "test-sk-ecdsa@example.invalid",
    ),
]


@pytest.mark.parametrize("case", SSH_CASES, ids=[case.name for case in SSH_CASES])
def test_ssh_keys_match_ssh_keygen(case: SshCase) -> None:
    data = _read(case.name)
    expected = KeySigner(
        key_type="ssh",
        fingerprint=case.fingerprint,
        size=case.size,
        curve=case.curve,
        details=(("algorithm", case.algorithm), ("comment", case.comment)),
    )
    assert parse_ssh_public_key(data) == expected
    assert parse_public_key(data) == expected
    assert parse_public_key(data, "ssh") == expected


def test_ssh_without_comment_and_with_spaces_in_comment() -> None:
    key_type, blob = _ssh_blob("ssh_ed25519.pub")
    fingerprint = "SHA256:M5cJUcd4RMqDeAqGQiZle+h9vJrQwthP868YZgApcB8"
    bare = parse_ssh_public_key(b"  " + _ssh_line(key_type, blob) + b"\n\n")
    assert bare.fingerprint == fingerprint
    assert bare.details == (("algorithm", "ssh-ed25519"),)
    spaced = parse_ssh_public_key(_ssh_line(key_type, blob, "build key  for\tCI"))
    assert spaced.details[1] == ("comment", "build key  for\tCI")


ED_TYPE, ED_BLOB = _ssh_blob("ssh_ed25519.pub")
EC_TYPE, EC_BLOB = _ssh_blob("ssh_ecdsa256.pub")
RSA_TYPE, RSA_BLOB = _ssh_blob("ssh_rsa3072.pub")


def _bad_point(blob: bytes) -> bytes:
    """The ecdsa-sha2-nistp256 blob with its point's last coordinate byte changed."""
    return blob[:-1] + bytes([blob[-1] ^ 0x01])


SSH_MALFORMED = [
    (_ssh_line("ssh-rsa", ED_BLOB), "ssh key: blob type 'ssh-ed25519' does not match 'ssh-rsa'"),
    (
        _ssh_line("ecdsa-sha2-nistp384", EC_BLOB),
        "ssh key: blob type 'ecdsa-sha2-nistp256' does not match 'ecdsa-sha2-nistp384'",
    ),
    (b"ssh-ed25519 AAAA!AAA comment\n", "ssh key: bad base64 in key blob"),
    (b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", "ssh key: bad base64 in key blob"),
    (_ssh_line(ED_TYPE, ED_BLOB[:-1]), "ssh key: public key exceeds data"),
    (_ssh_line(ED_TYPE, ED_BLOB[:3]), "ssh key: key type exceeds data"),
    (_ssh_line(ED_TYPE, ED_BLOB + b"\x00"), "ssh key: 1 trailing bytes after key blob"),
    (
        _ssh_line(ED_TYPE, _ssh_string(b"ssh-ed25519") + _ssh_string(b"\x00" * 31)),
        "ssh key: Ed25519 key is not 32 bytes",
    ),
    (_ssh_line(EC_TYPE, _bad_point(EC_BLOB)), "ssh key: EC point is not on P-256"),
    (
        # type string (4 + 19 bytes), then the curve name (4 + 8 bytes), then the point
        _ssh_line(EC_TYPE, EC_BLOB[:23] + _ssh_string(b"nistp384") + EC_BLOB[35:]),
        "ssh key: curve name does not match 'ecdsa-sha2-nistp256'",
    ),
    (
        _ssh_line("ssh-rsa", _ssh_string(b"ssh-rsa") + _ssh_string(b"\x01\x00\x01")),
        "ssh key: RSA n exceeds data",
    ),
    (
        _ssh_line(
            "ssh-rsa",
            _ssh_string(b"ssh-rsa") + _ssh_string(b"\x01\x00\x01") + _ssh_string(b"\xc0\x01"),
        ),
        "ssh key: RSA n is not a positive integer",
    ),
    (
        b'command="/bin/true",no-pty ' + _ssh_line(ED_TYPE, ED_BLOB),
        "ssh key: unsupported key type 'command=\"/bin/true\",no-pty'",
    ),
    (
        _ssh_line("ssh-ed25519-cert-v01@openssh.com", ED_BLOB),
        "ssh key: unsupported key type 'ssh-ed25519-cert-v01@openssh.com'",
    ),
    (b"ssh-ed25519\n", "ssh key: expected '<type> <base64> [comment]'"),
    (_ssh_line(ED_TYPE, ED_BLOB) * 2, "ssh key: more than one line"),
    (b"ssh-ed25519 AAAA \xff\xfe\n", "ssh key: not UTF-8 text"),
    (b"", "ssh key: input is empty"),
    (b"junk", "ssh key: expected '<type> <base64> [comment]'"),
    (b"s" * (MAX_KEY_BYTES + 1), "ssh key: input is 1048577 bytes, more than 1048576"),
]


@pytest.mark.parametrize(("data", "message"), SSH_MALFORMED)
def test_ssh_malformed(data: bytes, message: str) -> None:
    with pytest.raises(MalformedInputError, match=f"^{re.escape(message)}$"):
        parse_ssh_public_key(data)


def test_ssh_bad_point_really_is_off_the_curve() -> None:
    assert _bad_point(EC_BLOB) != EC_BLOB
    assert EC_BLOB[23:35] == _ssh_string(b"nistp256")


# --------------------------------------------------------------------------------------------
# minisign
#
# Public key format (https://jedisct1.github.io/minisign/, "Public key format"):
#   base64(<signature_algorithm> || <key_id> || <public_key>)
#   signature_algorithm: "Ed"; key_id: 8 random bytes; public_key: Ed25519 public key (32 bytes)
# and minisign prints the key ID as the little-endian uint64 in upper-case hex.

MINISIGN_ID = "2CEE1576D9842408"  # minisign 0.11 wrote it in the comment of minisign.pub
MINISIGN_FILE = _read("minisign.pub")
MINISIGN_LINE = MINISIGN_FILE.splitlines()[1]
MINISIGN_RAW = base64.b64decode(MINISIGN_LINE)


def test_minisign_key_id_matches_minisign() -> None:
    # The byte-reversal rule, checked against what minisign itself printed.
    assert MINISIGN_RAW[2:10][::-1].hex().upper() == MINISIGN_ID
    expected = KeySigner(
        key_type="minisign",
        fingerprint=MINISIGN_ID,
        size=256,
        curve="Ed25519",
        details=(("comment", f"minisign public key {MINISIGN_ID}"),),
    )
    assert parse_minisign_public_key(MINISIGN_FILE) == expected
    assert parse_public_key(MINISIGN_FILE) == expected
    assert parse_public_key(MINISIGN_FILE, "minisign") == expected


def test_minisign_bare_line_and_hand_built_key() -> None:
    assert parse_minisign_public_key(MINISIGN_LINE).fingerprint == MINISIGN_ID
    assert parse_public_key(MINISIGN_LINE + b"\n").details == ()
    key_id = bytes(range(1, 9))  # little-endian 0x0807060504030201
    raw = b"Ed" + key_id + bytes(range(100, 132))
    assert parse_minisign_public_key(base64.b64encode(raw)).fingerprint == "0807060504030201"


def test_minisign_id_comes_from_the_bytes_not_the_comment() -> None:
    lying = MINISIGN_FILE.replace(MINISIGN_ID.encode(), b"0000000000000000", 1)
    signer = parse_minisign_public_key(lying.replace(b"\n", b"\r\n"))
    assert signer.fingerprint == MINISIGN_ID
    assert signer.details == (("comment", "minisign public key 0000000000000000"),)


MINISIGN_MALFORMED = [
    (base64.b64encode(MINISIGN_RAW[:-1]), "minisign key: decoded key is 41 bytes, expected 42"),
    (
        base64.b64encode(MINISIGN_RAW + b"\x00"),
        "minisign key: decoded key is 43 bytes, expected 42",
    ),
    (base64.b64encode(b"ED" + MINISIGN_RAW[2:]), "minisign key: algorithm b'ED' is not b'Ed'"),
    (MINISIGN_LINE[:-1] + b"!", "minisign key: bad base64 in key"),
    (MINISIGN_LINE[:-2], "minisign key: bad base64 in key"),
    (
        MINISIGN_FILE + b"extra line\n",
        "minisign key: expected a comment line and a key line",
    ),
    (
        b"trusted comment: x\n" + MINISIGN_LINE,
        "minisign key: first line is not 'untrusted comment: ...'",
    ),
    (b"\xff\xfe", "minisign key: not UTF-8 text"),
    (b"", "minisign key: input is empty"),
    (b"junk", "minisign key: decoded key is 3 bytes, expected 42"),
    (b"junk!", "minisign key: bad base64 in key"),
]


@pytest.mark.parametrize(("data", "message"), MINISIGN_MALFORMED)
def test_minisign_malformed(data: bytes, message: str) -> None:
    with pytest.raises(MalformedInputError, match=f"^{re.escape(message)}$"):
        parse_minisign_public_key(data)


# --------------------------------------------------------------------------------------------
# Dispatch


def test_dispatch_unknown_format_and_unrecognised_input() -> None:
    with pytest.raises(MalformedInputError, match=r"^unknown key format 'tuf'$"):
        parse_public_key(REKOR_PUB.read_bytes(), "tuf")
    with pytest.raises(MalformedInputError, match=r"^key: format not recognised"):
        parse_public_key(b"hello world")
    with pytest.raises(MalformedInputError, match=r"^key: format not recognised"):
        parse_public_key(b"")


def test_dispatch_trusts_the_stated_format() -> None:
    # A rekord entry says which format its key is in; a key of another format is malformed.
    with pytest.raises(MalformedInputError, match=r"^pgp key: packet header bit 7 not set"):
        parse_public_key(_read("ssh_ed25519.pub"), "pgp")
    with pytest.raises(MalformedInputError, match=r"^ssh key: more than one line$"):
        parse_public_key(REKOR_PUB.read_bytes(), "ssh")
    with pytest.raises(MalformedInputError, match=r"^pkix key: PEM block is 'PGP PUBLIC KEY"):
        parse_public_key(ED_ASC, "x509")


# --------------------------------------------------------------------------------------------
# Hostile input: mutations of valid keys give a KeySigner or MalformedInputError, nothing else

INTERESTING_BYTES = b"\x00\x80\xff=-:\n\r \t+/A0"


@st.composite
def _mutated(draw: st.DrawFn, originals: Sequence[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(originals)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(("replace", "insert", "delete", "truncate")))
        pos = draw(st.integers(0, len(data)))
        if kind == "replace" and pos < len(data):
            data[pos] = draw(st.integers(0, 255) | st.sampled_from(INTERESTING_BYTES))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif kind == "truncate":
            del data[pos:]
    return bytes(data)


def _survives(parse: Callable[[bytes], KeySigner], data: bytes) -> None:
    try:
        signer = parse(data)
    except MalformedInputError:
        return
    assert isinstance(signer, KeySigner)
    assert signer.fingerprint


PKIX_FILES = [case[0].read_bytes() for case in PKIX_CASES]
PKIX_DERS = [_read("pkix_rsa2048.der")] + [
    base64.b64decode(b"".join(data.splitlines()[1:-1]))
    for data in PKIX_FILES
    if data.startswith(b"-----BEGIN PUBLIC KEY")
]
PGP_FILES = [_read(case.name) for case in PGP_CASES]
PGP_BINARIES = [data if data[0] & 0x80 else _armor_payload(data) for data in PGP_FILES]
SSH_FILES = [_read(case.name) for case in SSH_CASES]
SSH_BLOBS = [_ssh_blob(case.name) for case in SSH_CASES]
MINISIGN_FILES = [MINISIGN_FILE, MINISIGN_LINE]
FUZZ = settings(max_examples=300, deadline=None)


@FUZZ
@given(_mutated(PKIX_FILES))
def test_pkix_mutations(data: bytes) -> None:
    _survives(parse_pkix_public_key, data)


@FUZZ
@given(_mutated(PKIX_DERS))
def test_pkix_der_mutations(data: bytes) -> None:
    _survives(parse_pkix_public_key, data)


@FUZZ
@given(_mutated(PGP_FILES))
def test_pgp_mutations(data: bytes) -> None:
    _survives(parse_pgp_public_key, data)


@FUZZ
@given(_mutated(PGP_BINARIES), st.booleans())
def test_pgp_packet_mutations(data: bytes, armored: bool) -> None:
    # Re-armored without a CRC line so that the mutation reaches the packet parser.
    _survives(parse_pgp_public_key, _armor(data) if armored else data)


@FUZZ
@given(_mutated(SSH_FILES))
def test_ssh_mutations(data: bytes) -> None:
    _survives(parse_ssh_public_key, data)


@FUZZ
@given(st.data())
def test_ssh_blob_mutations(data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(SSH_BLOBS) - 1))
    key_type, blob = SSH_BLOBS[index]
    _survives(parse_ssh_public_key, _ssh_line(key_type, data.draw(_mutated([blob]))))


@FUZZ
@given(_mutated(MINISIGN_FILES))
def test_minisign_mutations(data: bytes) -> None:
    _survives(parse_minisign_public_key, data)


@FUZZ
@given(_mutated([MINISIGN_RAW]))
def test_minisign_raw_mutations(data: bytes) -> None:
    _survives(parse_minisign_public_key, base64.b64encode(data))


@FUZZ
@given(_mutated(PKIX_FILES + PGP_FILES + SSH_FILES + MINISIGN_FILES))
def test_sniffing_mutations(data: bytes) -> None:
    _survives(parse_public_key, data)
