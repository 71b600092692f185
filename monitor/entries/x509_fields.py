"""X.509 certificate fields as signing records name them: the Fulcio extensions and their
decoding, SAN names, the public key, and the record built through ``cryptography``'s objects
(the general path, for any certificate the direct reader in ``x509_direct`` does not handle).

Fulcio extension encodings (REKOR-FORMATS.md section 5): OIDs ``.1.1``-``.1.6`` hold the raw
string bytes as the extnValue content, ``.1.8`` onward a DER UTF8String; ``.1.7`` is the SAN
otherName type for usernames.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from monitor.core.errors import MalformedInputError
from monitor.entries import der
from monitor.entries.keys import curve_name
from monitor.entries.record import (
    CertExtension,
    CertificateSigner,
    ChainStatus,
    KeySigner,
    SanType,
    SubjectAltName,
)

_FULCIO_ARC = "1.3.6.1.4.1.57264.1"

FULCIO_EXTENSIONS: dict[str, str] = {
    f"{_FULCIO_ARC}.{suffix}": name
    for suffix, name in (
        (1, "issuer-v1"),
        (2, "github-workflow-trigger"),
        (3, "github-workflow-sha"),
        (4, "github-workflow-name"),
        (5, "github-workflow-repository"),
        (6, "github-workflow-ref"),
        (8, "issuer"),
        (9, "build-signer-uri"),
        (10, "build-signer-digest"),
        (11, "runner-environment"),
        (12, "source-repository-uri"),
        (13, "source-repository-digest"),
        (14, "source-repository-ref"),
        (15, "source-repository-identifier"),
        (16, "source-repository-owner-uri"),
        (17, "source-repository-owner-identifier"),
        (18, "build-config-uri"),
        (19, "build-config-digest"),
        (20, "build-trigger"),
        (21, "run-invocation-uri"),
        (22, "source-repository-visibility-at-signing"),
        (23, "deployment-environment"),
        (24, "token-subject"),
    )
}
"""Dotted OID -> kebab-case name of every Fulcio certificate extension."""

FULCIO_EXTENSION_OIDS: dict[str, str] = {name: oid for oid, name in FULCIO_EXTENSIONS.items()}
"""Kebab-case name -> dotted OID."""

USERNAME_SAN_OID = f"{_FULCIO_ARC}.7"
ISSUER_OID = FULCIO_EXTENSION_OIDS["issuer"]
ISSUER_V1_OID = FULCIO_EXTENSION_OIDS["issuer-v1"]

# .1.1-.1.6 predate Fulcio's switch to DER: their extnValue content is the bare string
RAW_STRING_OIDS = frozenset(f"{_FULCIO_ARC}.{n}" for n in range(1, 7))

CONTEXT_0 = 0xA0  # [0] EXPLICIT, constructed

# everything cryptography raises on bad input (it parses lazily, so on access too);
# MalformedInputError from our own helpers is not among them and passes through
CRYPTO_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    TypeError,
    OverflowError,
    NotImplementedError,
    UnsupportedAlgorithm,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    x509.InvalidVersion,
)


def _der_only(data: bytes, tag: int) -> bytes:
    """The value of the single TLV that must make up all of ``data``, with ``tag``."""
    return der.expect(der.read(data, "DER value"), tag, "DER value").value


def _utf8(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MalformedInputError(f"certificate: {where}: not valid UTF-8 ({e.reason})") from e


@contextmanager
def crypto_step(what: str) -> Iterator[None]:
    """Turn whatever cryptography raises during one parsing step into MalformedInputError."""
    try:
        yield
    except x509.DuplicateExtension as e:
        raise MalformedInputError(f"certificate: duplicate extension {e.oid.dotted_string}") from e
    except CRYPTO_ERRORS as e:
        raise MalformedInputError(f"certificate: {what}: {e}") from e


def _ext_label(oid: str) -> str:
    return f"extension {oid} ({FULCIO_EXTENSIONS[oid]})"


def decode_fulcio(oid: str, raw: bytes) -> str | None:
    """The text of a Fulcio extension; None when a DER one is not a DER UTF8String."""
    if oid not in RAW_STRING_OIDS:
        if len(raw) >= 2 and raw[0] == der.UTF8_STRING and raw[1] < 0x80 and raw[1] + 2 == len(raw):
            raw = raw[2:]  # the usual short UTF8String: what the strict reader would return
        else:
            try:
                raw = _der_only(raw, der.UTF8_STRING)
            except MalformedInputError:
                return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return _utf8(raw, _ext_label(oid))  # raises, saying where


def extnvalue(value: x509.ExtensionType) -> bytes:
    """The DER extnValue content: cryptography keeps it for unknown extensions only."""
    if isinstance(value, x509.UnrecognizedExtension):
        return value.value
    return value.public_bytes()


def _extensions(cert: x509.Certificate) -> tuple[tuple[CertExtension, ...], dict[str, str]]:
    """Every extension in certificate order, and the decoded text of the Fulcio ones."""
    out: list[CertExtension] = []
    decoded: dict[str, str] = {}
    for ext in cert.extensions:
        oid = ext.oid.dotted_string
        raw = extnvalue(ext.value)
        name = FULCIO_EXTENSIONS.get(oid)
        text = decode_fulcio(oid, raw) if name is not None else None
        if text is not None:
            decoded[oid] = text
            out.append(CertExtension(oid, name, text, ext.critical))
        elif name is not None:
            # a non-conforming issuer wrote it: keep it, visibly not decoded
            out.append(CertExtension(oid, name, f"hex:{raw.hex()}", ext.critical))
        else:
            out.append(CertExtension(oid, None, raw.hex(), ext.critical))
    return tuple(out), decoded


def _username(value: bytes) -> str:
    """The username of an otherName .1.7: [0] EXPLICIT UTF8String, or a bare UTF8String."""
    where = f"SAN otherName {USERNAME_SAN_OID}"
    try:
        if value[:1] == bytes([CONTEXT_0]):
            value = _der_only(value, CONTEXT_0)
        content = _der_only(value, der.UTF8_STRING)
    except MalformedInputError as e:
        raise MalformedInputError(f"certificate: {where}: not a DER UTF8String ({e})") from e
    return _utf8(content, where)


# SAN types whose value is plain text (str() of an IP address gives its usual notation)
_TEXT_SANS: dict[type[x509.GeneralName], SanType] = {
    x509.RFC822Name: SanType.EMAIL,
    x509.UniformResourceIdentifier: SanType.URI,
    x509.DNSName: SanType.DNS,
    x509.IPAddress: SanType.IP,
}


def _other_name(name: x509.OtherName) -> SubjectAltName:
    oid = name.type_id.dotted_string
    if oid == USERNAME_SAN_OID:
        return SubjectAltName(SanType.USERNAME, _username(name.value))
    return SubjectAltName(SanType.OTHER, f"{oid}:{name.value.hex()}")


def san_name(name: x509.GeneralName) -> SubjectAltName:
    san_type = _TEXT_SANS.get(type(name))
    if san_type is not None:
        return SubjectAltName(san_type, str(name.value))
    if isinstance(name, x509.OtherName):
        return _other_name(name)
    # never issued by Fulcio, but kept rather than dropped: a person may want to see them
    if isinstance(name, x509.DirectoryName):
        return SubjectAltName(SanType.OTHER, f"directoryName:{name.value.rfc4514_string()}")
    if isinstance(name, x509.RegisteredID):
        return SubjectAltName(SanType.OTHER, f"registeredID:{name.value.dotted_string}")
    raise MalformedInputError(f"certificate: unsupported SAN type {type(name).__name__}")


def _sans(cert: x509.Certificate) -> tuple[SubjectAltName, ...]:
    for ext in cert.extensions:
        if isinstance(ext.value, x509.SubjectAlternativeName):
            return tuple(san_name(name) for name in ext.value)
    return ()


def _fingerprint(der: bytes) -> str:
    return f"sha256:{hashlib.sha256(der).hexdigest()}"


# DER SubjectPublicKeyInfo of a named-curve P-256 / P-384 key with an uncompressed point, up to
# the point's 0x04, and its full length: cryptography writes such a key back byte for byte
_PLAIN_EC_SPKI = (
    (bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d03010703420004"), 91),
    (bytes.fromhex("3076301006072a8648ce3d020106052b8104002203620004"), 120),
)


def _spki_der(key: CertificatePublicKeyTypes, spki: bytes | None) -> bytes:
    """The DER SubjectPublicKeyInfo as cryptography writes ``key``; ``spki`` is the certificate's
    own, used as is where it is certainly the same bytes."""
    if spki is not None:
        for prefix, size in _PLAIN_EC_SPKI:
            if len(spki) == size and spki.startswith(prefix):
                return spki
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class _Curve(NamedTuple):
    """A prime curve y^2 = x^3 - 3x + b (mod p) whose plain SPKI starts with ``prefix``."""

    prefix: bytes
    spki_size: int
    bits: int
    name: str
    p: int
    b: int


_P256, _P384 = _PLAIN_EC_SPKI
_PLAIN_CURVES = (
    _Curve(
        *_P256,
        256,
        "P-256",
        2**256 - 2**224 + 2**192 + 2**96 - 1,
        0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
    ),
    _Curve(
        *_P384,
        384,
        "P-384",
        2**384 - 2**128 - 2**96 + 2**32 - 1,
        int(
            "B3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875A"
            "C656398D8A2ED19D2A85C8EDD3EC2AEF",
            16,
        ),
    ),
)


def plain_ec_signer(spki: bytes) -> KeySigner | None:
    """The signer of a P-256 / P-384 key with an uncompressed point, read from its bytes: what
    cryptography checks of such a key is that each coordinate is below p and the point on the
    curve (the cofactor of both is 1), so this checks the same. None for any other key, and for
    a point that fails, which cryptography then reads (and rejects, in its words)."""
    for curve in _PLAIN_CURVES:
        if len(spki) == curve.spki_size and spki.startswith(curve.prefix):
            n = curve.bits // 8
            x, y, p = int.from_bytes(spki[-2 * n : -n]), int.from_bytes(spki[-n:]), curve.p
            if x < p and y < p and (y * y - x * x * x + 3 * x - curve.b) % p == 0:
                return KeySigner("ecdsa", _fingerprint(spki), size=curve.bits, curve=curve.name)
            return None
    return None


def key_signer(cert: x509.Certificate, spki: bytes | None = None) -> KeySigner:
    """``spki``, where given, is the certificate's own SubjectPublicKeyInfo."""
    if spki is not None:
        signer = plain_ec_signer(spki)
        if signer is not None:
            return signer  # cryptography's key object costs more than all the rest of this
    key = cert.public_key()
    fingerprint = _fingerprint(_spki_der(key, spki))
    if isinstance(key, ec.EllipticCurvePublicKey):
        curve = curve_name(key.curve)
        return KeySigner("ecdsa", fingerprint, size=key.key_size, curve=curve)
    if isinstance(key, rsa.RSAPublicKey):
        return KeySigner("rsa", fingerprint, size=key.key_size)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return KeySigner("ed25519", fingerprint, size=256, curve="Ed25519")
    return KeySigner("unknown", fingerprint)


