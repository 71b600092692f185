"""Certificates as signers, on the real Fulcio certificates of the fixtures: every field and
extension of each, against what ``openssl`` reads (``tests/x509_table.py``)."""

from __future__ import annotations

from datetime import UTC

import pytest

from monitor.entries.record import CertExtension, ChainStatus, SubjectAltName
from monitor.entries.x509 import FULCIO_EXTENSION_OIDS, FULCIO_EXTENSIONS, parse_certificate
from tests.x509_support import CERTS, REUSABLE, der_of
from tests.x509_table import (
    AKI,
    ATTEST_WORKFLOW,
    BC,
    BEACON,
    BEACON_REPO,
    BY_NAME,
    EKU,
    GH_ACTIONS,
    GH_OAUTH,
    GOOGLE,
    KU,
    PROD_INTERMEDIATE_SKI,
    SAN,
    SCT,
    SKI,
    STAGING_INTERMEDIATE_SKI,
    TABLE,
    Cert,
    fulcio,
)


def test_table_covers_every_certificate_fixture() -> None:
    assert sorted(CERTS) == sorted(BY_NAME)
    assert len(CERTS) == 21


# --- the extension table ----------------------------------------------------------------------


def test_fulcio_extension_names() -> None:
    names = {int(oid.rsplit(".", 1)[1]): name for oid, name in FULCIO_EXTENSIONS.items()}
    assert names == {
        1: "issuer-v1",
        2: "github-workflow-trigger",
        3: "github-workflow-sha",
        4: "github-workflow-name",
        5: "github-workflow-repository",
        6: "github-workflow-ref",
        8: "issuer",
        9: "build-signer-uri",
        10: "build-signer-digest",
        11: "runner-environment",
        12: "source-repository-uri",
        13: "source-repository-digest",
        14: "source-repository-ref",
        15: "source-repository-identifier",
        16: "source-repository-owner-uri",
        17: "source-repository-owner-identifier",
        18: "build-config-uri",
        19: "build-config-digest",
        20: "build-trigger",
        21: "run-invocation-uri",
        22: "source-repository-visibility-at-signing",
        23: "deployment-environment",
        24: "token-subject",
    }
    assert all(oid.startswith("1.3.6.1.4.1.57264.1.") for oid in FULCIO_EXTENSIONS)
    assert {name: oid for oid, name in FULCIO_EXTENSIONS.items()} == FULCIO_EXTENSION_OIDS


# --- every field of every real certificate ----------------------------------------------------


@pytest.mark.parametrize("row", TABLE, ids=lambda row: row.fixture)
def test_real_certificate_fields(row: Cert) -> None:
    der = der_of(row.fixture)
    signer = parse_certificate(der)
    assert signer.sans == (SubjectAltName(*row.san),)
    assert signer.issuer == row.issuer
    assert signer.serial == row.serial.lower().lstrip("0")  # an integer: no padding zeros
    assert signer.not_before == row.not_before
    assert signer.not_after == row.not_after
    assert signer.not_before.tzinfo is UTC
    assert signer.issuer_dn == row.issuer_dn
    assert signer.subject_dn == row.subject_dn
    assert signer.fingerprint == f"sha256:{row.sha256}"
    key_type, bits, curve, spki = row.key
    assert signer.key.key_type == key_type
    assert signer.key.size == bits
    assert signer.key.curve == curve
    assert signer.key.fingerprint == f"sha256:{spki}"
    assert signer.chain is ChainStatus.UNCHECKED
    assert signer.der == der


@pytest.mark.parametrize("row", TABLE, ids=lambda row: row.fixture)
def test_real_certificate_extension_order(row: Cert) -> None:
    signer = parse_certificate(der_of(row.fixture))
    assert tuple(ext.oid for ext in signer.extensions) == row.order
    critical = {ext.oid for ext in signer.extensions if ext.critical}
    assert critical == ({KU, SAN, BC} if BC in row.order else {KU, SAN})
    for ext in signer.extensions:
        assert ext.name == FULCIO_EXTENSIONS.get(ext.oid)


ATTEST_DEMO = "https://github.com/malancas/attest-demo"


