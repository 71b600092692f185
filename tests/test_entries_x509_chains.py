"""Certificates as signers: PEM or DER, and chains to the trusted Fulcio CAs of production
and staging (the real certificates, an impostor with Fulcio's name and key id, a self-made CA
and its validity window)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from monitor.core.errors import MalformedInputError
from monitor.entries.record import CertificateSigner, ChainStatus
from monitor.entries.x509 import (
    chain_reason,
    check_chain,
    parse_certificate,
    parse_certificate_pem_or_der,
)
from monitor.trust.root import CertificateAuthority
from tests.x509_support import (
    CERTS,
    KEY,
    REUSABLE,
    der_of,
    make_ca,
    make_cert,
    pem,
    prod_cas,
    prod_intermediate,
    staging_cas,
    unknown,
)
from tests.x509_table import (
    BY_NAME,
    FULCIO_DN,
    GH_OAUTH,
    PROD_FULCIO,
    PROD_INTERMEDIATE_SKI,
    STAGING_FULCIO,
    STAGING_INTERMEDIATE_SKI,
    fulcio,
    utc,
)

# --- PEM or DER -------------------------------------------------------------------------------


def test_pem_and_der_give_the_same_signer() -> None:
    der = der_of(REUSABLE)
    from_der = parse_certificate_pem_or_der(der)
    from_pem = parse_certificate_pem_or_der(b"subject=\n" + pem(der))
    assert from_pem == from_der
    assert from_pem.der == der


def test_other_pem_blocks_beside_one_certificate_are_ignored() -> None:
    key = KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signer = parse_certificate_pem_or_der(key + pem(der_of(REUSABLE)).replace(b"\n", b"\r\n"))
    assert signer.fingerprint == f"sha256:{BY_NAME[REUSABLE].sha256}"


def test_two_pem_blocks_are_rejected() -> None:
    data = pem(der_of(REUSABLE)) + pem(der_of("cosign.oci-attestation.dsse.sigstore.json"))
    with pytest.raises(MalformedInputError, match=r"PEM holds 2 CERTIFICATE blocks"):
        parse_certificate_pem_or_der(data)


def test_pem_without_a_certificate_is_rejected() -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    data = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(MalformedInputError, match=r"^certificate: PEM holds no CERTIFICATE block$"):
        parse_certificate_pem_or_der(data)


def test_pem_with_garbage_base64_is_rejected() -> None:
    data = b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"
    with pytest.raises(MalformedInputError, match=r"^certificate: not a PEM certificate"):
        parse_certificate_pem_or_der(data)


# --- chains -----------------------------------------------------------------------------------


def staging_only(name: str) -> bool:
    return "staging" in name


def is_fulcio(name: str) -> bool:
    return BY_NAME[name].issuer_dn == FULCIO_DN


@pytest.mark.parametrize("name", sorted(n for n in CERTS if not staging_only(n)))
def test_production_certificates_chain_to_production_fulcio(name: str) -> None:
    signer = parse_certificate(der_of(name))
    assert chain_reason(signer, prod_cas()) == (ChainStatus.VERIFIED, PROD_FULCIO)
    assert check_chain(signer, prod_cas()) is ChainStatus.VERIFIED
    status, reason = chain_reason(signer, staging_cas())
    assert status is ChainStatus.UNTRUSTED
    # staging reuses the DN: the key identifier is what tells them apart, without a signature
    assert reason == f"no Fulcio CA named {FULCIO_DN} with key identifier {PROD_INTERMEDIATE_SKI}"


def test_staging_fulcio_certificate_chains_to_staging_only() -> None:
    signer = parse_certificate(
        der_of("conformance.rekor2-dsse-happy-path.staging-witnessed.sigstore.json")
    )
    assert chain_reason(signer, staging_cas()) == (ChainStatus.VERIFIED, STAGING_FULCIO)
    assert chain_reason(signer, prod_cas()) == (
        ChainStatus.UNTRUSTED,
        f"no Fulcio CA named {FULCIO_DN} with key identifier {STAGING_INTERMEDIATE_SKI}",
    )


def test_staging_test_certificate_chains_nowhere() -> None:
    """sigstore-java's v2 staging entry was signed with a self-signed test certificate."""
    signer = parse_certificate(der_of("sigstore-java.entry-v2.staging.tle.json"))
    expected = (ChainStatus.UNTRUSTED, "no Fulcio CA named O=test certificate,CN=test")
    assert chain_reason(signer, staging_cas()) == expected
    assert chain_reason(signer, prod_cas()) == expected


