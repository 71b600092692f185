"""The direct readers of certificate extensions (``x509_values``, and the walk of
``x509_direct`` that reads Fulcio text inline) against ``cryptography``, the reference.

What the direct readers accept must be what cryptography accepts, with the same value; what
they refuse (``Unexpected``) cryptography reads: so every hostile value either gives the same
record as the general path through cryptography's objects, or the same error. The values are
the real certificates' and mutations of them: truncated and oversized lengths, wrong tags,
lengths not in the shortest form, trailing bytes, empty lists, bytes outside ASCII or UTF-8.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager
from unittest import mock

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.core.errors import MalformedInputError
from monitor.entries import x509 as entries_x509
from monitor.entries.record import CertificateSigner, SanType, SubjectAltName
from monitor.entries.x509 import parse_certificate
from monitor.entries.x509_fields import CRYPTO_ERRORS, extnvalue, san_name
from monitor.entries.x509_layout import read_by_cryptography
from monitor.entries.x509_values import (
    Unexpected,
    check_key_identifier,
    check_sct_list,
    der_span,
    san_names,
)
from tests.x509_support import CERTS

SKID, SAN, SCT = "2.5.29.14", "2.5.29.17", "1.3.6.1.4.1.11129.2.4.2"


def der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    size = (n.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + n.to_bytes(size, "big") + content


def sct(
    *,
    version: int = 0,
    log_id: bytes = bytes(range(32)),
    timestamp: int = 1_700_000_000_000,
    extensions: bytes = b"",
    algorithms: bytes = b"\x04\x03",
    signature: bytes = b"\x30\x06\x02\x01\x01\x02\x01\x01",
) -> bytes:
    """One SCT (RFC 6962 section 3.2), without its length."""
    return (
        bytes((version,))
        + log_id
        + struct.pack("!Q", timestamp)
        + struct.pack("!H", len(extensions))
        + extensions
        + algorithms
        + struct.pack("!H", len(signature))
        + signature
    )


def sct_list(*scts: bytes, skew: int = 0) -> bytes:
    """The SCT list extension's extnValue: an OCTET STRING of the TLS list (whose length is
    ``skew`` off)."""
    listed = b"".join(struct.pack("!H", len(s)) + s for s in scts)
    return der(0x04, struct.pack("!H", max(0, len(listed) + skew)) + listed)


def real_values(oid: str) -> list[bytes]:
    """The extnValue of ``oid`` in every real certificate of the fixtures that has it."""
    out = []
    for cert_der in CERTS.values():
        cert = x509.load_der_x509_certificate(cert_der)
        for ext in cert.extensions:
            if ext.oid.dotted_string == oid:
                out.append(extnvalue(ext.value))
    assert out
    return out


# --- the reference: cryptography's reading ----------------------------------------------------


def oid_der(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = b""
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk, rest = bytes((arc & 0x7F,)), arc >> 7
        while rest:
            chunk, rest = bytes((0x80 | rest & 0x7F,)) + chunk, rest >> 7
        out += chunk
    return der(0x06, out)


def extension_tlv(oid: str, value: bytes, critical: bool = False) -> bytes:
    flag = b"\x01\x01\xff" if critical else b""
    return der(0x30, oid_der(oid) + flag + der(0x04, value))


REFUSALS: tuple[type[Exception], ...] = (*CRYPTO_ERRORS, MalformedInputError, Warning)


def theirs(oid: str, value: bytes) -> tuple[str, tuple[SubjectAltName, ...]] | None:
    """cryptography's hex of the value (as the record keeps it) and SAN names; None where it
    refuses the value."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            read = read_by_cryptography([extension_tlv(oid, value)])[0].value
            names: tuple[SubjectAltName, ...] = ()
            if isinstance(read, x509.SubjectAlternativeName):
                names = tuple(san_name(name) for name in read)
            return extnvalue(read).hex(), names
    except REFUSALS:
        return None


