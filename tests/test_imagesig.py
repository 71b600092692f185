"""Image signatures and attestations against real production bundles, offline, with the
production trusted root: which verify with sigstore-python, and that a tampered copy does not."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from monitor.core.errors import TrustRootError
from monitor.imagesig import ArtifactForm, ImageArtifact, ImageVerifier, Role, Status
from monitor.imagesig.artifacts import MEDIA_BUNDLE_V03

FIXTURES = Path(__file__).parent / "fixtures"
BUNDLES = FIXTURES / "v1-bundles"
V2 = FIXTURES / "v2"
COSIGN = BUNDLES / "cosign.oci-attestation.dsse.sigstore.json"
IMAGE = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"


@pytest.fixture(scope="module")
def prod() -> ImageVerifier:
    return ImageVerifier((FIXTURES / "trust" / "trusted_root.prod.json").read_bytes())


def bundle(data: bytes) -> ImageArtifact:
    return ImageArtifact(ArtifactForm.BUNDLE, MEDIA_BUNDLE_V03, data, source="referrer")


def subject_digest(data: bytes) -> str:
    statement = json.loads(base64.b64decode(json.loads(data)["dsseEnvelope"]["payload"]))
    return "sha256:" + str(statement["subject"][0]["digest"]["sha256"])


def test_cosign_attestation_from_production_verifies(prod: ImageVerifier) -> None:
    v = prod.verify(bundle(COSIGN.read_bytes()), IMAGE)
    assert v.status is Status.VALID, v.reason
    assert v.role is Role.ATTESTATION
    assert v.predicate_type == "https://cosign.sigstore.dev/attestation/v1"
    assert v.signer is not None
    assert v.signer.sans[0].value == "cody@soyland.com"
    assert v.signer.issuer == "https://github.com/login/oauth"
    assert str(v.signer.chain) == "verified"
    assert v.entry is not None
    assert (v.entry.log_index, v.entry.kind, v.entry.integrated_time) == (
        175508996,
        "dsse",
        1740770291,
    )
    assert v.entry.log_id.hex().startswith("c0d23d6a")
    assert len(v.entry.leaf_hash) == 32
    assert len(v.entry.body_sha256) == 64


def test_cosign_attestation_for_another_image_is_refused(prod: ImageVerifier) -> None:
    v = prod.verify(bundle(COSIGN.read_bytes()), "sha256:" + "ab" * 32)
    assert v.status is Status.INVALID
    assert v.reason == f"signs {IMAGE}, not this image"


@pytest.mark.parametrize(
    "name",
    [
        "conformance.happy-path-intoto-in-dsse-v3.dsse.sigstore.json",
        "gh-cli.custom-issuer.dsse.sigstore.json",
        "gh-cli.reusable-workflow-attestation.dsse.sigstore.json",
        "sigstore-java.bundle.dsse.sigstore.json",
    ],
)
def test_production_dsse_bundles_verify_for_their_subject(prod: ImageVerifier, name: str) -> None:
    data = (BUNDLES / name).read_bytes()
    v = prod.verify(bundle(data), subject_digest(data))
    assert v.status is Status.VALID, v.reason
    assert v.role is Role.ATTESTATION


def test_production_rekor_v2_dsse_bundle_verifies_on_its_timestamp(prod: ImageVerifier) -> None:
    """Rekor v2 logs DSSE as a hashedrekord over the PAE, and gives no time: the bundle's
    RFC 3161 timestamp, from the trust root's TSA, is the verified time."""
    data = (
        V2 / "sigstore-java.bundle.dsse.rekor-v2.prod.hashedrekord-v002.sigstore.json"
    ).read_bytes()
    v = prod.verify(bundle(data), subject_digest(data))
    assert v.status is Status.VALID, v.reason
    assert v.entry is not None
    assert (v.entry.kind, v.entry.api_version, v.entry.integrated_time) == (
        "hashedrekord",
        "0.0.2",
        None,
    )
    assert v.entry.log_id.hex().startswith("cf119915")


