"""Certificates as signers, made to order: every kind of subject alternative name, the
issuer extensions old and new, values that are not DER, critical flags and key types."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ObjectIdentifier

from monitor.core.errors import MalformedInputError
from monitor.entries.record import CertExtension, SanType, SubjectAltName
from monitor.entries.x509 import parse_certificate
from tests.x509_support import KEY, NOW, SIGSTORE_DN, make_cert, unknown
from tests.x509_table import SAN, fulcio


def test_username_san() -> None:
    der = make_cert(
        extensions=[
            x509.SubjectAlternativeName(
                [x509.OtherName(ObjectIdentifier(fulcio(7)), b"\x0c\x05alice")]
            )
        ]
    )
    assert parse_certificate(der).sans == (SubjectAltName(SanType.USERNAME, "alice"),)


def test_username_san_wrapped_in_explicit_tag() -> None:
    value = b"\xa0\x05\x0c\x03bob"
    name = x509.OtherName(ObjectIdentifier(fulcio(7)), value)
    der = make_cert(extensions=[x509.SubjectAlternativeName([name])])
    assert parse_certificate(der).sans == (SubjectAltName(SanType.USERNAME, "bob"),)


def raw_username_san(value: bytes) -> x509.UnrecognizedExtension:
    """A SAN holding one otherName .1.7 with ``value`` inside its [0], built byte by byte
    (cryptography refuses to build most of these)."""

    def tlv(tag: int, content: bytes) -> bytes:
        assert len(content) < 0x80
        return bytes([tag, len(content)]) + content

    type_id = bytes.fromhex("060a2b0601040183bf300107")  # OID 1.3.6.1.4.1.57264.1.7
    other_name = tlv(0xA0, type_id + tlv(0xA0, value))
    return unknown(SAN, tlv(0x30, other_name))


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (
            b"\x13\x03bob",
            r"not a DER UTF8String \(DER value: expected DER tag 0x0c, got 0x13\)",
        ),  # PrintableString
        (
            b"\xa0\x05\x13\x03bob",
            r"not a DER UTF8String \(DER value: expected DER tag 0x0c, got 0x13\)",
        ),
        (
            b"\xa0\x06\x0c\x03bob\x00",
            r"not a DER UTF8String \(DER value: 1 trailing bytes after DER value\)",
        ),
        (
            b"\xa0\x05\x0c\x05bob",
            r"not a DER UTF8String \(DER value: DER value runs past the end of the data\)",
        ),
        (b"\x0c\x02\xc3\x28", r"not valid UTF-8"),
    ],
)
def test_malformed_username_san(value: bytes, why: str) -> None:
    der = make_cert(extensions=[raw_username_san(value)])
    with pytest.raises(
        MalformedInputError, match=rf"^certificate: SAN otherName {fulcio(7)}: {why}"
    ):
        parse_certificate(der)


def test_username_san_built_byte_by_byte() -> None:
    der = make_cert(extensions=[raw_username_san(b"\x0c\x05alice")])
    assert parse_certificate(der).sans == (SubjectAltName(SanType.USERNAME, "alice"),)


def test_username_san_that_is_not_one_der_value() -> None:
    """cryptography itself rejects an otherName whose [0] does not hold exactly one TLV."""
    der = make_cert(extensions=[raw_username_san(b"\x0c\x05bob")])
    with pytest.raises(MalformedInputError, match=r"^certificate: extensions cannot be parsed: "):
        parse_certificate(der)


def test_every_san_type_in_certificate_order() -> None:
    import ipaddress

    names: list[x509.GeneralName] = [
        x509.DNSName("example.com"),
        x509.RFC822Name("a@example.com"),
        x509.OtherName(ObjectIdentifier("1.2.3.4"), b"\x04\x02\xbe\xef"),
        x509.UniformResourceIdentifier("https://example.com/x"),
        x509.IPAddress(ipaddress.ip_address("2001:db8::1")),
        x509.IPAddress(ipaddress.ip_address("192.0.2.7")),
        x509.OtherName(ObjectIdentifier(fulcio(7)), b"\x0c\x01u"),
    ]
    der = make_cert(extensions=[x509.SubjectAlternativeName(names)])
    assert parse_certificate(der).sans == (
        SubjectAltName(SanType.DNS, "example.com"),
        SubjectAltName(SanType.EMAIL, "a@example.com"),
        SubjectAltName(SanType.OTHER, "1.2.3.4:0402beef"),
        SubjectAltName(SanType.URI, "https://example.com/x"),
        SubjectAltName(SanType.IP, "2001:db8::1"),
        SubjectAltName(SanType.IP, "192.0.2.7"),
        SubjectAltName(SanType.USERNAME, "u"),
    )


def test_legacy_issuer_only() -> None:
    der = make_cert(extensions=[unknown(fulcio(1), b"https://legacy.example")])
    signer = parse_certificate(der)
    assert signer.issuer == "https://legacy.example"
    assert signer.sans == ()


def test_v2_issuer_wins_over_legacy() -> None:
    der = make_cert(
        extensions=[
            unknown(fulcio(1), b"https://legacy.example"),
            unknown(fulcio(8), b"\x0c\x0ehttps://new.ex"),
        ]
    )
    assert parse_certificate(der).issuer == "https://new.ex"


def test_no_issuer() -> None:
    assert parse_certificate(make_cert()).issuer is None


def test_fulcio_value_that_is_not_der_is_kept_as_hex() -> None:
    """A raw string where a DER UTF8String belongs: kept, marked, and not used as the issuer."""
    der = make_cert(
        extensions=[
            unknown(fulcio(1), b"https://legacy.example"),
            unknown(fulcio(8), b"https://raw.example"),
            unknown(fulcio(12), b"\x0c\x7fshort"),
        ]
    )
    signer = parse_certificate(der)
    assert signer.extension("issuer") == "hex:" + b"https://raw.example".hex()
    assert signer.extension("source-repository-uri") == "hex:0c7f" + b"short".hex()
    assert signer.issuer == "https://legacy.example"


def test_extension_critical_flag_is_kept() -> None:
    builder_der = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(SIGSTORE_DN)
        .public_key(KEY.public_key())
        .serial_number(7)
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(minutes=1))
        .add_extension(unknown(fulcio(23), b"\x0c\x04prod"), critical=True)
        .sign(KEY, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    signer = parse_certificate(builder_der)
    assert signer.extensions == (
        CertExtension(fulcio(23), "deployment-environment", "prod", critical=True),
    )
    assert signer.serial == "7"


def test_ed25519_and_p256_keys() -> None:
    ed_key = ed25519.Ed25519PrivateKey.generate()
    der = make_cert(subject_key=ed_key)
    key = parse_certificate(der).key
    assert (key.key_type, key.curve, key.size) == ("ed25519", "Ed25519", 256)
    assert key.fingerprint.startswith("sha256:")
    assert len(key.fingerprint) == len("sha256:") + 64