def ours(oid: str, value: bytes) -> tuple[str, tuple[SubjectAltName, ...]] | None:
    try:
        if oid == SAN:
            return value.hex(), san_names(value)
        (check_key_identifier if oid == SKID else check_sct_list)(value)
    except Unexpected:
        return None
    return value.hex(), ()


def agree(oid: str, value: bytes) -> bool:
    """Whether the direct reader read ``value`` (and asserts it read it as cryptography)."""
    mine = ours(oid, value)
    if mine is not None:
        assert mine == theirs(oid, value), (oid, value.hex())
    return mine is not None


# --- the readers, value by value --------------------------------------------------------------


@pytest.mark.parametrize("oid", [SKID, SAN, SCT])
def test_real_values_are_read_directly_as_cryptography_reads_them(oid: str) -> None:
    for value in real_values(oid):
        assert agree(oid, value)


def test_san_names_of_each_text_type_in_order() -> None:
    value = der(
        0x30,
        der(0x86, b"https://example.com/x")
        + der(0x81, b"someone@example.com")
        + der(0x82, b"example.com")
        + der(0x86, b""),
    )
    assert san_names(value) == (
        SubjectAltName(SanType.URI, "https://example.com/x"),
        SubjectAltName(SanType.EMAIL, "someone@example.com"),
        SubjectAltName(SanType.DNS, "example.com"),
        SubjectAltName(SanType.URI, ""),
    )
    assert agree(SAN, value)


def test_long_values_in_the_shortest_length_forms() -> None:
    uri = b"https://example.com/" + b"a" * 300
    assert agree(SAN, der(0x30, der(0x86, uri)))  # 0x82 lengths
    assert agree(SAN, der(0x30, der(0x86, uri[:150])))  # 0x81
    assert agree(SKID, der(0x04, bytes(200)))
    many = sct_list(*[sct(signature=bytes(70))] * 30)
    assert agree(SCT, many)
    assert agree(SCT, sct_list())  # an empty list: cryptography reads it, and writes it back


