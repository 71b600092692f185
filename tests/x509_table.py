"""What the real Fulcio certificates of the fixtures hold, as ``openssl`` reads them.

Every expected value below was read with the ``openssl`` command line, not with this code:
``openssl x509 -inform DER -noout -text / -serial / -dates -dateopt iso_8601 / -issuer -nameopt
RFC2253 / -fingerprint -sha256 / -ext subjectAltName``, ``openssl asn1parse`` (extension order,
criticality, extnValue bytes) and ``asn1parse -strparse`` (the UTF8String in .1.8 onward), and
``openssl x509 -pubkey | openssl pkey -pubin -outform DER | sha256sum`` (SPKI fingerprints).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from monitor.entries.record import SanType

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
