"""The direct reader of a certificate's extensions, for ``x509.parse_certificate``.

``cryptography`` checks all of the certificate's DER when loading it, but its ``extensions``
property also builds Python objects for each of the twenty-odd Fulcio extensions, which was
most of the cost. So the extension list is read straight from the DER: the Fulcio extensions
(text), and the subject key identifier, SCT list and SAN (``x509_values``), which are new in
every certificate. The other extensions (key usages, the CA's key identifier: the same in every
Fulcio certificate) go through ``cryptography``, in a certificate holding just them, and are
remembered: the same checks, errors and values as before. What repeats from one certificate to
the next (most extension TLVs, the issuer name) is remembered by its bytes in small bounded
caches, unless ``cryptography`` warned while reading it; what is new in every certificate (its
key identifier, SCTs, commit digests, run) is not, so that it never pushes out what repeats.
DER the direct reader does not expect raises ``Unexpected``, and the general path
(``x509_fields.build_general``) reads the certificate.

The walk runs only on DER that cryptography has loaded, which checked every TLV of the
certificate down to each Extension's OID, BOOLEAN and OCTET STRING; it still checks what it
relies on.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple, TypeAlias, TypeVar

from cryptography import x509

from monitor.core.errors import MalformedInputError
from monitor.entries import der
from monitor.entries.record import CertExtension, SubjectAltName
from monitor.entries.x509_fields import (
    FULCIO_EXTENSION_OIDS,
    FULCIO_EXTENSIONS,
    ISSUER_OID,
    ISSUER_V1_OID,
    RAW_STRING_OIDS,
    decode_fulcio,
    extnvalue,
    san_name,
)
from monitor.entries.x509_layout import read_by_cryptography, span
from monitor.entries.x509_values import Unexpected, check_key_identifier, check_sct_list
from monitor.entries.x509_values import san_names as read_san_names

_CACHE_SIZE = 4096  # entries per cache; a full cache is emptied and fills up again
_CACHED_TLV_MAX = 1024  # bytes: longer extensions are not remembered

# 1.3.6.1.4.1.57264, Sigstore's arc: cryptography knows none of its extensions
_SIGSTORE_ARC_DER = bytes.fromhex("2b0601040183bf30")

_ISSUER_V1, _ISSUER, _SAN = 1, 2, 3
_ISSUER_ROLES = {ISSUER_OID: _ISSUER, ISSUER_V1_OID: _ISSUER_V1}

# What one Extension TLV gives, remembered by its bytes once it was read without error: the
# OID, the extension, its role (_ISSUER / _ISSUER_V1 when the value is that decoded text, _SAN)
# and the SAN names (for _SAN). A plain tuple: it is made for most extensions of a certificate.
_Entry: TypeAlias = tuple[str, CertExtension, int, tuple[SubjectAltName, ...]]

_ENTRIES: dict[bytes, _Entry] = {}  # Extension TLV -> entry
_OIDS: dict[bytes, str] = {}  # OID content -> dotted string
_NAMES: dict[bytes, str] = {}  # Name TLV -> RFC 4514 string

_T = TypeVar("_T")


def _remember(cache: dict[bytes, _T], key: bytes, value: _T) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = value


def _oid_content(dotted: str) -> bytes:
    """The DER content of an OID (the inverse of ``der.decode_oid``)."""
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        rest = arc >> 7
        while rest:
            chunk.append(0x80 | rest & 0x7F)
            rest >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


_SKID, _SCT_LIST, _SAN_OID = "2.5.29.14", "1.3.6.1.4.1.11129.2.4.2", "2.5.29.17"
# Values new in every certificate: remembering them would only push out those that repeat
_FRESH_EACH_TIME = {
    _SKID,
    _SCT_LIST,
    *(
        FULCIO_EXTENSION_OIDS[name]
        for name in (
            "github-workflow-sha",
            "build-signer-digest",
            "source-repository-digest",
            "build-config-digest",
            "run-invocation-uri",
        )
    ),
}

# The extensions cryptography knows that are read here (by their OID content)
_DIRECT = {_oid_content(oid): oid for oid in (_SKID, _SCT_LIST, _SAN_OID)}


class _Text(NamedTuple):
    """A Fulcio extension the walk reads inline (any but the issuers, which have a role)."""

    oid: str
    name: str
    utf8: bool  # a DER UTF8String in the extnValue (.1.8 onward), else the bare string
    remember: bool


# by the OID's whole TLV (tag, length, content): all of them are 12 bytes long
_TEXTS: dict[bytes, _Text] = {
    bytes((der.OID, len(_oid_content(oid)))) + _oid_content(oid): _Text(
        oid, name, oid not in RAW_STRING_OIDS, oid not in _FRESH_EACH_TIME
    )
    for oid, name in FULCIO_EXTENSIONS.items()
    if oid not in _ISSUER_ROLES
}
_TEXT_OID_TLV = 12
assert {len(k) for k in _TEXTS} == {_TEXT_OID_TLV}


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
        return (oid, CertExtension(oid, None, value.hex(), critical), 0, ())
    text = decode_fulcio(oid, value)
    if text is None:
        # a non-conforming issuer wrote it: keep it, visibly not decoded
        return (oid, CertExtension(oid, name, f"hex:{value.hex()}", critical), 0, ())
    return (oid, CertExtension(oid, name, text, critical), _ISSUER_ROLES.get(oid, 0), ())


def _direct_entry(oid: str, value: bytes, critical: bool) -> _Entry | None:
    """A subject key identifier, SCT list or SAN read without cryptography; None where
    cryptography must read it."""
    try:
        if oid == _SAN_OID:
            sans = read_san_names(value)
            return (oid, CertExtension(oid, None, value.hex(), critical), _SAN, sans)
        (check_key_identifier if oid == _SKID else check_sct_list)(value)
    except Unexpected:
        return None
    return (oid, CertExtension(oid, None, value.hex(), critical), 0, ())


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
    start, end = span(tlv, pos, der.OCTET_STRING)
    if end != len(tlv):
        raise Unexpected
    return content, critical, start


class _Walk:
    """The extensions as read so far, in certificate order."""

    __slots__ = ("duplicate", "extensions", "failed", "issuers", "oids", "pending", "sans")

    def __init__(self) -> None:
        self.extensions: list[CertExtension | None] = []  # None where pending or failed
        self.oids: list[str] = []  # of each extension
        self.pending: list[tuple[int, bytes, str, bool]] = []  # index, TLV, OID, critical
        self.failed: tuple[int, MalformedInputError] | None = None  # first unreadable value
        self.duplicate: str | None = None  # the first OID seen twice
        self.issuers: dict[int, str] = {}  # role -> decoded text
        self.sans: tuple[SubjectAltName, ...] | None = None  # when read without cryptography

    def take(self, entry: _Entry) -> None:
        """An entry with a role."""
        if entry[2] == _SAN:
            self.sans = entry[3]
        else:
            self.issuers[entry[2]] = entry[1].value

    def first_sight(self, tlv: bytes) -> None:
        """Add an Extension TLV the walk did not read inline."""
        content, critical, start = _split_extension(tlv)
        oid = _oid(content)
        index = len(self.extensions)
        value = tlv[start:]
        entry = _direct_entry(oid, value, critical) if content in _DIRECT else None
        if entry is None and not content.startswith(_SIGSTORE_ARC_DER):
            self.pending.append((index, tlv, oid, critical))  # cryptography reads it
        elif entry is None:
            try:
                entry = _fulcio_entry(oid, value, critical)
            except MalformedInputError as e:
                if self.failed is None:
                    self.failed = (index, e)
        self.oids.append(oid)
        self.extensions.append(None if entry is None else entry[1])
        if entry is not None:
            if entry[2]:
                self.take(entry)
            if len(tlv) <= _CACHED_TLV_MAX and oid not in _FRESH_EACH_TIME:
                _remember(_ENTRIES, tlv, entry)

    def finish(self) -> None:
        """Find the first OID seen twice, as cryptography does before reading any value."""
        oids = self.oids
        if len(set(oids)) == len(oids):
            return
        seen: set[str] = set()
        for oid in oids:
            if oid in seen:
                self.duplicate = oid
                return
            seen.add(oid)

    def issuer(self) -> str | None:
        """The OIDC issuer: .1.8, else .1.1, as decoded text."""
        issuers = self.issuers
        return issuers.get(_ISSUER, issuers.get(_ISSUER_V1))


def _short_or_81(data: bytes, pos: int, tag: int) -> int:
    """Where the content of the TLV at ``pos`` starts, for a TLV with ``tag`` and a length of
    one byte, or 0x81 and one more in DER's shortest form, that ends the extension; else -1."""
    if data[pos] != tag:
        return -1
    n = data[pos + 1]
    if n < 0x80:
        return pos + 2
    return pos + 3 if n == 0x81 and data[pos + 2] >= 0x80 else -1


