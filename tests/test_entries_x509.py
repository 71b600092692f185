"""Certificates as signers, on the real Fulcio certificates of the fixtures.

Every expected value below was read with the ``openssl`` command line, not with this code:
``openssl x509 -inform DER -noout -text / -serial / -dates -dateopt iso_8601 / -issuer -nameopt
RFC2253 / -fingerprint -sha256 / -ext subjectAltName``, ``openssl asn1parse`` (extension order,
criticality, extnValue bytes) and ``asn1parse -strparse`` (the UTF8String in .1.8 onward), and
``openssl x509 -pubkey | openssl pkey -pubin -outform DER | sha256sum`` (SPKI fingerprints).
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import textwrap
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID, ObjectIdentifier
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.errors import MalformedInputError
from monitor.entries.keys import dsa_allowed
from monitor.entries.record import (
    CertExtension,
    CertificateSigner,
    ChainStatus,
    SanType,
    SubjectAltName,
)
from monitor.entries.x509 import (
    FULCIO_EXTENSION_OIDS,
    FULCIO_EXTENSIONS,
    chain_reason,
    check_chain,
    parse_certificate,
    parse_certificate_pem_or_der,
)
from monitor.trust.root import CertificateAuthority, load_trust_root
from tests.conftest import FIXTURES, STAGING_ROOT

# --- reading the certificates out of the fixtures ---------------------------------------------


def _load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def fixture_der(path: Path) -> bytes | None:
    """The signing certificate of a bundle or v2 entry fixture, or None if it has none."""
    doc = _load_json(path)
    material = doc.get("verificationMaterial")
    if material is not None:
        if "certificate" in material:
            return base64.b64decode(material["certificate"]["rawBytes"])
        if "x509CertificateChain" in material:
            chain = material["x509CertificateChain"]["certificates"]
            return base64.b64decode(chain[0]["rawBytes"])
        return None
    if "canonicalizedBody" in doc:
        body = json.loads(base64.b64decode(doc["canonicalizedBody"]))
        verifier = body["spec"]["hashedRekordV002"]["signature"]["verifier"]
        if "x509Certificate" in verifier:
            return base64.b64decode(verifier["x509Certificate"]["rawBytes"])
    return None


def certificate_fixtures() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for sub in ("v1-bundles", "v2"):
        for path in sorted((FIXTURES / sub).glob("*.json")):
            der = fixture_der(path)
            if der is not None:
                out[path.name] = der
    return out


CERTS = certificate_fixtures()


def der_of(name: str) -> bytes:
    return CERTS[name]


@functools.cache
def prod_cas() -> tuple[CertificateAuthority, ...]:
    return load_trust_root().certificate_authorities


@functools.cache
def staging_cas() -> tuple[CertificateAuthority, ...]:
    return load_trust_root(str(STAGING_ROOT)).certificate_authorities


# --- expected values (openssl) ----------------------------------------------------------------

KU, EKU, SKI, AKI, SAN, BC = (
    "2.5.29.15",
    "2.5.29.37",
    "2.5.29.14",
    "2.5.29.35",
    "2.5.29.17",
    "2.5.29.19",
)
SCT = "1.3.6.1.4.1.11129.2.4.2"


def fulcio(n: int) -> str:
    return f"1.3.6.1.4.1.57264.1.{n}"


def github_order(last: int) -> tuple[str, ...]:
    return (
        KU,
        EKU,
        SKI,
        AKI,
        SAN,
        *map(fulcio, range(1, 7)),
        *map(fulcio, range(8, last + 1)),
        SCT,
    )


GITHUB_ORDER = github_order(22)
EMAIL_ORDER = (KU, EKU, SKI, AKI, SAN, fulcio(1), fulcio(8), SCT)

FULCIO_DN = "CN=sigstore-intermediate,O=sigstore.dev"
PROD_FULCIO = f"issued by {FULCIO_DN} (https://fulcio.sigstore.dev)"
STAGING_FULCIO = f"issued by {FULCIO_DN} (https://fulcio.sigstage.dev)"
PROD_INTERMEDIATE_SKI = "dfd3e9cf56241196f9a8d8e92855a2c62e18643f"
STAGING_INTERMEDIATE_SKI = "718630a6147c626ff9f7d6f4051a7f5fffeb6fac"

GH_ACTIONS = "https://token.actions.githubusercontent.com"
GH_OAUTH = "https://github.com/login/oauth"
GOOGLE = "https://accounts.google.com"
GOOGLE_SA = "untrusted-sa@sigstore-conformance.iam.gserviceaccount.com"
BEACON_REPO = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon"
BEACON = f"{BEACON_REPO}/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
SIGSTORE_JS_RELEASE = (
    "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main"
)
ATTEST_WORKFLOW = (
    "https://github.com/github/artifact-attestations-workflows/.github/workflows/attest.yml"
    "@09b495c3f12c7881b3cc17209a327792065c1a1d"
)


def utc(text: str) -> datetime:
    """A UTC time written as openssl -dateopt iso_8601 prints it, without the Z."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Cert(NamedTuple):
    fixture: str
    san: tuple[SanType, str]
    issuer: str
    serial: str  # as openssl -serial prints it
    not_before: datetime
    not_after: datetime
    sha256: str
    key: tuple[str, int, str | None, str]  # type, bits, curve, sha256 of the DER SPKI
    order: tuple[str, ...]
    issuer_dn: str = FULCIO_DN
    subject_dn: str = ""  # Fulcio leaves the subject empty