HOSTILE: list[tuple[str, bytes, str]] = [
    (SKID, b"", "nothing"),
    (SKID, b"\x04", "a tag without a length"),
    (SKID, b"\x04\x05abc", "a length past the end"),
    (SKID, b"\x04\x02abc", "a trailing byte"),
    (SKID, b"\x03\x02ab", "a BIT STRING"),
    (SKID, b"\x24\x02ab", "a constructed OCTET STRING"),
    (SKID, b"\x04\x81\x02ab", "a length not in the shortest form"),
    (SKID, b"\x04\x82\x00\x02ab", "a two-byte length not in the shortest form"),
    (SKID, b"\x04\x80ab\x00\x00", "an indefinite length"),
    (SKID, b"\x04\x84\x7f\xff\xff\xff", "a four-byte length past the end"),
    (SKID, b"\x04\x82\xff\xff" + bytes(10), "a two-byte length past the end"),
    (SAN, b"\x30\x00", "no name"),
    (SAN, b"\x30\x02\x86\x05", "a name past its list"),
    (SAN, der(0x30, der(0x86, b"caf\xc3\xa9")), "a name in UTF-8 beyond ASCII"),
    (SAN, der(0x30, der(0x86, b"\xff\xfe")), "a name not in UTF-8"),
    (SAN, der(0x30, der(0x87, bytes(4))), "an IP address"),
    (SAN, der(0x30, der(0xA4, der(0x30, b""))), "a directory name"),
    (SAN, der(0x30, der(0xA0, der(0x06, b"\x2b\x06") + der(0xA0, der(0x0C, b"u")))), "other"),
    (SAN, der(0x30, der(0x83, b"x")), "an X.400 address"),
    (SAN, der(0x30, der(0xA6, der(0x86, b"x"))), "a constructed URI"),
    (SAN, der(0x30, der(0x86, b"x")) + b"\x00", "a trailing byte"),
    (SAN, der(0x31, der(0x86, b"x")), "a SET"),
    (SAN, b"\x30\x81\x03\x86\x01x", "a list length not in the shortest form"),
    (SAN, b"\x30\x04\x86\x81\x01x", "a name length not in the shortest form"),
    (SAN, b"\x30\x82\xff\xff\x86\x01x", "a list length past the end"),
    (SCT, b"", "nothing"),
    (SCT, der(0x04, b""), "no list length"),
    (SCT, der(0x04, b"\x00"), "half a list length"),
    (SCT, der(0x04, b"\x00\x05\x00"), "a list length past the end"),
    (SCT, der(0x04, b"\x00\x00\x00"), "a byte after the list"),
    (SCT, der(0x04, b"\x00\x02\x00\x05"), "an SCT length past the list"),
    (SCT, der(0x04, b"\x00\x03\x00\x01\x00"), "an SCT of one byte"),
    (SCT, sct_list(sct(version=1)), "an SCT v2"),
    (SCT, sct_list(sct()[:40]), "an SCT cut in its timestamp"),
    (SCT, sct_list(sct(extensions=b"x")[:45]), "an SCT cut in its extensions"),
    (SCT, sct_list(sct(algorithms=b"\x00\x03")), "no hash algorithm"),
    (SCT, sct_list(sct(algorithms=b"\x07\x03")), "an unknown hash algorithm"),
    (SCT, sct_list(sct(algorithms=b"\x04\x00")), "an anonymous signature"),
    (SCT, sct_list(sct(algorithms=b"\x04\x04")), "an unknown signature algorithm"),
    (SCT, sct_list(sct() + b"\x00"), "a byte after the signature"),
    (SCT, sct_list(sct()[:-1]), "a signature cut short"),
    (SCT, sct_list(sct(), sct()[:-3]), "a second SCT cut short"),
    (SCT, b"\x03" + sct_list(sct())[1:], "a BIT STRING"),
    (SCT, sct_list(sct()) + b"\x00", "a trailing byte after the OCTET STRING"),
    (SCT, b"\x04\x82\x00\x04\x00\x02\x00\x00", "an OCTET STRING length not shortest"),
]


@pytest.mark.parametrize(("oid", "value", "why"), HOSTILE, ids=[h[2] for h in HOSTILE])
def test_hostile_values_are_left_to_cryptography(oid: str, value: bytes, why: str) -> None:
    assert ours(oid, value) is None, why
    theirs(oid, value)  # whatever cryptography makes of it, the general path says it


def test_spans_never_read_past_the_data() -> None:
    for data in (b"", b"\x04", b"\x04\x81", b"\x04\x82\x01", b"\x04\x81\x90", b"\x04\x83abc"):
        with pytest.raises(Unexpected):
            der_span(data, 0, 0x04)
    assert der_span(b"\x30\x81\x80" + bytes(128), 0, 0x30) == (3, 131)


def test_a_full_size_sct_list_and_a_long_san_are_read_directly() -> None:
    # 65,535 bytes of the smallest SCTs there are, and a SAN of 5,000 names
    one = sct(signature=b"")
    count = (0xFFFF - 2) // (len(one) + 2)
    value = sct_list(*[one] * count)
    assert agree(SCT, value)
    assert agree(SAN, der(0x30, der(0x82, b"a.example") * 5000))


def mutations(value: bytes) -> st.SearchStrategy[bytes]:
    """A value with bytes changed, cut, inserted or its lengths pushed by one."""
    edits = st.lists(st.tuples(st.integers(0, len(value) - 1), st.integers(0, 255)), max_size=3)
    return st.tuples(edits, st.integers(0, len(value)), st.binary(max_size=3)).map(
        lambda t: _mutated(value, *t)
    )