def build_general(cert: x509.Certificate, der: bytes) -> CertificateSigner:
    """Everything through cryptography's objects: for certificates the direct reader skips."""
    with crypto_step("extensions cannot be parsed"):
        extensions, decoded = _extensions(cert)
    with crypto_step("subject alternative name cannot be parsed"):
        sans = _sans(cert)
    with crypto_step("public key cannot be read"):
        key = key_signer(cert)
    with crypto_step("issuer or subject name cannot be parsed"):
        issuer_dn, subject_dn = cert.issuer.rfc4514_string(), cert.subject.rfc4514_string()
    with crypto_step("fields cannot be read"):
        issuer = decoded.get(ISSUER_OID, decoded.get(ISSUER_V1_OID))
        names = (issuer_dn, subject_dn)
        return make_signer(
            cert, der, sans=sans, issuer=issuer, extensions=extensions, names=names, key=key
        )


def make_signer(
    cert: x509.Certificate,
    der: bytes,
    *,
    sans: tuple[SubjectAltName, ...],
    issuer: str | None,
    extensions: tuple[CertExtension, ...],
    names: tuple[str, str],
    key: KeySigner,
) -> CertificateSigner:
    """The record both parsing paths build; the fields read from ``cert`` are read here."""
    return CertificateSigner(
        sans=sans,
        issuer=issuer,
        extensions=extensions,
        serial=format(cert.serial_number, "x"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        issuer_dn=names[0],
        subject_dn=names[1],
        fingerprint=_fingerprint(der),
        key=key,
        chain=ChainStatus.UNCHECKED,
        der=der,
    )
