"""Certificates as signers, malformed: truncated, garbage, bad UTF-8, duplicate or
unparseable extensions, warnings of ``cryptography`` that become errors, random damage to a
real certificate, and keys (DSA, points off their curve)."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.errors import MalformedInputError
from monitor.entries.keys import dsa_allowed
from monitor.entries.record import CertificateSigner, ChainStatus
from monitor.entries.x509 import check_chain, parse_certificate, parse_certificate_pem_or_der
from tests.conftest import FIXTURES
from tests.x509_support import KEY, NOW, REUSABLE, SIGSTORE_DN, der_of, make_cert, prod_cas, unknown
from tests.x509_table import SAN, fulcio

# --- malformed input --------------------------------------------------------------------------


def test_truncated_der() -> None:
    der = der_of(REUSABLE)
    with pytest.raises(MalformedInputError, match=r"^certificate: not a DER X\.509 certificate"):
        parse_certificate(der[:-10])


@pytest.mark.parametrize(
    "data", [b"", b"\x00", b"\x30\x00", bytes(range(256)), b"\x30\x82\xff\xff" + b"\x00" * 32]
)
def test_garbage(data: bytes) -> None:
    with pytest.raises(MalformedInputError, match=r"^certificate: not a DER X\.509 certificate"):
        parse_certificate(data)


def test_a_public_key_is_not_a_certificate() -> None:
    spki = KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(MalformedInputError, match=r"^certificate: not a DER X\.509 certificate"):
        parse_certificate_pem_or_der(spki)


def test_v2_issuer_with_bad_utf8() -> None:
    der = make_cert(extensions=[unknown(fulcio(8), b"\x0c\x02\xff\xfe")])
    with pytest.raises(
        MalformedInputError,
        match=r"^certificate: extension 1\.3\.6\.1\.4\.1\.57264\.1\.8 \(issuer\): not valid UTF-8",
    ):
        parse_certificate(der)


def test_legacy_issuer_with_bad_utf8() -> None:
    der = make_cert(extensions=[unknown(fulcio(1), b"https://\xc3\x28")])
    with pytest.raises(
        MalformedInputError,
        match=r"^certificate: extension 1\.3\.6\.1\.4\.1\.57264\.1\.1 \(issuer-v1\): not valid",
    ):
        parse_certificate(der)


def test_duplicate_extension() -> None:
    der = make_cert(extensions=[unknown("1.2.3.4.5", b"a"), unknown("1.2.3.4.6", b"b")])
    twice = der.replace(bytes.fromhex("06042a030406"), bytes.fromhex("06042a030405"))
    assert twice != der
    with pytest.raises(
        MalformedInputError, match=r"^certificate: duplicate extension 1\.2\.3\.4\.5$"
    ):
        parse_certificate(twice)


def test_unparseable_san() -> None:
    der = make_cert(extensions=[unknown(SAN, b"\x30\x03\x82\x01")])
    with pytest.raises(
        MalformedInputError, match=r"^certificate: extensions cannot be parsed: .*subject_alt"
    ):
        parse_certificate(der)


def test_unsupported_san_type() -> None:
    der = make_cert(extensions=[unknown(SAN, b"\x30\x03\xa3\x01\x00")])  # x400Address
    with pytest.raises(MalformedInputError, match=r"x400Address/EDIPartyName are not supported"):
        parse_certificate(der)


def test_negative_serial_warning_becomes_an_error() -> None:
    der = make_cert(serial=1)
    version_and_serial = bytes.fromhex("a003020102020101")
    assert der.count(version_and_serial) == 1
    negative = der.replace(version_and_serial, bytes.fromhex("a0030201020201ff"))
    with pytest.raises(MalformedInputError, match=r"^certificate: Parsed a serial number which"):
        parse_certificate(negative)


def test_wrong_length_country_warning_becomes_an_error() -> None:
    """cryptography only warns about a three-letter country name; it must not escape."""
    key = ec.generate_private_key(ec.SECP256R1())
    with warnings.catch_warnings():  # building it warns too
        warnings.simplefilter("ignore")
        # the builder refuses it unless told not to check: real certificates are not so careful
        name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "USA", _validate=False)])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(5)
            .not_valid_before(now)
            .not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
    with pytest.raises(MalformedInputError, match=r"^certificate: Attribute's length must be"):
        parse_certificate(cert.public_bytes(serialization.Encoding.DER))


# --- random damage to a real certificate ------------------------------------------------------

REAL = der_of(REUSABLE)


@settings(max_examples=500, deadline=None)
@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(REAL) - 1), st.integers(0, 255)), min_size=1, max_size=6
    ),
    cut=st.integers(0, len(REAL)),
    insert=st.binary(max_size=4),
)
def test_mutations_never_escape(edits: list[tuple[int, int]], cut: int, insert: bytes) -> None:
    data = bytearray(REAL)
    for pos, byte in edits:
        data[pos] = byte
    mutated = bytes(data[:cut]) + insert + bytes(data[cut:])
    signer: CertificateSigner | None = None
    message = ""
    try:
        signer = parse_certificate(mutated)
    except MalformedInputError as e:
        message = str(e)
    if signer is None:
        assert message.startswith("certificate: ")
        return
    assert check_chain(signer, prod_cas()) in (ChainStatus.VERIFIED, ChainStatus.UNTRUSTED)


def test_certificate_with_a_dsa_key_parses_without_a_warning() -> None:
    # cryptography 51 warns when a DSA key is loaded; a log's old DSA certificates read as ever
    with dsa_allowed():
        dsa_key = serialization.load_pem_public_key(
            (FIXTURES / "keys" / "pkix_dsa2048.pem").read_bytes()
        )
    der = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(SIGSTORE_DN)
        .public_key(dsa_key)  # type: ignore[arg-type]
        .serial_number(7)
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(minutes=10))
        .sign(KEY, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        signer = parse_certificate(der)
    assert signer.key.key_type == "unknown"
    assert signer.serial == "7"


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()])
def test_certificate_key_off_its_curve_is_malformed(curve: ec.EllipticCurve) -> None:
    key = ec.generate_private_key(curve)
    der = make_cert(subject_key=key)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert parse_certificate(der).key.curve in ("P-256", "P-384")
    at = der.index(spki) + len(spki) - 1  # the point's last byte: y changes, x stays
    for flip in (1, 2, 0x80):
        bad = der[:at] + bytes([der[at] ^ flip]) + der[at + 1 :]
        with pytest.raises(MalformedInputError, match="public key cannot be read"):
            parse_certificate(bad)
