"""The direct reader of a certificate's extensions, for ``x509.parse_certificate``.

``cryptography`` checks all of the certificate's DER when loading it, but its ``extensions``
property also builds Python objects for each of the twenty-odd Fulcio extensions, which was
most of the cost. So the extension list is read straight from the DER, and only the extensions
outside Sigstore's OID arc go through ``cryptography`` (in a certificate holding just them): the
same checks, errors and values as before. What repeats from one certificate to the next (most
extension TLVs, the issuer name) is remembered by its bytes in small bounded caches, unless
``cryptography`` warned while reading it. DER the direct reader does not expect raises
``Unexpected``, and the general path (``x509_fields.build_general``) reads the certificate.
"""

from __future__ import annotations

import warnings
from operator import attrgetter
from typing import NamedTuple, TypeVar

from cryptography import x509

from monitor.core.errors import MalformedInputError
from monitor.entries import der
from monitor.entries.record import CertExtension, SubjectAltName
from monitor.entries.x509_fields import (
    CONTEXT_0,
    FULCIO_EXTENSIONS,
    ISSUER_OID,
    ISSUER_V1_OID,
    decode_fulcio,
    extnvalue,
    san_name,
)

#
# It runs only on DER that cryptography has loaded, which checked every TLV of the certificate
# down to each Extension's OID, BOOLEAN and OCTET STRING; it still checks what it relies on,
# and raises Unexpected (never MalformedInputError) to hand over to the general path.


class Unexpected(Exception):
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
        raise Unexpected
    n = data[pos + 1]
    if n < 0x80:
        return pos + 2, pos + 2 + n
    size = n & 0x7F
    if not 1 <= size <= 3:
        raise Unexpected
    start = pos + 2 + size
    return start, start + int.from_bytes(data[pos + 2 : start], "big")


class _Layout(NamedTuple):
    issuer: bytes  # Name TLV
    subject: bytes  # Name TLV
    spki: bytes  # SubjectPublicKeyInfo TLV
    extensions: tuple[int, int]  # the Extension TLVs lie in der[start:end]


def read_layout(cert_der: bytes) -> _Layout:
    """The TBSCertificate fields the direct reader needs."""
    start, end = _span(cert_der, 0, der.SEQUENCE)
    if end != len(cert_der):
        raise Unexpected
    pos, tbs_end = _span(cert_der, start, der.SEQUENCE)
    if cert_der[pos] == CONTEXT_0:  # version
        pos = _span(cert_der, pos, CONTEXT_0)[1]
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
            raise Unexpected
        extensions = (ext_start, ext_end)
    if pos != tbs_end:
        raise Unexpected
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
            raise Unexpected from None
        _remember(_OIDS, content, oid)
    return oid


def _fulcio_entry(oid: str, value: bytes, critical: bool) -> _Entry:
    """An extension of Sigstore's arc, which cryptography keeps as its raw extnValue."""
    name = FULCIO_EXTENSIONS.get(oid)
    if name is None:
        return _Entry(oid, CertExtension(oid, None, value.hex(), critical))
    text = decode_fulcio(oid, value)
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
        raise Unexpected
    oid_end = pos + 2 + tlv[pos + 1]
    content = tlv[pos + 2 : oid_end]
    pos = oid_end
    critical = False
    if tlv[pos] == 0x01:  # BOOLEAN; DER with DEFAULT FALSE leaves only TRUE
        if tlv[pos + 1] != 1:
            raise Unexpected
        critical = tlv[pos + 2] != 0
        pos += 3
    start, end = _span(tlv, pos, der.OCTET_STRING)
    if end != len(tlv):
        raise Unexpected
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


def walk_extensions(cert_der: bytes, pos: int, end: int) -> _Walk:
    """Read the Extension TLVs in ``cert_der[pos:end]``; raises only Unexpected."""
    walk = _Walk()
    known = _ENTRIES.get
    seen, see, add, add_role = walk.seen, walk.seen.add, walk.entries.append, walk.roles.append
    sequence = der.SEQUENCE
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
                raise Unexpected
            if cert_der[pos] != sequence:
                raise Unexpected
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
        raise Unexpected from None
    if pos != end:
        raise Unexpected
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


_EXT_OF = attrgetter("ext")


class _Settled(NamedTuple):
    extensions: tuple[CertExtension, ...]
    san: tuple[bytes, x509.SubjectAlternativeName, _Entry] | None  # not remembered yet


def settle_extensions(walk: _Walk, caught: list[warnings.WarningMessage]) -> _Settled:
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
        entry = _Entry(oid, CertExtension(oid, None, extnvalue(value).hex(), critical))
        entries[index] = entry
        if isinstance(value, x509.SubjectAlternativeName):
            san = (tlv, value, entry)  # remembered once its names are read
        elif not caught and len(tlv) <= _CACHED_TLV_MAX:
            _remember(_ENTRIES, tlv, entry)
    if failed is not None:
        raise failed[1]
    if None in entries:  # never, once settled; kept safe all the same
        return _Settled(tuple([e.ext for e in entries if e is not None]), san)
    return _Settled(tuple(map(_EXT_OF, entries)), san)


def san_names(
    walk: _Walk, settled: _Settled, caught: list[warnings.WarningMessage]
) -> tuple[SubjectAltName, ...]:
    remembered = walk.sans()
    if remembered is not None:
        return remembered
    if settled.san is None:
        return ()
    tlv, value, entry = settled.san
    sans = tuple(san_name(name) for name in value)
    if not caught and len(tlv) <= _CACHED_TLV_MAX:
        _remember(_ENTRIES, tlv, entry._replace(role=_SAN, sans=sans))
    return sans


def name_text(
    cert: x509.Certificate, name_der: bytes, caught: list[warnings.WarningMessage], *, subject: bool
) -> str:
    """The RFC 4514 string of the certificate's issuer or subject, whose DER is ``name_der``."""
    text = _NAMES.get(name_der)
    if text is None:
        text = (cert.subject if subject else cert.issuer).rfc4514_string()
        if not caught and len(name_der) <= _CACHED_TLV_MAX:
            _remember(_NAMES, name_der, text)
    return text