def walk_extensions(cert_der: bytes, pos: int, end: int) -> _Walk:  # noqa: PLR0912, PLR0915
    """Read the Extension TLVs in ``cert_der[pos:end]``; raises only Unexpected.

    The hot loop of the parse, kept in one function (a call per extension would cost more
    than the rest of its reading): one remembered extension costs a slice and a lookup; a
    Fulcio text extension read here, a few index reads and its ``CertExtension``.
    """
    walk = _Walk()
    known, texts, cache = _ENTRIES.get, _TEXTS.get, _ENTRIES
    add, add_oid = walk.extensions.append, walk.oids.append
    try:
        while pos < end:
            if cert_der[pos] != der.SEQUENCE:
                raise Unexpected
            n = cert_der[pos + 1]
            if n < 0x80:
                p = pos + 2
            elif n == 0x81:
                n, p = cert_der[pos + 2], pos + 3
            elif n == 0x82:
                n, p = cert_der[pos + 2] << 8 | cert_der[pos + 3], pos + 4
            else:
                raise Unexpected
            stop = p + n
            tlv = cert_der[pos:stop]
            pos = stop
            entry = known(tlv)
            if entry is not None:
                add(entry[1])
                add_oid(entry[0])
                if entry[2]:
                    walk.take(entry)
                continue
            text = texts(cert_der[p : p + _TEXT_OID_TLV])
            if text is None:
                walk.first_sight(tlv)
                continue
            p += _TEXT_OID_TLV
            critical = False
            if cert_der[p] == 0x01:  # BOOLEAN; DER with DEFAULT FALSE leaves only TRUE
                if cert_der[p + 1] != 1:
                    raise Unexpected
                critical = cert_der[p + 2] != 0
                p += 3
            # the extnValue, and (from .1.8 on) the UTF8String in it, up to the end; a longer
            # length form, or anything else, is read as first_sight reads it
            p = _short_or_81(cert_der, p, der.OCTET_STRING)
            if p > 0 and cert_der[p - 1] + p == stop and text.utf8:
                p = _short_or_81(cert_der, p, der.UTF8_STRING)
            if p < 0 or cert_der[p - 1] + p != stop:
                walk.first_sight(tlv)
                continue
            try:
                value = cert_der[p:stop].decode()
            except UnicodeDecodeError:
                walk.first_sight(tlv)  # which records the error, in its words
                continue
            oid = text.oid
            ext = CertExtension(oid, text.name, value, critical)
            add(ext)
            add_oid(oid)
            if text.remember and n <= _CACHED_TLV_MAX:
                if len(cache) >= _CACHE_SIZE:
                    cache.clear()
                cache[tlv] = (oid, ext, 0, ())
    except IndexError:
        raise Unexpected from None
    if pos != end:
        raise Unexpected
    walk.finish()
    return walk