def _mutated(value: bytes, edits: list[tuple[int, int]], cut: int, insert: bytes) -> bytes:
    out = bytearray(value)
    for pos, byte in edits:
        out[pos] = byte
    return bytes(out[:cut]) + insert + bytes(out[cut:])


def _valued(oid: str) -> st.SearchStrategy[tuple[str, bytes]]:
    return st.sampled_from(real_values(oid)).flatmap(mutations).map(lambda v: (oid, v))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_valued(SKID), _valued(SAN), _valued(SCT)))
def test_mutated_values_read_directly_only_as_cryptography_reads_them(
    case: tuple[str, bytes],
) -> None:
    agree(*case)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.builds(
            sct,
            version=st.sampled_from([0, 0, 0, 1]),
            extensions=st.binary(max_size=4),
            algorithms=st.binary(min_size=2, max_size=2),
            signature=st.binary(max_size=80),
        ),
        max_size=3,
    ),
    st.sampled_from([0, 0, 0, -2, -1, 1, 2]),
)
def test_built_sct_lists_read_directly_only_as_cryptography_reads_them(
    scts: list[bytes], skew: int
) -> None:
    agree(SCT, sct_list(*scts, skew=skew))


# --- whole certificates: the direct reading against the general path --------------------------

KEY = ec.generate_private_key(ec.SECP256R1())
SPKI = KEY.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
)
ISSUER_DN = der(
    0x30,
    der(0x31, der(0x30, oid_der("2.5.4.10") + der(0x0C, b"sigstore.dev")))
    + der(0x31, der(0x30, oid_der("2.5.4.3") + der(0x0C, b"sigstore-intermediate"))),
)
ECDSA_SHA256 = der(0x30, oid_der("1.2.840.10045.4.3.2"))


def raw_cert(tlvs: list[bytes]) -> bytes:
    """A certificate holding these Extension TLVs as they are (duplicates too), with a P-256
    key; its signature is a stand-in, which parsing never checks."""
    tbs = der(
        0x30,
        bytes.fromhex("a00302010202021234")  # v3, serial 0x1234
        + ECDSA_SHA256
        + ISSUER_DN
        + der(0x30, der(0x17, b"240101000000Z") + der(0x17, b"240101001000Z"))
        + der(0x30, b"")
        + SPKI
        + der(0xA3, der(0x30, b"".join(tlvs))),
    )
    return der(0x30, tbs + ECDSA_SHA256 + der(0x03, b"\x00" + der(0x30, bytes(8))))


def make_cert(exts: list[tuple[str, bytes]], critical: bool = False) -> bytes:
    return raw_cert([extension_tlv(oid, value, critical) for oid, value in exts])


def general_path() -> AbstractContextManager[object]:
    """parse_certificate with the direct reader switched off: cryptography's objects only."""

    def refuse(_: bytes) -> None:
        raise Unexpected

    return mock.patch.object(entries_x509, "read_layout", refuse)


def outcome(read: Callable[[bytes], CertificateSigner], cert_der: bytes) -> object:
    try:
        return read(cert_der)
    except MalformedInputError as e:
        return str(e)


def same_as_general(cert_der: bytes) -> object:
    """parse_certificate's result (twice: caches cold, then warm) is the general path's."""
    first = outcome(parse_certificate, cert_der)
    again = outcome(parse_certificate, cert_der)
    with general_path():
        reference = outcome(parse_certificate, cert_der)
    assert first == reference
    assert again == reference
    return reference


def fulcio(n: int) -> str:
    return f"1.3.6.1.4.1.57264.1.{n}"