TABLE = [
    Cert(
        "conformance.happy-path-intoto-in-dsse-v3.dsse.sigstore.json",
        (SanType.URI, BEACON),
        GH_ACTIONS,
        "73B8A61FB654922066090EE17280B49A8CA9788D",
        utc("2024-12-16 18:42:56"),
        utc("2024-12-16 18:52:56"),
        "08e159b42a87f014db34b13c5b0ad2ad9861e787755eaf6ff8f2504c99ad2054",
        ("ecdsa", 256, "P-256", "665519ef61ed9f4b1c429ffb5aaea629b22a3914cedcad6c4e7938b9b6ecf743"),
        GITHUB_ORDER,
    ),
    Cert(
        "conformance.happy-path-v0.1.hashedrekord.sigstore.json",
        (SanType.URI, BEACON),
        GH_ACTIONS,
        "04F5ACE0E3CDD64B5ED2650C199AD9EA8CCC5519",
        utc("2023-07-12 15:56:35"),
        utc("2023-07-12 16:06:35"),
        "1cfaecf4c0395b697938da83feee326b931e5a000747666cb8e1e54c6e1c0262",
        ("ecdsa", 256, "P-256", "016ce4c6150fe49709d4eee99b2d0c19603020bfaf04f0e136ae563c4625cebe"),
        github_order(21),  # July 2023: before Fulcio added .1.22
    ),
    Cert(
        "conformance.happy-path-v0.3.hashedrekord.sigstore.json",
        (SanType.URI, BEACON),
        GH_ACTIONS,
        "68BFEDB264131E4DB59ADD54BA4FB0EDABC3073E",
        utc("2024-03-19 17:26:26"),
        utc("2024-03-19 17:36:26"),
        "1d14e1e52767b3ddff7895038b50e680a06f6bc61a50634f51612dba9d5f27b8",
        ("ecdsa", 256, "P-256", "392b86a3e7fc2910fe9b678fe215f479d5705ee906cb6db72cf28a176be931d8"),
        GITHUB_ORDER,
    ),
    Cert(
        "conformance.rekor2-dsse-happy-path.staging-witnessed.sigstore.json",
        (SanType.URI, BEACON),
        GH_ACTIONS,
        "78CDCD952CE21AAC8BF5E648EB4A19C4B6FDCDA8",
        utc("2026-05-13 19:23:32"),
        utc("2026-05-13 19:33:32"),
        "5a17fdb09e53028ac246d31ea83ff4070454040d43c44b48f89b9697c0924116",
        ("ecdsa", 256, "P-256", "a8188d0dc7fde5887fa6ed31b1fa41b79f6edc26e2150655444454f2518c9a82"),
        GITHUB_ORDER,
    ),
    Cert(
        "cosign.oci-attestation.dsse.sigstore.json",
        (SanType.EMAIL, "cody@soyland.com"),
        GH_OAUTH,
        "1767BE0A2D18B0B9CF6855249DB343B5472A5E5D",
        utc("2025-02-28 19:18:11"),
        utc("2025-02-28 19:28:11"),
        "dec0b1e2104dc7cbdcf47f1e05ee98850bec08dea46a4c5d5c18976e6c735dce",
        ("ecdsa", 256, "P-256", "cc8c6a96d22bd6cad60b2ef4dd2df2f1f95eaf8f13526f82d2fdf89c725af84b"),
        EMAIL_ORDER,
    ),
    Cert(
        "gh-cli.custom-issuer.dsse.sigstore.json",
        (
            SanType.URI,
            "https://github.com/too-legit/attest/.github/workflows/integration.yml@refs/heads/main",
        ),
        f"{GH_ACTIONS}/hammer-time",
        "389A78E5CF4CB8D4510EB317ACABF21E593E4552",
        utc("2024-09-11 19:19:03"),
        utc("2024-09-11 19:29:03"),
        "c07179933908e0fa6087ba7b10e1b2fdd81d6ce0c180b1f3cf09997988fd73ea",
        ("ecdsa", 256, "P-256", "5ae59e3572066e9f84c2f2c42adf0ea63b28988811bd7b3fcadd0ec6a8039b9c"),
        GITHUB_ORDER,
    ),
    Cert(
        "gh-cli.reusable-workflow-attestation.dsse.sigstore.json",
        (SanType.URI, ATTEST_WORKFLOW),
        GH_ACTIONS,
        "3E2D699D1A79BFF2F5662584D66F61E66045882F",
        utc("2024-05-24 19:14:24"),
        utc("2024-05-24 19:24:24"),
        "8e33f5623ec9982b5c1336b4bce4598a6dae5d2f0cdae36f06d06b850c112911",
        ("ecdsa", 256, "P-256", "c7087836703be23be63e36017bae68a2602faf79b1393acdc301778cc33ee1e4"),
        GITHUB_ORDER,
    ),
    Cert(
        "gh-cli.sigstore-js-2.1.0.intoto.sigstore.json",
        (SanType.URI, SIGSTORE_JS_RELEASE),
        GH_ACTIONS,
        "0892E2A52B74F4A2C57342587EE0EB49A9FFFCBB",
        utc("2023-08-29 15:40:23"),
        utc("2023-08-29 15:50:23"),
        "280f0c828ea6394243268b773ace01d4f99670d69934420646e49fd4d4386444",
        ("ecdsa", 256, "P-256", "2bc55c2a996e092989a59f74837e72937ccf78bf0076f8449a97267b30129404"),
        GITHUB_ORDER,
    ),
    Cert(
        "sigstore-go.sigstore.js-2.0.0-provenance.intoto.sigstore.json",
        (SanType.URI, SIGSTORE_JS_RELEASE),
        GH_ACTIONS,
        "7DDFF914DF3C117E1BC29EDCED0E59ACE5E0470E",
        utc("2023-08-18 16:05:35"),
        utc("2023-08-18 16:15:35"),
        "5e38b9a130e5bce07939025f51c1998f0bcbddd9368f35c7677bf6d94c25dc0e",
        ("ecdsa", 256, "P-256", "ff6c05ff7aeab3d08909fe07d9806735f169a4428c93c9d86cb25a29ab9f473e"),
        GITHUB_ORDER,
    ),
    Cert(
        "sigstore-java.PKIX_ECDSA_P384_SHA_384.hashedrekord.sigstore.json",
        (SanType.EMAIL, GOOGLE_SA),
        GOOGLE,
        "3DFB466A8BE39B1A9240888923AD259B4F5B850F",
        utc("2026-05-26 14:22:02"),
        utc("2026-05-26 14:32:02"),
        "de48d1c7a8bf411284248981ba856354c9bc5ce4f04a89e61a7066e3f71873bc",
        ("ecdsa", 384, "P-384", "1ef04c1f9829eaec03dc53ca70c171f43e75a8831dfe4c8ae8a0123c0f09ad7d"),
        EMAIL_ORDER,
    ),
    Cert(
        "sigstore-java.PKIX_ECDSA_P521_SHA_512.hashedrekord.sigstore.json",
        (SanType.EMAIL, GOOGLE_SA),
        GOOGLE,
        "1F3470868F81643E2E28C349A9C4621F9D133BC7",
        utc("2026-05-26 14:22:04"),
        utc("2026-05-26 14:32:04"),
        "dc35e16c15d8d9be97d644f9469d54b5e14ffdc1a0f04a35a6906c3a558b6a6a",
        ("ecdsa", 521, "P-521", "59835e56eaeea60c3575425a3adb224cc057bc6a7c21c59e9bba260c9ba8dbb8"),
        EMAIL_ORDER,
    ),
    Cert(
        "sigstore-java.PKIX_RSA_PKCS1V15_4096_SHA256.hashedrekord.sigstore.json",
        (SanType.EMAIL, GOOGLE_SA),
        GOOGLE,
        "2A486410C3D74EDF6CA1B0BF1512FBB32542F9AD",
        utc("2026-05-26 14:21:59"),
        utc("2026-05-26 14:31:59"),
        "2f76c17fd0b2b0a393a2c6bc3eb198a682ddb3af2f700a9a2f66ada10d51b2ed",
        ("rsa", 4096, None, "f0486879b0c89b6eadda662b9eda0bed344b4eb4d17b71fcf58848616a31e2c7"),
        EMAIL_ORDER,
    ),
    Cert(
        "sigstore-java.bundle.dsse.rekor-v2.prod.hashedrekord-v002.sigstore.json",
        (SanType.EMAIL, GOOGLE_SA),
        GOOGLE,
        "075FAAAF2DBCECA4EB7DE68545A8EA8A8FB2F5FC",
        utc("2026-06-03 19:23:26"),
        utc("2026-06-03 19:33:26"),
        "f18809e1a1b6fed2244457bc4e4f9760097f750127ceae2b091c4f0a86e972db",
        ("ecdsa", 256, "P-256", "a657a0f0d03911fe641d214ab6458a3b900d6cc6d6965d21efbbc4e873fffa22"),
        (KU, EKU, SKI, AKI, SAN, fulcio(1), fulcio(8), fulcio(24), SCT),
    ),
    Cert(
        "sigstore-java.bundle.dsse.sigstore.json",
        (
            SanType.URI,
            "https://github.com/loosebazooka/aa-test/.github/workflows/provenance.yaml@refs/heads/main",
        ),
        GH_ACTIONS,
        "112CF97DB52AC6CD959078369AF612F05A8D5ADB",
        utc("2024-11-20 20:43:45"),
        utc("2024-11-20 20:53:45"),
        "ff5d0de9402be26216f47a1cb7c9c79e0af4b8b94a17edbbb2efb05d5bba48d0",
        ("ecdsa", 256, "P-256", "d37eed04451d69c393e9f78a3f414796ac08df26fe1ff76f412670f3b3d10dd8"),
        GITHUB_ORDER,
    ),
    Cert(
        # not a Fulcio certificate: sigstore-java's self-signed test certificate, logged to staging
        "sigstore-java.entry-v2.staging.tle.json",
        (SanType.EMAIL, "test@test.com"),
        "https://fakeaccounts.test.com",
        "019764ED97AC",
        utc("2025-06-12 16:16:21"),
        utc("2025-06-12 16:36:21"),
        "8d92ae8aba80b6d75ad1fcf692448a2a6c9fea6e40a303c405115fa325da87e0",
        ("ecdsa", 256, "P-256", "d59d8703e4f26cbd3e9c6de97a020c671d0f4ba6428169697d69ce1e8ba266b0"),
        (
            SKI,
            AKI,
            KU,
            EKU,
            BC,
            SAN,
            fulcio(1),
            fulcio(8),
            "1.3.6.1.4.1.99999.42.42",
            "1.3.6.1.4.1.99999.42.43",
        ),
        issuer_dn="O=test certificate,CN=test",
        subject_dn="O=test certificate,CN=test",
    ),
    Cert(
        "sigstore-js.TLOG_DSSEV002.prod.dsse-v002.sigstore.json",
        (SanType.EMAIL, "brian@dehamer.com"),
        GH_OAUTH,
        "2408FA3FFA6FBCD03334E5C169673CE2D5DE804A",
        utc("2025-12-11 19:36:08"),
        utc("2025-12-11 19:46:08"),
        "d2cf1446b14e8a22001f1479636f2a1f7a40726f60c6f80c70ef02e412918737",
        ("ecdsa", 256, "P-256", "d043b841d054b55595c3a7922c8b3caa5ea9bcf1de5c90ae4a3d0477818b2324"),
        EMAIL_ORDER,
    ),
    Cert(
        "sigstore-js.TLOG_HASHEDREKORDV002.prod.hashedrekord-v002.sigstore.json",
        (SanType.EMAIL, "brian@dehamer.com"),
        GH_OAUTH,
        "196B2A70ED5548402A65E0142C02F06B222A5332",
        utc("2025-12-14 02:04:39"),
        utc("2025-12-14 02:14:39"),
        "3403b4762a73b900bcb31663bf8fc54f0cdc47e84433fb6d4a1dda9c94dff343",
        ("ecdsa", 256, "P-256", "316bc733d37fd657efe0fedde0ec938a269a0770bdb60ab26330d8e6284652e1"),
        EMAIL_ORDER,
    ),
    Cert(
        "sigstore-js.bundleV03-dsse.sigstore.json",
        (SanType.EMAIL, "brian@dehamer.com"),
        GH_OAUTH,
        "606D24ACA7E9C600328857E91B0A26E9957C82FB",
        utc("2023-07-12 15:50:42"),
        utc("2023-07-12 16:00:42"),
        "7e148abaf163ee1c613f92941602a9eb63dd4e4276b37edf99ab87934bcba8c8",
        ("ecdsa", 256, "P-256", "b6b63781658eada9fb00d3f5e525a024eedfc8ec78b6e9cbdcc595bf57d643b8"),
        EMAIL_ORDER,
    ),
    Cert(
        "sigstore-js.bundleV03-intoto.sigstore.json",
        (SanType.EMAIL, "brian@dehamer.com"),
        GH_OAUTH,
        "7304BB10952490944B5EDA74F47165F5A2380058",
        utc("2023-07-12 15:34:37"),
        utc("2023-07-12 15:44:37"),
        "e5dc45f7428d3e17620e00024d1ac2a66e641fd5f384b59bad032455414d3324",
        ("ecdsa", 256, "P-256", "cfa1d5806f3692df8efe3a7c9d79f198bfefe0f6a96c5f6f2974614f7fc701ed"),
        EMAIL_ORDER,
    ),
    Cert(
        "sigstore-python.bundle_v3_github.whl.hashedrekord.sigstore.json",
        (
            SanType.URI,
            "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2",
        ),
        GH_ACTIONS,
        "336F5BBD892B0CA9C15599957A5A1350C959A8D6",
        utc("2024-03-19 22:41:15"),
        utc("2024-03-19 22:51:15"),
        "3bdbfb9fe7a9377878b538dfb2ec6af283d51e243629fa667e360a06b62f63c2",
        ("ecdsa", 256, "P-256", "a68bb9531942c2de74e63657568b264c463daa91b61fe944d5b355a30e9fbb6d"),
        GITHUB_ORDER,
    ),
    Cert(
        "sigstore-python.bundle_v3_no_signed_time.hashedrekord.sigstore.json",
        (SanType.EMAIL, "william@yossarian.net"),
        GH_OAUTH,
        "5E028836763BADB4F98079A3F727A26571A0DEB9",
        utc("2024-12-10 21:41:25"),
        utc("2024-12-10 21:51:25"),
        "5b7916c78cd1cbb1368fdf11db5a8dd4cdeb9e940a694bbcc745a7d1fa778b09",
        ("ecdsa", 256, "P-256", "dfd716939dd62263a76e6da61884153b7bfc80aac7c6156f901fbdbe400bb251"),
        EMAIL_ORDER,
    ),
]

