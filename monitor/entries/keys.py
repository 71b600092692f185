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

import hashlib
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
    load_pem_public_key,
)
from cryptography.utils import CryptographyDeprecationWarning

from monitor.core.errors import MalformedInputError
from monitor.entries.keyread import MAX_KEY_BYTES, b64decode, check_size, key_text
from monitor.entries.pgp import parse_pgp_public_key
from monitor.entries.record import KeySigner
from monitor.entries.ssh import SSH_TYPES, parse_ssh_public_key

__all__ = [
    "MAX_KEY_BYTES",
    "curve_name",
    "dsa_allowed",
    "parse_minisign_public_key",
    "parse_pgp_public_key",
    "parse_pkix_public_key",
    "parse_public_key",
    "parse_ssh_public_key",
]


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


@contextmanager
def dsa_allowed() -> Iterator[None]:
    """Silence the warning cryptography 51 gives for loading or naming a DSA key: the logs hold
    DSA keys signed with long ago, and they are read as before (this filter is process-wide
    while it lasts, like every warnings filter)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", "DSA is deprecated", category=CryptographyDeprecationWarning
        )
        yield


def parse_pkix_public_key(data: bytes) -> KeySigner:
    """A PEM ``PUBLIC KEY`` / ``RSA PUBLIC KEY`` or DER SubjectPublicKeyInfo."""
    check_size(data, _PKIX)
    with dsa_allowed():
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
# minisign (https://jedisct1.github.io/minisign/, "Public key format")

_MINISIGN = "minisign key"
_MINISIGN_COMMENT = "untrusted comment:"
_MINISIGN_LENGTH = 42  # "Ed" + 8-byte key ID + 32-byte Ed25519 public key


def parse_minisign_public_key(data: bytes) -> KeySigner:
    """A minisign public key: the ``.pub`` file (comment line, base64 line) or the bare line."""
    check_size(data, _MINISIGN)
    comment, encoded = _minisign_lines(key_text(data, _MINISIGN))
    raw = b64decode(encoded, _MINISIGN, "key")
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
    fmt = _sniffkey_text(head, data) or _sniff_binary(head)
    if fmt is None:
        raise MalformedInputError("key: format not recognised (not PKIX, PGP, SSH or minisign)")
    return fmt


def _sniffkey_text(head: bytes, data: bytes) -> str | None:
    if head.startswith(b"-----BEGIN PGP"):
        return "pgp"
    if head.startswith(b"-----BEGIN"):
        return "pkix"
    if head.startswith(_MINISIGN_COMMENT.encode()) or _MINISIGN_BARE.fullmatch(data.strip()):
        return "minisign"
    if head.split(b" ", 1)[0].decode("ascii", errors="replace") in SSH_TYPES:
        return "ssh"
    return None


def _sniff_binary(head: bytes) -> str | None:
    if head[:1] == b"\x30":  # DER SEQUENCE: a SubjectPublicKeyInfo
        return "pkix"
    if head[:1] and head[0] & 0x80:  # an OpenPGP packet header
        return "pgp"
    return None