def test_reusable_workflow_every_extension() -> None:
    """SAN and .1.9 name the called reusable workflow, .1.18 the caller; extnValue bytes of the
    non-Fulcio extensions as ``openssl asn1parse`` dumps them."""
    signer = parse_certificate(der_of(REUSABLE))
    san_hex = "308181867f" + ATTEST_WORKFLOW.encode().hex()
    sct_hex = (
        "047a0078007600dd3d306ac6c7113263191e1c99673702a24a5eb8de3cadff878a72802f29ee8e0000018f"
        "ac0697a8000004030047304502202715792ed1379b25eed7c31a3189de9ba9b6c75bcc68e7e450ef6d6225"
        "4ffe640221009d3d34e2329adae24dd24f290871a0f6ecf54ade5ab2cd24b8a01a5e1a6e75f9"
    )
    sha = "95baf27389e83e6a5c48f42e190d48d7abcea19e"
    assert signer.extensions == (
        CertExtension(KU, None, "03020780", critical=True),
        CertExtension(EKU, None, "300a06082b06010505070303"),
        CertExtension(SKI, None, "04144f7eb6e7dec7c977addfc22f9a800d5ee5f48e81"),
        CertExtension(AKI, None, f"30168014{PROD_INTERMEDIATE_SKI}"),
        CertExtension(SAN, None, san_hex, critical=True),
        CertExtension(fulcio(1), "issuer-v1", GH_ACTIONS),
        CertExtension(fulcio(2), "github-workflow-trigger", "workflow_dispatch"),
        CertExtension(fulcio(3), "github-workflow-sha", sha),
        CertExtension(fulcio(4), "github-workflow-name", "Build / Attest / Verify (Shared)"),
        CertExtension(fulcio(5), "github-workflow-repository", "malancas/attest-demo"),
        CertExtension(fulcio(6), "github-workflow-ref", "refs/heads/main"),
        CertExtension(fulcio(8), "issuer", GH_ACTIONS),
        CertExtension(fulcio(9), "build-signer-uri", ATTEST_WORKFLOW),
        CertExtension(
            fulcio(10), "build-signer-digest", "09b495c3f12c7881b3cc17209a327792065c1a1d"
        ),
        CertExtension(fulcio(11), "runner-environment", "github-hosted"),
        CertExtension(fulcio(12), "source-repository-uri", ATTEST_DEMO),
        CertExtension(fulcio(13), "source-repository-digest", sha),
        CertExtension(fulcio(14), "source-repository-ref", "refs/heads/main"),
        CertExtension(fulcio(15), "source-repository-identifier", "804070735"),
        CertExtension(fulcio(16), "source-repository-owner-uri", "https://github.com/malancas"),
        CertExtension(fulcio(17), "source-repository-owner-identifier", "16248153"),
        CertExtension(
            fulcio(18),
            "build-config-uri",
            f"{ATTEST_DEMO}/.github/workflows/shared.yml@refs/heads/main",
        ),
        CertExtension(fulcio(19), "build-config-digest", sha),
        CertExtension(fulcio(20), "build-trigger", "workflow_dispatch"),
        CertExtension(
            fulcio(21), "run-invocation-uri", f"{ATTEST_DEMO}/actions/runs/9228858953/attempts/1"
        ),
        CertExtension(fulcio(22), "source-repository-visibility-at-signing", "public"),
        CertExtension(SCT, None, sct_hex),
    )
    assert signer.extension("build-config-uri") == signer.extension(fulcio(18))


def fulcio_values(name: str) -> dict[str, str]:
    signer = parse_certificate(der_of(name))
    return {ext.name: ext.value for ext in signer.extensions if ext.name is not None}


def test_custom_issuer_extensions() -> None:
    workflow = (
        "https://github.com/too-legit/attest/.github/workflows/integration.yml@refs/heads/main"
    )
    sha = "283bf967fa3c591925dd25e6a6e8e781542117bf"
    assert fulcio_values("gh-cli.custom-issuer.dsse.sigstore.json") == {
        "issuer-v1": f"{GH_ACTIONS}/hammer-time",
        "github-workflow-trigger": "workflow_dispatch",
        "github-workflow-sha": sha,
        "github-workflow-name": "Attestation Integration Test",
        "github-workflow-repository": "too-legit/attest",
        "github-workflow-ref": "refs/heads/main",
        "issuer": f"{GH_ACTIONS}/hammer-time",
        "build-signer-uri": workflow,
        "build-signer-digest": sha,
        "runner-environment": "github-hosted",
        "source-repository-uri": "https://github.com/too-legit/attest",
        "source-repository-digest": sha,
        "source-repository-ref": "refs/heads/main",
        "source-repository-identifier": "851894824",
        "source-repository-owner-uri": "https://github.com/too-legit",
        "source-repository-owner-identifier": "180348046",
        "build-config-uri": workflow,
        "build-config-digest": sha,
        "build-trigger": "workflow_dispatch",
        "run-invocation-uri": "https://github.com/too-legit/attest/actions/runs/10818226125/attempts/1",
        "source-repository-visibility-at-signing": "public",
    }


def test_happy_path_v03_extensions() -> None:
    sha = "c7b3dfb335f051e1c86bda4c716fac97df62ad81"
    assert fulcio_values("conformance.happy-path-v0.3.hashedrekord.sigstore.json") == {
        "issuer-v1": GH_ACTIONS,
        "github-workflow-trigger": "workflow_dispatch",
        "github-workflow-sha": sha,
        "github-workflow-name": "Extremely dangerous OIDC beacon",
        "github-workflow-repository": "sigstore-conformance/extremely-dangerous-public-oidc-beacon",
        "github-workflow-ref": "refs/heads/main",
        "issuer": GH_ACTIONS,
        "build-signer-uri": BEACON,
        "build-signer-digest": sha,
        "runner-environment": "github-hosted",
        "source-repository-uri": BEACON_REPO,
        "source-repository-digest": sha,
        "source-repository-ref": "refs/heads/main",
        "source-repository-identifier": "632596897",
        "source-repository-owner-uri": "https://github.com/sigstore-conformance",
        "source-repository-owner-identifier": "131804563",
        "build-config-uri": BEACON,
        "build-config-digest": sha,
        "build-trigger": "workflow_dispatch",
        "run-invocation-uri": f"{BEACON_REPO}/actions/runs/8347481628/attempts/1",
        "source-repository-visibility-at-signing": "public",
    }