def test_production_envelope_of_plain_text_is_no_image_signature(prod: ImageVerifier) -> None:
    data = (V2 / "sigstore-js.TLOG_DSSEV002.prod.dsse-v002.sigstore.json").read_bytes()
    v = prod.verify(bundle(data), IMAGE)
    assert v.status is Status.INVALID
    assert v.reason == "the envelope holds 'text/plain', not an in-toto statement"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        # neither promise nor timestamp: sigstore reads no time from it
        ("sigstore-python.bundle_v3_no_signed_time.hashedrekord.sigstore.json", "not a bundle"),
    ],
)
def test_production_bundles_sigstore_refuses_say_why(
    prod: ImageVerifier, name: str, reason: str
) -> None:
    v = prod.verify(bundle((BUNDLES / name).read_bytes()), IMAGE)
    assert v.status is Status.INVALID
    assert v.reason.startswith(reason), v.reason


@pytest.mark.parametrize(
    "name",
    [
        # a message signature names a blob, not an image
        "conformance.happy-path-v0.3.hashedrekord.sigstore.json",
        # a bare key: no Fulcio identity
        "conformance.managed-key.hashedrekord-pubkey.sigstore.json",
        # sigstore-python takes no time from a Rekor v1 intoto entry, so verifies none
        "sigstore-js.bundleV03-intoto.sigstore.json",
        "gh-cli.sigstore-js-2.1.0.intoto.sigstore.json",
        "sigstore-go.sigstore.js-2.0.0-provenance.intoto.sigstore.json",
    ],
)
def test_production_bundles_sigstore_cannot_judge(prod: ImageVerifier, name: str) -> None:
    v = prod.verify(bundle((BUNDLES / name).read_bytes()), IMAGE)
    assert v.status is Status.UNSUPPORTED, v.reason


def _tampered(mutate: str) -> bytes:
    doc = json.loads(COSIGN.read_bytes())
    if mutate == "payload":
        statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
        statement["predicate"] = {"tampered": True}
        doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    elif mutate == "signature":
        sig = bytearray(base64.b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"]))
        sig[-1] ^= 1
        doc["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(sig).decode()
    elif mutate == "set":
        entry = doc["verificationMaterial"]["tlogEntries"][0]
        entry["integratedTime"] = str(int(entry["integratedTime"]) + 1)
    elif mutate == "proof":
        proof = doc["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
        proof["hashes"][0] = base64.b64encode(b"\0" * 32).decode()
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        ("payload", "the signature does not verify over the payload"),
        ("signature", "the signature does not verify over the payload"),
        ("set", "the transparency-log evidence does not verify"),
        ("proof", "the transparency-log evidence does not verify"),
    ],
)
def test_tampered_production_bundle_is_invalid(
    prod: ImageVerifier, mutate: str, reason: str
) -> None:
    v = prod.verify(bundle(_tampered(mutate)), IMAGE)
    assert v.status is Status.INVALID
    assert v.reason.startswith(reason), v.reason


def test_a_root_without_ct_logs_is_refused() -> None:
    """sigstore-python verifies no certificate without a CT key: the verifier says so once."""
    root = json.loads((FIXTURES / "trust" / "trusted_root.prod.json").read_bytes())
    root["ctlogs"] = []
    with pytest.raises(TrustRootError, match="lists no CT log"):
        ImageVerifier(json.dumps(root).encode())


def test_root_with_other_ct_log_refuses_the_sct() -> None:
    root = json.loads((FIXTURES / "trust" / "trusted_root.prod.json").read_bytes())
    staging = json.loads((FIXTURES / "trust" / "trusted_root.staging.json").read_bytes())
    root["ctlogs"] = staging["ctlogs"]
    v = ImageVerifier(json.dumps(root).encode()).verify(bundle(COSIGN.read_bytes()), IMAGE)
    assert v.status is Status.INVALID
    assert "SCT" in v.reason, v.reason


def test_a_root_that_is_not_one_is_refused() -> None:
    with pytest.raises(TrustRootError):
        ImageVerifier(b'{"mediaType": "nonsense"}')


def test_oversized_and_garbage_artifacts_are_invalid(prod: ImageVerifier) -> None:
    huge = prod.verify(bundle(b"{" * (9 << 20)), IMAGE)
    assert huge.status is Status.INVALID
    assert "larger than" in huge.reason
    junk = prod.verify(bundle(b"\xff\x00not json"), IMAGE)
    assert junk.status is Status.INVALID
    assert junk.reason.startswith("not a bundle")
