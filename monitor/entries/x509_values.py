"""Direct readers of the three extension values that are new in every Fulcio certificate: the
subject key identifier, the SCT list and the subject alternative name.

Each accepts only values that ``cryptography`` (51) reads without error and writes back byte
for byte (so that the record's hex of the value is the same), and gives what the record takes
from cryptography's objects. Anything else, however harmless, raises ``Unexpected``: the value
is then read by cryptography, whose errors and objects are the reference. Every read is bounded
by the value's length: a length that runs past the value, a wrong tag, a length not in the
shortest form, trailing bytes or an empty name list all raise ``Unexpected``.
"""

from __future__ import annotations

from monitor.entries.record import SanType, SubjectAltName


class Unexpected(Exception):
    """A value (or DER) the direct readers do not handle: cryptography reads it."""


_OCTET_STRING, _SEQUENCE = 0x04, 0x30


def der_span(data: bytes, pos: int, tag: int) -> tuple[int, int]:
    """Where the content of the DER TLV at ``pos`` starts and ends. The TLV must have ``tag``,
    a definite length in its shortest form of at most two bytes, and lie within ``data``."""
    if pos + 2 > len(data) or data[pos] != tag:
        raise Unexpected
    n = data[pos + 1]
    if n < 0x80:
        start = pos + 2
    elif n == 0x81 and pos + 3 <= len(data) and data[pos + 2] >= 0x80:
        n, start = data[pos + 2], pos + 3
    elif n == 0x82 and pos + 4 <= len(data) and data[pos + 2]:
        n, start = data[pos + 2] << 8 | data[pos + 3], pos + 4
    else:
        raise Unexpected
    if start + n > len(data):
        raise Unexpected
    return start, start + n


def _only(value: bytes, tag: int) -> tuple[int, int]:
    """The content of the one TLV that makes up all of ``value``."""
    start, end = der_span(value, 0, tag)
    if end != len(value):
        raise Unexpected
    return start, end


def check_key_identifier(value: bytes) -> None:
    """A SubjectKeyIdentifier extnValue: one OCTET STRING (cryptography's reading writes it
    back as it was)."""
    _only(value, _OCTET_STRING)


# RFC 6962 section 3.2: version (v1 = 0), log id, timestamp, then the extensions' length
_SCT_FIXED = 1 + 32 + 8
_SCT_HASHES = range(1, 7)  # the TLS HashAlgorithm values cryptography accepts (md5..sha512)
_SCT_SIGNATURES = range(1, 4)  # rsa, dsa, ecdsa


def _u16(data: bytes, pos: int, end: int) -> int:
    if pos + 2 > end:
        raise Unexpected
    return data[pos] << 8 | data[pos + 1]


def check_sct_list(value: bytes) -> None:
    """A SignedCertificateTimestampList extnValue (RFC 6962 section 3.3) as cryptography reads
    it, SCT by SCT: the list and each SCT must end exactly where their lengths say."""
    start, end = _only(value, _OCTET_STRING)
    pos = start + 2
    if pos + _u16(value, start, end) != end:
        raise Unexpected
    while pos < end:
        size = _u16(value, pos, end)
        pos += 2
        sct_end = pos + size
        if sct_end > end or size < _SCT_FIXED + 2 or value[pos]:
            raise Unexpected  # truncated, or not v1
        p = pos + _SCT_FIXED
        p += 2 + _u16(value, p, sct_end)  # the extensions
        if p + 2 > sct_end or value[p] not in _SCT_HASHES or value[p + 1] not in _SCT_SIGNATURES:
            raise Unexpected
        if p + 4 + _u16(value, p + 2, sct_end) != sct_end:
            raise Unexpected  # the signature, the last field, must end the SCT
        pos = sct_end


# GeneralName CHOICE tags read here: [1] rfc822Name, [2] dNSName, [6] uniformResourceIdentifier,
# each an IA5String cryptography takes as it is (ASCII here; anything else it reads)
_TEXT_NAMES = {0x81: SanType.EMAIL, 0x82: SanType.DNS, 0x86: SanType.URI}


def san_names(value: bytes) -> tuple[SubjectAltName, ...]:
    """The names of a SubjectAltName extnValue that holds only e-mail addresses, DNS names and
    URIs in ASCII: a SEQUENCE of at least one of them."""
    pos, end = _only(value, _SEQUENCE)
    if pos == end:
        raise Unexpected  # cryptography asks for at least one name
    names: list[SubjectAltName] = []
    while pos < end:
        san_type = _TEXT_NAMES.get(value[pos])
        if san_type is None:
            raise Unexpected
        start, pos = der_span(value, pos, value[pos])
        text = value[start:pos]
        if not text.isascii():
            raise Unexpected
        names.append(SubjectAltName(san_type, text.decode("ascii")))
    return tuple(names)