class _Settled(NamedTuple):
    extensions: tuple[CertExtension, ...]
    san: tuple[bytes, x509.SubjectAlternativeName, _Entry] | None  # not remembered yet


def settle_extensions(walk: _Walk, caught: list[warnings.WarningMessage]) -> _Settled:
    """Finish the extensions, raising what cryptography would, in the order it would: a
    duplicate, then its own parse errors, then a Fulcio value that cannot be read."""
    if walk.duplicate is not None:
        raise MalformedInputError(f"certificate: duplicate extension {walk.duplicate}")
    extensions, pending, failed = walk.extensions, walk.pending, walk.failed
    checked = read_by_cryptography([p[1] for p in pending]) if pending else ()
    san = None
    for (index, tlv, oid, critical), ext in zip(pending, checked, strict=True):
        if failed is not None and failed[0] < index:
            raise failed[1]
        value = ext.value
        entry: _Entry = (
            oid,
            CertExtension(oid, None, extnvalue(value).hex(), critical),
            0,
            (),
        )
        extensions[index] = entry[1]
        if isinstance(value, x509.SubjectAlternativeName):
            san = (tlv, value, entry)  # remembered once its names are read
        elif not caught and len(tlv) <= _CACHED_TLV_MAX and oid not in _FRESH_EACH_TIME:
            _remember(_ENTRIES, tlv, entry)
    if failed is not None:
        raise failed[1]
    # every None was pending (now read) or failed (raised)
    return _Settled(tuple([e for e in extensions if e is not None]), san)


def san_names(
    walk: _Walk, settled: _Settled, caught: list[warnings.WarningMessage]
) -> tuple[SubjectAltName, ...]:
    if walk.sans is not None:
        return walk.sans
    if settled.san is None:
        return ()
    tlv, value, (oid, ext, _, _) = settled.san
    sans = tuple(san_name(name) for name in value)
    if not caught and len(tlv) <= _CACHED_TLV_MAX:
        _remember(_ENTRIES, tlv, (oid, ext, _SAN, sans))
    return sans


def remembered_name(name_der: bytes) -> str | None:
    """The RFC 4514 string of a Name read before, by its DER."""
    return _NAMES.get(name_der)


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
