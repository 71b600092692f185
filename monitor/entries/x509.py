"""X.509 certificates as signers: Fulcio identities, extensions, keys, and the chain check.

``parse_certificate`` turns DER into a ``CertificateSigner`` and raises only
``MalformedInputError``; ``chain_reason`` / ``check_chain`` say whether a Fulcio CA of the trust
root issued it, and never raise.

Fulcio extension encodings (REKOR-FORMATS.md section 5): OIDs ``.1.1``-``.1.6`` hold the raw
string bytes as the extnValue content, ``.1.8`` onward a DER UTF8String; ``.1.7`` is the SAN
otherName type for usernames.

Speed: ``cryptography`` checks all of the certificate's DER when loading it, but its
``extensions`` property also builds Python objects for each of the twenty-odd Fulcio extensions,
which was most of the cost. So the extension list is read straight from the DER, and only the
extensions outside Sigstore's OID arc go through ``cryptography`` (in a certificate holding just
them): the same checks, errors and values as before. What repeats from one certificate to the
next (most extension TLVs, the issuer name) is remembered by its bytes in small bounded caches,
unless ``cryptography`` warned while reading it. DER the direct reader does not expect takes the
general path, through ``cryptography``'s objects alone.
"""

from __future__ import annotations

import binascii
import hashlib
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import NamedTuple, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.utils import CryptographyDeprecationWarning

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
from monitor.trust.root import CertificateAuthority

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
_RAW_STRING_OIDS = frozenset(f"{_FULCIO_ARC}.{n}" for n in range(1, 7))

_CONTEXT_0 = 0xA0  # [0] EXPLICIT, constructed