BY_NAME = {row.fixture: row for row in TABLE}


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


REUSABLE = "gh-cli.reusable-workflow-attestation.dsse.sigstore.json"
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


# --- PEM or DER -------------------------------------------------------------------------------


def pem(der: bytes) -> bytes:
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n".encode()


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


def prod_intermediate() -> CertificateAuthority:
    (ca,) = [ca for ca in prod_cas() if ca.valid_until is None]
    return ca


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


# --- self-made certificates -------------------------------------------------------------------

SIGSTORE_DN = x509.Name(
    [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sigstore.dev"),
        x509.NameAttribute(NameOID.COMMON_NAME, "sigstore-intermediate"),
    ]
)
NOW = datetime.now(UTC).replace(microsecond=0)
KEY = ec.generate_private_key(ec.SECP256R1())


def unknown(oid: str, value: bytes) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(ObjectIdentifier(oid), value)


def make_cert(
    *,
    extensions: Sequence[x509.ExtensionType] = (),
    issuer: x509.Name = SIGSTORE_DN,
    signing_key: ec.EllipticCurvePrivateKey = KEY,
    subject_key: Any = None,
    not_before: datetime = NOW,
    lifetime: timedelta = timedelta(minutes=10),
    serial: int = 1,
    subject: x509.Name | None = None,
) -> bytes:
    """A DER certificate; ``KEY`` signs unless ``signing_key`` is given."""
    public = (subject_key or signing_key).public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject or x509.Name([]))
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_before + lifetime)
    )
    for ext in extensions:
        builder = builder.add_extension(ext, critical=False)
    return builder.sign(signing_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def make_ca(
    key: ec.EllipticCurvePrivateKey, not_before: datetime, lifetime: timedelta
) -> x509.Certificate:
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    der = make_cert(
        extensions=[x509.BasicConstraints(ca=True, path_length=0), ski],
        subject=SIGSTORE_DN,
        signing_key=key,
        not_before=not_before,
        lifetime=lifetime,
    )
    return x509.load_der_x509_certificate(der)


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