def test_sigstore_python_release_extensions() -> None:
    repo = "https://github.com/trailofbits/rfc8785.py"
    workflow = f"{repo}/.github/workflows/release.yml@refs/tags/v0.1.2"
    sha = "d8b4a6445f38c48b9137a8099706d9b8073146e4"
    name = "sigstore-python.bundle_v3_github.whl.hashedrekord.sigstore.json"
    assert fulcio_values(name) == {
        "issuer-v1": GH_ACTIONS,
        "github-workflow-trigger": "release",
        "github-workflow-sha": sha,
        "github-workflow-name": "release",
        "github-workflow-repository": "trailofbits/rfc8785.py",
        "github-workflow-ref": "refs/tags/v0.1.2",
        "issuer": GH_ACTIONS,
        "build-signer-uri": workflow,
        "build-signer-digest": sha,
        "runner-environment": "github-hosted",
        "source-repository-uri": repo,
        "source-repository-digest": sha,
        "source-repository-ref": "refs/tags/v0.1.2",
        "source-repository-identifier": "768213997",
        "source-repository-owner-uri": "https://github.com/trailofbits",
        "source-repository-owner-identifier": "2314423",
        "build-config-uri": workflow,
        "build-config-digest": sha,
        "build-trigger": "release",
        "run-invocation-uri": f"{repo}/actions/runs/8351058501/attempts/1",
        "source-repository-visibility-at-signing": "public",
    }


@pytest.mark.parametrize(
    ("name", "issuer"),
    [
        ("sigstore-js.bundleV03-intoto.sigstore.json", GH_OAUTH),
        ("cosign.oci-attestation.dsse.sigstore.json", GH_OAUTH),
        ("sigstore-java.PKIX_ECDSA_P384_SHA_384.hashedrekord.sigstore.json", GOOGLE),
        ("sigstore-java.PKIX_ECDSA_P521_SHA_512.hashedrekord.sigstore.json", GOOGLE),
        ("sigstore-java.PKIX_RSA_PKCS1V15_4096_SHA256.hashedrekord.sigstore.json", GOOGLE),
    ],
)
def test_email_certificate_extensions(name: str, issuer: str) -> None:
    assert fulcio_values(name) == {"issuer-v1": issuer, "issuer": issuer}


def test_email_certificate_san_extension_bytes() -> None:
    signer = parse_certificate(der_of("cosign.oci-attestation.dsse.sigstore.json"))
    assert signer.extension(SAN) == "30128110636f647940736f796c616e642e636f6d"
    assert signer.extension(SKI) == "041470f768b5896e0472387e4632df28a3e52638ef6f"
    assert signer.extension(KU) == "03020780"


def test_rekor_v2_certificate_token_subject() -> None:
    """A 2026 Google service account certificate: Fulcio now adds .1.24 (the raw ``sub``)."""
    name = "sigstore-java.bundle.dsse.rekor-v2.prod.hashedrekord-v002.sigstore.json"
    assert fulcio_values(name) == {
        "issuer-v1": GOOGLE,
        "issuer": GOOGLE,
        "token-subject": "105144618049248966177",
    }


def test_staging_sct_carries_a_leaf_index_extension() -> None:
    """The staging certificate's SCT comes from a static-CT (tiled) log: its SCT has extensions,
    so the list is longer than the prod ones (0x0481 0x83... rather than 0x047a ...)."""
    signer = parse_certificate(
        der_of("conformance.rekor2-dsse-happy-path.staging-witnessed.sigstore.json")
    )
    sct = signer.extension(SCT)
    assert sct is not None
    assert sct.startswith("0481830081007f003e607153746e1892e090b236")
    assert signer.extension(AKI) == f"30168014{STAGING_INTERMEDIATE_SKI}"


def test_unknown_extensions_of_the_test_certificate_stay_hex() -> None:
    """Extensions outside Fulcio's arc are hex of the extnValue, DER or not."""
    signer = parse_certificate(der_of("sigstore-java.entry-v2.staging.tle.json"))
    assert signer.extension("1.3.6.1.4.1.99999.42.42") == b"test value".hex()
    assert signer.extension("1.3.6.1.4.1.99999.42.43") == "0c0e" + b"test value der".hex()
    assert signer.extension(BC) == "3000"
    assert signer.extension("issuer") == "https://fakeaccounts.test.com"
