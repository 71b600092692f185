"""Where a certificate's fields lie in its DER, for the direct reader (``x509_direct``), and a
stand-in certificate that holds given extensions, for ``cryptography`` to read them alone.

``read_layout`` runs only on DER that cryptography has loaded, which checked every TLV of the
certificate; it still checks what it relies on, and raises ``Unexpected`` (never
``MalformedInputError``) to hand over to the general path.
"""

from __future__ import annotations

from typing import NamedTuple

from cryptography import x509

from monitor.entries import der
from monitor.entries.x509_fields import CONTEXT_0
from monitor.entries.x509_values import Unexpected


def span(data: bytes, pos: int, tag: int) -> tuple[int, int]:
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


class Layout(NamedTuple):
    positive_serial: bool  # what cryptography warns about otherwise
    issuer: bytes  # Name TLV
    subject: bytes  # Name TLV
    spki: bytes  # SubjectPublicKeyInfo TLV
    extensions: tuple[int, int]  # the Extension TLVs lie in der[start:end]


def read_layout(cert_der: bytes) -> Layout:
    """The TBSCertificate fields the direct reader needs."""
    start, end = span(cert_der, 0, der.SEQUENCE)
    if end != len(cert_der):
        raise Unexpected
    pos, tbs_end = span(cert_der, start, der.SEQUENCE)
    if cert_der[pos] == CONTEXT_0:  # version
        pos = span(cert_der, pos, CONTEXT_0)[1]
    serial, pos = span(cert_der, pos, der.INTEGER)
    # a positive INTEGER: no sign bit, not zero (cryptography's test, on the same bytes)
    positive = cert_der[serial] < 0x80 and cert_der[serial:pos] != b"\x00"
    pos = span(cert_der, pos, der.SEQUENCE)[1]  # signature
    issuer = pos
    pos = span(cert_der, pos, der.SEQUENCE)[1]
    issuer_end = pos
    pos = span(cert_der, pos, der.SEQUENCE)[1]  # validity
    subject = pos
    pos = span(cert_der, pos, der.SEQUENCE)[1]
    subject_end = pos
    spki = pos
    pos = span(cert_der, pos, der.SEQUENCE)[1]
    spki_end = pos
    for unique_id in (0x81, 0x82):  # issuerUniqueID, subjectUniqueID
        if pos < tbs_end and cert_der[pos] == unique_id:
            pos = span(cert_der, pos, unique_id)[1]
    extensions = (pos, pos)
    if pos < tbs_end:
        inner, pos = span(cert_der, pos, 0xA3)
        ext_start, ext_end = span(cert_der, inner, der.SEQUENCE)
        if ext_end != pos:
            raise Unexpected
        extensions = (ext_start, ext_end)
    if pos != tbs_end:
        raise Unexpected
    return Layout(
        positive,
        cert_der[issuer:issuer_end],
        cert_der[subject:subject_end],
        cert_der[spki:spki_end],
        extensions,
    )


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


def read_by_cryptography(tlvs: list[bytes]) -> x509.Extensions:
    """cryptography's parse of these Extension TLVs, in a certificate that holds only them: the
    same checks, errors and objects as in the certificate they come from."""
    tbs = _tlv(der.SEQUENCE, _PROBE_HEAD + _tlv(0xA3, _tlv(der.SEQUENCE, b"".join(tlvs))))
    return x509.load_der_x509_certificate(_tlv(der.SEQUENCE, tbs + _PROBE_TAIL)).extensions