TEXT_VALUES = [
    der(0x0C, b"https://token.actions.githubusercontent.com"),
    der(0x0C, b"x" * 200),  # 0x81 lengths, in the extnValue too
    der(0x0C, b"y" * 127),
    der(0x0C, b"z" * 300),  # 0x82: read the general way
    b"\x0c\x81\x05hello",  # a UTF8String length not in the shortest form: kept as hex
    der(0x0C, b"caf\xc3\xa9"),
    der(0x0C, b"\xc3"),  # not UTF-8: malformed
    der(0x13, b"printable"),  # not a UTF8String: kept as hex
    der(0x0C, b"a") + b"\x00",  # a trailing byte: kept as hex
    b"\x0c\x02abcd",  # a UTF8String shorter than its extnValue: kept as hex
    b"\x0c\x05ab",  # a UTF8String longer than its extnValue: kept as hex
    b"",
    b"raw text",
    b"\xff",
]


@pytest.mark.parametrize("value", TEXT_VALUES, ids=range(len(TEXT_VALUES)))
@pytest.mark.parametrize("n", [1, 3, 8, 9, 21, 30])
@pytest.mark.parametrize("critical", [False, True])
def test_fulcio_text_read_inline_as_the_general_path(n: int, value: bytes, critical: bool) -> None:
    same_as_general(make_cert([(fulcio(n), value)], critical))


REAL_OIDS = [SKID, SAN, SCT, fulcio(1), fulcio(8), fulcio(12), fulcio(21)]
CERT_OIDS = [SKID, SAN, SCT, fulcio(1), fulcio(8), fulcio(9), fulcio(21), fulcio(40), "2.5.29.15"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(CERT_OIDS),
            st.one_of(
                st.sampled_from(TEXT_VALUES),
                st.sampled_from([v for o in REAL_OIDS for v in real_values(o)]).flatmap(mutations),
            ),
        ),
        min_size=1,
        max_size=5,
    ),
    st.booleans(),
)
def test_certificates_read_directly_as_the_general_path(
    exts: list[tuple[str, bytes]], critical: bool
) -> None:
    same_as_general(make_cert(exts, critical))


@pytest.mark.parametrize(
    "oids",
    [
        [fulcio(9), SKID, fulcio(9)],
        [SKID, SCT, SKID],
        [fulcio(3), fulcio(3)],
        [fulcio(5), fulcio(8), fulcio(8), fulcio(5)],
        [SAN, fulcio(1), SAN],
    ],
)
def test_duplicate_extensions_as_the_general_path(oids: list[str]) -> None:
    value = {SKID: der(0x04, b"ab"), SAN: der(0x30, der(0x86, b"x")), SCT: sct_list(sct())}
    cert_der = make_cert([(oid, value.get(oid, der(0x0C, b"text"))) for oid in oids])
    first_twice = next(oid for i, oid in enumerate(oids) if oid in oids[:i])
    assert same_as_general(cert_der) == f"certificate: duplicate extension {first_twice}"


def test_a_fresh_certificate_is_read_directly_in_full() -> None:
    # a Fulcio certificate's extensions, all new to the caches: the same record as cryptography's
    exts = [
        (SKID, der(0x04, bytes(range(20)))),
        (SAN, der(0x30, der(0x86, b"https://github.com/o/r/.github/workflows/w.yml@refs/heads/m"))),
        (fulcio(1), b"https://token.actions.githubusercontent.com"),
        (fulcio(3), b"0123456789abcdef0123456789abcdef01234567"),
        (fulcio(8), der(0x0C, b"https://token.actions.githubusercontent.com")),
        (fulcio(21), der(0x0C, b"https://github.com/o/r/actions/runs/1/attempts/1" * 3)),
        (SCT, sct_list(sct(signature=bytes(71)))),
    ]
    signer = same_as_general(make_cert(exts))
    assert isinstance(signer, CertificateSigner)
    assert [e.oid for e in signer.extensions] == [oid for oid, _ in exts]
    assert signer.sans[0].type is SanType.URI
    assert signer.issuer == "https://token.actions.githubusercontent.com"


@pytest.mark.parametrize("name", sorted(CERTS))
def test_real_certificates_read_directly_as_the_general_path(name: str) -> None:
    assert isinstance(same_as_general(CERTS[name]), CertificateSigner)
