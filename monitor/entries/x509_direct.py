"""The direct reader of a certificate's extensions, for ``x509.parse_certificate``.

``cryptography`` checks all of the certificate's DER when loading it, but its ``extensions``
property also builds Python objects for each of the twenty-odd Fulcio extensions, which was
most of the cost. So the extension list is read straight from the DER: the Fulcio extensions
(text), and the subject key identifier, SCT list and SAN (``x509_values``), which are new in
every certificate. The other extensions (key usages, the CA's key identifier: the same in every
Fulcio certificate) go through ``cryptography``, in a certificate holding just them, and are
remembered: the same checks, errors and values as before. What repeats from one certificate to
the next (most extension TLVs, the issuer name) is remembered by its bytes in small bounded
caches, unless ``cryptography`` warned while reading it. An extension read inline is
remembered the second time it comes, and a subject key identifier or SCT list never: what is
new in every certificate, or comes once (a run's commit, a new identity), never pushes out
what repeats. DER the direct reader does not expect raises ``Unexpected``, and the general
path (``x509_fields.build_general``) reads the certificate.

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
# Values new in every certificate (its key's identifier, its SCTs): never remembered
_FRESH_EACH_TIME = {_SKID, _SCT_LIST}

# The hashes of the extension TLVs read inline once and not remembered: a TLV is remembered
# when it comes again, so that the one-offs of production (a workflow run's commit, a new
# identity) never push out what repeats, nor fill memory. A hash that collides only has a TLV
# remembered a little early.
_SEEN_ONCE: set[int] = set()
_SEEN_ONCE_SIZE = 16384


# how the walk reads a known extension's value inline
_RAW, _UTF8, _KEY_ID, _SCTS, _SAN_NAMES = range(5)
_ROLES = {**_ISSUER_ROLES, _SAN_OID: _SAN}


class _Known(NamedTuple):
    oid: str
    name: str | None  # the Fulcio name
    read: int
    remember: bool  # whether its value may repeat from one certificate to the next
    role: int


def _known(oid: str) -> _Known:
    if oid in FULCIO_EXTENSIONS:
        read = _RAW if oid in RAW_STRING_OIDS else _UTF8
    else:
        read = {_SKID: _KEY_ID, _SCT_LIST: _SCTS, _SAN_OID: _SAN_NAMES}[oid]
    return _Known(
        oid, FULCIO_EXTENSIONS.get(oid), read, oid not in _FRESH_EACH_TIME, _ROLES.get(oid, 0)
    )


# by the OID's whole TLV (tag, length, content)
_KNOWN: dict[bytes, _Known] = {
    der_oid: _known(oid)
    for oid in [*FULCIO_EXTENSIONS, _SKID, _SCT_LIST, _SAN_OID]
    for der_oid in [bytes((der.OID, len(_oid_content(oid)))) + _oid_content(oid)]
}


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
        entry = None
        if not content.startswith(_SIGSTORE_ARC_DER):
            self.pending.append((index, tlv, oid, critical))  # cryptography reads it
        else:
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


def _content(data: bytes, pos: int, tag: int, stop: int) -> int:
    """Where the content of the TLV at ``pos`` starts, for a TLV with ``tag`` and a length in
    DER's shortest form of at most two bytes that ends at ``stop``; else -1."""
    if data[pos] != tag:
        return -1
    n = data[pos + 1]
    if n < 0x80:
        start = pos + 2
    elif n == 0x81 and data[pos + 2] >= 0x80:
        n, start = data[pos + 2], pos + 3
    elif n == 0x82 and data[pos + 2]:
        n, start = data[pos + 2] << 8 | data[pos + 3], pos + 4
    else:
        return -1
    return start if start + n == stop else -1


def _value(
    data: bytes, p: int, stop: int, read: int
) -> tuple[str, tuple[SubjectAltName, ...]] | None:
    """The value of a known extension whose extnValue starts at ``p``, as the record keeps it
    (a Fulcio extension's text, else hex), and a SAN's names; None for anything the general
    reading must read (and say what is wrong with)."""
    p = _content(data, p, der.OCTET_STRING, stop)
    if p > 0 and read == _UTF8:
        p = _content(data, p, der.UTF8_STRING, stop)
    if p < 0:
        return None
    value = data[p:stop]
    try:
        if read <= _UTF8:
            return value.decode(), ()
        if read == _SAN_NAMES:
            return value.hex(), read_san_names(value)
        (check_key_identifier if read == _KEY_ID else check_sct_list)(value)
    except (UnicodeDecodeError, Unexpected):
        return None
    return value.hex(), ()


def walk_extensions(cert_der: bytes, pos: int, end: int) -> _Walk:  # noqa: PLR0912, PLR0915
    """Read the Extension TLVs in ``cert_der[pos:end]``; raises only Unexpected.

    The hot loop of the parse, in one function (a call per extension costs as much as the
    rest of its reading): one remembered extension costs a slice and a lookup; a Fulcio text
    in the usual form a few index reads, its decoding and its ``CertExtension``; another known
    one (new in every certificate) ``_value``; anything else ``_Walk.first_sight``.
    """
    walk = _Walk()
    remembered, known, seen_once = _ENTRIES.get, _KNOWN.get, _SEEN_ONCE
    add, add_oid = walk.extensions.append, walk.oids.append
    new_ext = CertExtension
    try:
        while pos < end:
            if cert_der[pos] != 0x30:  # SEQUENCE
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
            entry = remembered(tlv)
            if entry is not None:
                add(entry[1])
                add_oid(entry[0])
                if entry[2]:
                    walk.take(entry)
                continue
            q = p + 2 + cert_der[p + 1]
            kind = known(cert_der[p:q])
            if kind is None:
                walk.first_sight(tlv)
                continue
            oid, name, read, remember, role = kind
            critical = cert_der[q] == 0x01  # BOOLEAN: DER leaves only TRUE
            if critical:
                if cert_der[q + 1] != 1 or cert_der[q + 2] != 0xFF:
                    raise Unexpected
                q += 3
            # the usual form: a short extnValue holding the text (from .1.8 on, in a short
            # UTF8String), up to the end of the extension; any other, _value reads
            m = cert_der[q + 1]
            if (
                read == _UTF8
                and m < 0x80
                and q + 2 + m == stop
                and cert_der[q + 3] + 2 == m
                and cert_der[q] == 0x04
                and cert_der[q + 2] == 0x0C
            ):
                names: tuple[SubjectAltName, ...] = ()
                try:
                    text = cert_der[q + 4 : stop].decode()
                except UnicodeDecodeError:
                    walk.first_sight(tlv)  # which says so, in the general reading's words
                    continue
            else:
                value = _value(cert_der, q, stop, read)
                if value is None:
                    walk.first_sight(tlv)
                    continue
                text, names = value
            ext = new_ext(oid, name, text, critical)
            add(ext)
            add_oid(oid)
            if role:
                walk.take((oid, ext, role, names))
            if remember and n <= _CACHED_TLV_MAX:
                # remembered the second time it comes (see _SEEN_ONCE)
                h = hash(tlv)  # kept by the bytes object since its lookup
                if h in seen_once:
                    _remember(_ENTRIES, tlv, (oid, ext, role, names))
                elif len(seen_once) < _SEEN_ONCE_SIZE:
                    seen_once.add(h)
                else:
                    seen_once.clear()
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