def test_every_staging_fixture_is_untrusted_in_production() -> None:
    names = [n for n in CERTS if staging_only(n)]
    assert len(names) == 2
    for name in names:
        assert check_chain(parse_certificate(der_of(name)), prod_cas()) is ChainStatus.UNTRUSTED


def test_no_cas_and_no_bytes() -> None:
    signer = parse_certificate(der_of(REUSABLE))
    assert chain_reason(signer, ()) == (ChainStatus.UNTRUSTED, f"no Fulcio CA named {FULCIO_DN}")
    bare = CertificateSigner(
        sans=(),
        issuer=None,
        extensions=(),
        serial="1",
        not_before=utc("2024-01-01 00:00:00"),
        not_after=utc("2024-01-02 00:00:00"),
        issuer_dn="",
        subject_dn="",
        fingerprint="sha256:00",
        key=signer.key,
    )
    assert check_chain(bare, prod_cas()) is ChainStatus.UNTRUSTED


def test_garbage_bytes_in_a_signer_do_not_raise() -> None:
    signer = parse_certificate(der_of(REUSABLE))
    forged = dataclasses.replace(signer, der=b"\x30\x03\x02\x01\x01")
    status, reason = chain_reason(forged, prod_cas())
    assert status is ChainStatus.UNTRUSTED
    assert reason.startswith("cannot check the chain: ValueError")


def test_leaf_issued_outside_the_ca_window_is_untrusted() -> None:
    """The real intermediate, but declared valid only until 2023: a 2024 leaf does not count."""
    ca = prod_intermediate()
    expired = CertificateAuthority(ca.uri, ca.chain, ca.valid_from, utc("2023-01-01 00:00:00"))
    signer = parse_certificate(der_of(REUSABLE))
    status, reason = chain_reason(signer, [expired])
    assert status is ChainStatus.UNTRUSTED
    assert reason == (
        "issued 2024-05-24T19:14:24+00:00, outside the validity of CA https://fulcio.sigstore.dev"
    )
    assert check_chain(signer, [expired, ca]) is ChainStatus.VERIFIED


# --- self-made CAs ----------------------------------------------------------------------------


def test_impostor_with_the_fulcio_name_and_key_id_is_untrusted() -> None:
    real_ski = (
        prod_intermediate().chain[0].extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    )
    aki = x509.AuthorityKeyIdentifier(real_ski.value.digest, None, None)
    der = make_cert(
        extensions=[
            x509.SubjectAlternativeName([x509.RFC822Name("victim@example.com")]),
            aki,
            unknown(fulcio(8), b"\x0c\x1e" + GH_OAUTH.encode()),
        ]
    )
    signer = parse_certificate(der)
    assert signer.issuer_dn == FULCIO_DN
    assert signer.issuer == GH_OAUTH
    assert chain_reason(signer, prod_cas()) == (
        ChainStatus.UNTRUSTED,
        "signature does not verify with CA https://fulcio.sigstore.dev",
    )


def test_self_made_ca_verifies_and_its_window_is_enforced() -> None:
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_cert = make_ca(ca_key, utc("2025-01-01 00:00:00"), timedelta(days=365))
    ca = CertificateAuthority("https://fulcio.example", (ca_cert,), None, None)
    leaf_key = ec.generate_private_key(ec.SECP256R1())

    def leaf(start: datetime) -> CertificateSigner:
        return parse_certificate(
            make_cert(signing_key=ca_key, subject_key=leaf_key, not_before=start)
        )

    assert chain_reason(leaf(utc("2025-06-01 00:00:00")), [ca]) == (
        ChainStatus.VERIFIED,
        f"issued by {FULCIO_DN} (https://fulcio.example)",
    )
    status, reason = chain_reason(leaf(utc("2026-01-01 00:00:00")), [ca])  # after the CA expired
    assert status is ChainStatus.UNTRUSTED
    assert "exceeds" in reason
    status, reason = chain_reason(leaf(utc("2025-12-31 23:55:00")), [ca])  # ends after the CA
    assert status is ChainStatus.UNTRUSTED
    assert reason.startswith("validity 2025-12-31T23:55:00+00:00..2026-01-01T00:05:00+00:00")
    late = CertificateAuthority(ca.uri, ca.chain, utc("2025-07-01 00:00:00"), None)
    assert check_chain(leaf(utc("2025-06-01 00:00:00")), [late]) is ChainStatus.UNTRUSTED