# everything cryptography raises on bad input (it parses lazily, so on access too);
# MalformedInputError from our own helpers is not among them and passes through
_CRYPTO_ERRORS: tuple[type[Exception], ...] = (
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


# --- parsing ----------------------------------------------------------------------------------


@contextmanager
def _step(what: str) -> Iterator[None]:
    """Turn whatever cryptography raises during one parsing step into MalformedInputError."""
    try:
        yield
    except x509.DuplicateExtension as e:
        raise MalformedInputError(f"certificate: duplicate extension {e.oid.dotted_string}") from e
    except _CRYPTO_ERRORS as e:
        raise MalformedInputError(f"certificate: {what}: {e}") from e


def _ext_label(oid: str) -> str:
    return f"extension {oid} ({FULCIO_EXTENSIONS[oid]})"


def _decode_fulcio(oid: str, raw: bytes) -> str | None:
    """The text of a Fulcio extension; None when a DER one is not a DER UTF8String."""
    if oid not in _RAW_STRING_OIDS:
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


def _extnvalue(value: x509.ExtensionType) -> bytes:
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
        raw = _extnvalue(ext.value)
        name = FULCIO_EXTENSIONS.get(oid)
        text = _decode_fulcio(oid, raw) if name is not None else None
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
        if value[:1] == bytes([_CONTEXT_0]):
            value = _der_only(value, _CONTEXT_0)
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


def _san(name: x509.GeneralName) -> SubjectAltName:
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
            return tuple(_san(name) for name in ext.value)
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


def _key_signer(cert: x509.Certificate, spki: bytes | None = None) -> KeySigner:
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


def _build_general(cert: x509.Certificate, der: bytes) -> CertificateSigner:
    """Everything through cryptography's objects: for certificates the direct reader skips."""
    with _step("extensions cannot be parsed"):
        extensions, decoded = _extensions(cert)
    with _step("subject alternative name cannot be parsed"):
        sans = _sans(cert)
    with _step("public key cannot be read"):
        key = _key_signer(cert)
    with _step("issuer or subject name cannot be parsed"):
        issuer_dn, subject_dn = cert.issuer.rfc4514_string(), cert.subject.rfc4514_string()
    with _step("fields cannot be read"):
        issuer = decoded.get(ISSUER_OID, decoded.get(ISSUER_V1_OID))
        names = (issuer_dn, subject_dn)
        return _signer(
            cert, der, sans=sans, issuer=issuer, extensions=extensions, names=names, key=key
        )


def _signer(
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


# --- the direct reader ------------------------------------------------------------------------
#
# It runs only on DER that cryptography has loaded, which checked every TLV of the certificate
# down to each Extension's OID, BOOLEAN and OCTET STRING; it still checks what it relies on,
# and raises _Unexpected (never MalformedInputError) to hand over to the general path.


class _Unexpected(Exception):
    """DER the direct reader does not handle: the general path reads the certificate."""


_CACHE_SIZE = 4096  # entries per cache; a full cache is emptied and fills up again
_CACHED_TLV_MAX = 1024  # bytes: longer extensions are not remembered

# 1.3.6.1.4.1.57264, Sigstore's arc: cryptography knows none of its extensions
_SIGSTORE_ARC_DER = bytes.fromhex("2b0601040183bf30")


class _Entry(NamedTuple):
    """What one Extension TLV gives, remembered by its bytes once it was read without error."""

    oid: str
    ext: CertExtension
    role: int = 0  # _ISSUER / _ISSUER_V1 when ext.value is that decoded text; _SAN
    sans: tuple[SubjectAltName, ...] = ()  # for _SAN


_ISSUER_V1, _ISSUER, _SAN = 1, 2, 3
_ISSUER_ROLES = {ISSUER_OID: _ISSUER, ISSUER_V1_OID: _ISSUER_V1}

_ENTRIES: dict[bytes, _Entry] = {}  # Extension TLV -> entry
_OIDS: dict[bytes, str] = {}  # OID content -> dotted string
_NAMES: dict[bytes, str] = {}  # Name TLV -> RFC 4514 string

_T = TypeVar("_T")


def _remember(cache: dict[bytes, _T], key: bytes, value: _T) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = value


def _span(data: bytes, pos: int, tag: int) -> tuple[int, int]:
    """Where the value of the TLV at ``pos`` starts and the TLV ends; it must have ``tag``."""
    if data[pos] != tag:
        raise _Unexpected
    n = data[pos + 1]
    if n < 0x80:
        return pos + 2, pos + 2 + n
    size = n & 0x7F
    if not 1 <= size <= 3:
        raise _Unexpected
    start = pos + 2 + size
    return start, start + int.from_bytes(data[pos + 2 : start], "big")


class _Layout(NamedTuple):
    issuer: bytes  # Name TLV
    subject: bytes  # Name TLV
    spki: bytes  # SubjectPublicKeyInfo TLV
    extensions: tuple[int, int]  # the Extension TLVs lie in der[start:end]


def _layout(cert_der: bytes) -> _Layout:
    """The TBSCertificate fields the direct reader needs."""
    start, end = _span(cert_der, 0, der.SEQUENCE)
    if end != len(cert_der):
        raise _Unexpected
    pos, tbs_end = _span(cert_der, start, der.SEQUENCE)
    if cert_der[pos] == _CONTEXT_0:  # version
        pos = _span(cert_der, pos, _CONTEXT_0)[1]
    pos = _span(cert_der, pos, der.INTEGER)[1]  # serialNumber
    pos = _span(cert_der, pos, der.SEQUENCE)[1]  # signature
    issuer = pos
    pos = _span(cert_der, pos, der.SEQUENCE)[1]
    issuer_end = pos
    pos = _span(cert_der, pos, der.SEQUENCE)[1]  # validity
    subject = pos
    pos = _span(cert_der, pos, der.SEQUENCE)[1]
    subject_end = pos
    spki = pos
    pos = _span(cert_der, pos, der.SEQUENCE)[1]
    spki_end = pos
    for unique_id in (0x81, 0x82):  # issuerUniqueID, subjectUniqueID
        if pos < tbs_end and cert_der[pos] == unique_id:
            pos = _span(cert_der, pos, unique_id)[1]
    extensions = (pos, pos)
    if pos < tbs_end:
        inner, pos = _span(cert_der, pos, 0xA3)
        ext_start, ext_end = _span(cert_der, inner, der.SEQUENCE)
        if ext_end != pos:
            raise _Unexpected
        extensions = (ext_start, ext_end)
    if pos != tbs_end:
        raise _Unexpected
    return _Layout(
        cert_der[issuer:issuer_end],
        cert_der[subject:subject_end],
        cert_der[spki:spki_end],
        extensions,
    )


def _oid(content: bytes) -> str:
    oid = _OIDS.get(content)
    if oid is None:
        try:
            oid = der.decode_oid(content, "OID")
        except MalformedInputError:
            raise _Unexpected from None
        _remember(_OIDS, content, oid)
    return oid


def _fulcio_entry(oid: str, value: bytes, critical: bool) -> _Entry:
    """An extension of Sigstore's arc, which cryptography keeps as its raw extnValue."""
    name = FULCIO_EXTENSIONS.get(oid)
    if name is None:
        return _Entry(oid, CertExtension(oid, None, value.hex(), critical))
    text = _decode_fulcio(oid, value)
    if text is None:
        # a non-conforming issuer wrote it: keep it, visibly not decoded
        return _Entry(oid, CertExtension(oid, name, f"hex:{value.hex()}", critical))
    return _Entry(oid, CertExtension(oid, name, text, critical), _ISSUER_ROLES.get(oid, 0))


def _split_extension(tlv: bytes) -> tuple[bytes, bool, int]:
    """The OID content, the critical flag, and where the extnValue content starts, of an
    Extension TLV."""
    n = tlv[1]
    pos = 2 if n < 0x80 else 2 + (n & 0x7F)
    if tlv[pos] != der.OID or tlv[pos + 1] >= 0x80:
        raise _Unexpected
    oid_end = pos + 2 + tlv[pos + 1]
    content = tlv[pos + 2 : oid_end]
    pos = oid_end
    critical = False
    if tlv[pos] == 0x01:  # BOOLEAN; DER with DEFAULT FALSE leaves only TRUE
        if tlv[pos + 1] != 1:
            raise _Unexpected
        critical = tlv[pos + 2] != 0
        pos += 3
    start, end = _span(tlv, pos, der.OCTET_STRING)
    if end != len(tlv):
        raise _Unexpected
    return content, critical, start


class _Walk:
    """The extensions as read so far, in certificate order."""

    __slots__ = ("duplicate", "entries", "failed", "pending", "roles", "seen")

    def __init__(self) -> None:
        self.entries: list[_Entry | None] = []  # None where ``pending`` or ``failed`` has it
        self.pending: list[tuple[int, bytes, str, bool]] = []  # index, TLV, OID, critical
        self.failed: tuple[int, MalformedInputError] | None = None  # first unreadable value
        self.duplicate: str | None = None  # the first OID seen twice: the walk stopped there
        self.roles: list[_Entry] = []  # entries with a role
        self.seen: set[str] = set()

    def first_sight(self, tlv: bytes) -> bool:
        """Add an Extension TLV not remembered yet; False when its OID was seen already."""
        content, critical, start = _split_extension(tlv)
        oid = _oid(content)
        if oid in self.seen:
            self.duplicate = oid
            return False
        self.seen.add(oid)
        index = len(self.entries)
        entry = None
        if not content.startswith(_SIGSTORE_ARC_DER):
            self.pending.append((index, tlv, oid, critical))  # cryptography may know it
        else:
            try:
                entry = _fulcio_entry(oid, tlv[start:], critical)
            except MalformedInputError as e:
                if self.failed is None:
                    self.failed = (index, e)
        self.entries.append(entry)
        if entry is not None:
            if entry.role:
                self.roles.append(entry)
            if len(tlv) <= _CACHED_TLV_MAX:
                _remember(_ENTRIES, tlv, entry)
        return True

    def issuer(self) -> str | None:
        """The OIDC issuer: .1.8, else .1.1, as decoded text."""
        by_role = {entry.role: entry.ext.value for entry in self.roles}
        return by_role.get(_ISSUER, by_role.get(_ISSUER_V1))

    def sans(self) -> tuple[SubjectAltName, ...] | None:
        """The SAN names when the SAN extension was remembered with them."""
        for entry in self.roles:
            if entry.role == _SAN:
                return entry.sans
        return None


def _walk(cert_der: bytes, pos: int, end: int) -> _Walk:
    """Read the Extension TLVs in ``cert_der[pos:end]``; raises only _Unexpected."""
    walk = _Walk()
    known = _ENTRIES.get
    seen, see, add, add_role = walk.seen, walk.seen.add, walk.entries.append, walk.roles.append
    try:
        while pos < end:  # the hot loop: one remembered extension costs a slice and a lookup
            n = cert_der[pos + 1]
            if n < 0x80:
                stop = pos + 2 + n
            elif n == 0x81:
                stop = pos + 3 + cert_der[pos + 2]
            elif n == 0x82:
                stop = pos + 4 + (cert_der[pos + 2] << 8 | cert_der[pos + 3])
            else:
                raise _Unexpected
            if cert_der[pos] != der.SEQUENCE:
                raise _Unexpected
            tlv = cert_der[pos:stop]
            pos = stop
            entry = known(tlv)
            if entry is None:
                if not walk.first_sight(tlv):
                    return walk
                continue
            oid = entry.oid
            if oid in seen:
                walk.duplicate = oid
                return walk
            see(oid)
            add(entry)
            if entry.role:
                add_role(entry)
    except IndexError:
        raise _Unexpected from None
    if pos != end:
        raise _Unexpected
    return walk


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    size = (n.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + n.to_bytes(size, "big") + content


_ECDSA_SHA256 = _tlv(der.SEQUENCE, bytes.fromhex("06082a8648ce3d040302"))
# a v3 TBSCertificate up to its extensions: serial 1, empty names, an Ed25519 key (never read)
_PROBE_HEAD = (
    bytes.fromhex("a003020102020101")
    + _ECDSA_SHA256
    + _tlv(der.SEQUENCE, b"")
    + _tlv(der.SEQUENCE, _tlv(0x17, b"700101000000Z") * 2)
    + _tlv(der.SEQUENCE, b"")
    + bytes.fromhex("302a300506032b6570032100")
    + bytes(32)
)
_PROBE_TAIL = _ECDSA_SHA256 + b"\x03\x01\x00"


def _read_by_cryptography(tlvs: list[bytes]) -> x509.Extensions:
    """cryptography's parse of these Extension TLVs, in a certificate that holds only them: the
    same checks, errors and objects as in the certificate they come from."""
    tbs = _tlv(der.SEQUENCE, _PROBE_HEAD + _tlv(0xA3, _tlv(der.SEQUENCE, b"".join(tlvs))))
    return x509.load_der_x509_certificate(_tlv(der.SEQUENCE, tbs + _PROBE_TAIL)).extensions


class _Settled(NamedTuple):
    extensions: tuple[CertExtension, ...]
    san: tuple[bytes, x509.SubjectAlternativeName, _Entry] | None  # not remembered yet


def _settle(walk: _Walk, caught: list[warnings.WarningMessage]) -> _Settled:
    """Finish the extensions, raising what cryptography would, in the order it would: a
    duplicate, then its own parse errors, then a Fulcio value that cannot be read."""
    if walk.duplicate is not None:
        raise MalformedInputError(f"certificate: duplicate extension {walk.duplicate}")
    entries, pending, failed = walk.entries, walk.pending, walk.failed
    checked = _read_by_cryptography([p[1] for p in pending]) if pending else ()
    san = None
    for (index, tlv, oid, critical), ext in zip(pending, checked, strict=True):
        if failed is not None and failed[0] < index:
            raise failed[1]
        value = ext.value
        entry = _Entry(oid, CertExtension(oid, None, _extnvalue(value).hex(), critical))
        entries[index] = entry
        if isinstance(value, x509.SubjectAlternativeName):
            san = (tlv, value, entry)  # remembered once its names are read
        elif not caught and len(tlv) <= _CACHED_TLV_MAX:
            _remember(_ENTRIES, tlv, entry)
    if failed is not None:
        raise failed[1]
    return _Settled(tuple([e.ext for e in entries if e is not None]), san)


def _san_names(
    walk: _Walk, settled: _Settled, caught: list[warnings.WarningMessage]
) -> tuple[SubjectAltName, ...]:
    remembered = walk.sans()
    if remembered is not None:
        return remembered
    if settled.san is None:
        return ()
    tlv, value, entry = settled.san
    sans = tuple(_san(name) for name in value)
    if not caught and len(tlv) <= _CACHED_TLV_MAX:
        _remember(_ENTRIES, tlv, entry._replace(role=_SAN, sans=sans))
    return sans


def _dn(
    cert: x509.Certificate, name_der: bytes, caught: list[warnings.WarningMessage], *, subject: bool
) -> str:
    """The RFC 4514 string of the certificate's issuer or subject, whose DER is ``name_der``."""
    text = _NAMES.get(name_der)
    if text is None:
        text = (cert.subject if subject else cert.issuer).rfc4514_string()
        if not caught and len(name_der) <= _CACHED_TLV_MAX:
            _remember(_NAMES, name_der, text)
    return text


def _build(
    cert_der: bytes, load_step: str, caught: list[warnings.WarningMessage]
) -> CertificateSigner:
    """The signer; ``caught`` records the warnings meanwhile: what cryptography computed while
    warning is not remembered, so that it warns again for the next certificate alike."""
    step = load_step
    try:
        cert = x509.load_der_x509_certificate(cert_der)
        try:
            layout = _layout(cert_der)
            walk = _walk(cert_der, *layout.extensions)
        except (_Unexpected, IndexError):
            return _build_general(cert, cert_der)
        step = "extensions cannot be parsed"
        settled = _settle(walk, caught)
        step = "subject alternative name cannot be parsed"
        sans = _san_names(walk, settled, caught)
        step = "public key cannot be read"
        key = _key_signer(cert, layout.spki)
        step = "issuer or subject name cannot be parsed"
        issuer_dn = _dn(cert, layout.issuer, caught, subject=False)
        subject_dn = _dn(cert, layout.subject, caught, subject=True)
        step = "fields cannot be read"
        names = (issuer_dn, subject_dn)
        return _signer(
            cert,
            cert_der,
            sans=sans,
            issuer=walk.issuer(),
            extensions=settled.extensions,
            names=names,
            key=key,
        )
    except x509.DuplicateExtension as e:
        raise MalformedInputError(f"certificate: duplicate extension {e.oid.dotted_string}") from e
    except _CRYPTO_ERRORS as e:
        raise MalformedInputError(f"certificate: {step}: {e}") from e


def _parse(cert_der: bytes, load_step: str) -> CertificateSigner:
    # cryptography only warns about some RFC 5280 violations (a non-positive serial, a wrong
    # length country name) and may reject them in a future release: they are malformed for us
    # now, and must not leak out as warnings. The filter is process-wide, so warnings of any
    # other kind caught meanwhile (from other threads) are passed on unchanged.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # but not cryptography 51's about DSA keys: a certificate may hold one (read as ever)
        warnings.filterwarnings(
            "ignore", "DSA is deprecated", category=CryptographyDeprecationWarning
        )
        signer = _build(cert_der, load_step, caught)
    if caught:
        ours = [w for w in caught if _from_cryptography(w)]
        for w in caught:
            if w not in ours:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if ours:
            raise MalformedInputError(f"certificate: {ours[0].message}")
    return signer


def _from_cryptography(w: warnings.WarningMessage) -> bool:
    """Deprecations, and complaints such as a wrong-length country name in a DN (which
    cryptography attributes to the line of ours that asked for the name)."""
    parts = w.filename.replace("\\", "/").split("/")
    return (
        issubclass(w.category, CryptographyDeprecationWarning)
        or "cryptography" in parts
        or w.filename == __file__
    )


def parse_certificate(der: bytes) -> CertificateSigner:
    """Parse a DER certificate. Raises only MalformedInputError."""
    return _parse(der, "not a DER X.509 certificate")


# the block labels cryptography loads as certificates
_PEM_CERT_MARKERS = (b"-----BEGIN CERTIFICATE-----", b"-----BEGIN X509 CERTIFICATE-----")
_PEM_BEGIN, _PEM_END = _PEM_CERT_MARKERS[0], b"-----END CERTIFICATE-----"
# the last base64 digit before "==" / "=" of a canonical encoding: its unused low bits are zero
_BASE64_BEFORE_PADDING = {2: b"AQgw", 1: b"AEIMQUYcgkosw048"}


def _looks_like_pem(data: bytes) -> bool:
    # a DER certificate starts with a SEQUENCE tag; PEM may carry text before its first block
    return not data.startswith(b"\x30") and b"-----BEGIN " in data


def _canonical_base64_end(text: bytes) -> bool:
    """Whether the digit before any "=" padding has its unused low bits zero."""
    padding = len(text) - len(text.rstrip(b"="))
    if not padding:
        return True
    digit = text[len(text) - padding - 1 : len(text) - padding]
    return len(digit) == 1 and digit in _BASE64_BEFORE_PADDING.get(padding, b"")


def _plain_pem_der(data: bytes) -> bytes | None:
    """The DER in PEM written the usual way: text without a dash, one CERTIFICATE block of
    canonical base64 in lines without blank ones, then only whitespace. None for anything else,
    which cryptography then reads; what this accepts, cryptography reads to the same bytes."""
    begin = data.find(_PEM_BEGIN)
    end = data.find(_PEM_END, begin) if begin >= 0 and data.find(b"-") == begin else -1
    if end < 0 or data[end + len(_PEM_END) :].strip(b" \t\r\n"):
        return None
    lines = data[begin + len(_PEM_BEGIN) : end].lstrip(b" \t\r\n").split(b"\n")
    text = b"".join(lines).translate(None, b"\r")
    # a blank line ends PEM headers; strict base64 has no dash, space or stray character
    if b"" in lines[:-1] or b"\r" in lines[:-1] or len(text) % 4:
        return None
    try:
        decoded = binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error:
        return None
    return decoded if _canonical_base64_end(text) else None


def parse_certificate_pem_or_der(data: bytes) -> CertificateSigner:
    """Parse one certificate given as PEM (exactly one CERTIFICATE block) or DER."""
    if not _looks_like_pem(data):
        return parse_certificate(data)
    plain = _plain_pem_der(data)
    if plain is not None:
        return _parse(plain, "not a PEM certificate")
    if not any(marker in data for marker in _PEM_CERT_MARKERS):
        raise MalformedInputError("certificate: PEM holds no CERTIFICATE block")
    with warnings.catch_warnings(record=True), _step("not a PEM certificate"):
        warnings.simplefilter("always")
        certs = x509.load_pem_x509_certificates(data)
    if len(certs) != 1:
        raise MalformedInputError(
            f"certificate: PEM holds {len(certs)} CERTIFICATE blocks, expected exactly one"
        )
    with _step("not a PEM certificate"):
        der = certs[0].public_bytes(serialization.Encoding.DER)
    return parse_certificate(der)


# --- chain check ------------------------------------------------------------------------------


def _aki(cert: x509.Certificate) -> bytes | None:
    try:
        ext = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    except x509.ExtensionNotFound:
        return None
    return ext.value.key_identifier


def _ski(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def _same_key(leaf_aki: bytes | None, issuer: x509.Certificate) -> bool:
    """Cheap pre-filter: key identifiers rule a CA out only when both exist and differ."""
    ski = _ski(issuer)
    return leaf_aki is None or ski is None or ski == leaf_aki


def _within(when: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or start <= when) and (end is None or when <= end)


def _window_problem(leaf: x509.Certificate, ca: CertificateAuthority) -> str | None:
    """Why the dates rule out ``ca`` as the issuer of ``leaf``, or None if they do not."""
    issuer = ca.chain[0]
    start, end = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    if not _within(start, ca.valid_from, ca.valid_until):
        return f"issued {start.isoformat()}, outside the validity of CA {ca.uri}"
    lo, hi = issuer.not_valid_before_utc, issuer.not_valid_after_utc
    if not (_within(start, lo, hi) and _within(end, lo, hi)):
        return (
            f"validity {start.isoformat()}..{end.isoformat()} exceeds that of the issuing"
            f" certificate of CA {ca.uri} ({lo.isoformat()}..{hi.isoformat()})"
        )
    return None


def _issue_problem(leaf: x509.Certificate, ca: CertificateAuthority) -> str | None:
    """Why ``ca`` did not issue ``leaf`` (dates, then signature), or None if it did."""
    problem = _window_problem(leaf, ca)
    if problem is not None:
        return problem
    try:
        leaf.verify_directly_issued_by(ca.chain[0])
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return f"signature does not verify with CA {ca.uri}"
    return None


def _candidates(
    leaf: x509.Certificate, cas: Sequence[CertificateAuthority]
) -> tuple[list[CertificateAuthority], str | None]:
    """CAs whose issuing certificate could have issued ``leaf`` by name and key ID."""
    dn = leaf.issuer.rfc4514_string()
    named = [ca for ca in cas if ca.chain and ca.chain[0].subject == leaf.issuer]
    if not named:
        return [], f"no Fulcio CA named {dn}"
    aki = _aki(leaf)
    keyed = [ca for ca in named if _same_key(aki, ca.chain[0])]
    if not keyed:
        return [], f"no Fulcio CA named {dn} with key identifier {aki.hex() if aki else ''}"
    return keyed, None


def _reason(
    cert: CertificateSigner, cas: Sequence[CertificateAuthority]
) -> tuple[ChainStatus, str]:
    if not cert.der:
        return ChainStatus.UNTRUSTED, "no certificate bytes to check"
    leaf = x509.load_der_x509_certificate(cert.der)
    candidates, why = _candidates(leaf, cas)
    problems: list[str] = [why] if why else []
    for ca in candidates:
        problem = _issue_problem(leaf, ca)
        if problem is None:
            return ChainStatus.VERIFIED, f"issued by {leaf.issuer.rfc4514_string()} ({ca.uri})"
        if problem not in problems:
            problems.append(problem)
    return ChainStatus.UNTRUSTED, "; ".join(problems)


def chain_reason(
    cert: CertificateSigner, cas: Sequence[CertificateAuthority]
) -> tuple[ChainStatus, str]:
    """Whether a Fulcio CA of ``cas`` directly issued ``cert``, and why. Never raises."""
    try:
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            return _reason(cert, cas)
    except Exception as e:  # a check that cannot complete is a failed check, never a crash
        return ChainStatus.UNTRUSTED, f"cannot check the chain: {type(e).__name__}: {e}"


def check_chain(cert: CertificateSigner, cas: Sequence[CertificateAuthority]) -> ChainStatus:
    """VERIFIED when a Fulcio CA of ``cas`` directly issued ``cert`` while valid; else
    UNTRUSTED. Never raises."""
    return chain_reason(cert, cas)[0]


__all__: Sequence[str] = (
    "FULCIO_EXTENSIONS",
    "FULCIO_EXTENSION_OIDS",
    "ISSUER_OID",
    "ISSUER_V1_OID",
    "USERNAME_SAN_OID",
    "chain_reason",
    "check_chain",
    "parse_certificate",
    "parse_certificate_pem_or_der",
)
