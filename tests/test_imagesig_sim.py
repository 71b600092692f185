"""Image signatures and attestations made by the simulator (its CA with embedded SCTs, its
Rekor v1 log), verified against the simulator's trusted root: each form, each way one fails."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from typing import Any

import pytest

from monitor.core.errors import MalformedInputError
from monitor.imagesig import (
    ArtifactForm,
    ImageArtifact,
    ImageVerifier,
    Role,
    Status,
    artifact_from_layer,
    form_for,
    inclusion_proof_from_v1,
)
from monitor.imagesig.artifacts import (
    ANNOTATION_BUNDLE,
    ANNOTATION_SIGNATURE,
)
from monitor.imagesig.judge import Expectation, Require
from monitor.sim.ca import SimCA
from monitor.sim.ct import SimCTLog
from monitor.sim.images import SLSA_PROVENANCE, ImageSigner
from tests.imagesig_support import EXPECT, IMAGE, OTHER, OURS, REF, Sim, check, sim_world

sim = pytest.fixture(scope="module")(sim_world)


def test_legacy_signature_by_the_expected_identity(sim: Sim) -> None:
    made = sim.signer.signature(IMAGE, OURS, REF)
    v = check(sim, made.artifact, made.log_index)
    assert v.status is Status.VALID, v.reason
    assert v.role is Role.SIGNATURE
    assert v.form is ArtifactForm.SIMPLE_SIGNING
    assert v.signer is not None
    assert v.signer.sans[0].value == OURS.san_uri
    assert v.signer.extension("source-repository-uri") == "https://github.com/acme/app"
    assert v.entry is not None
    assert v.entry.log_index == made.log_index
    assert v.entry.kind == "hashedrekord"
    assert v.entry.body == sim.signer.log.entry(made.log_index).body
    assert v.subjects[0].name == REF


def test_legacy_signature_without_its_proof_is_unproven(sim: Sim) -> None:
    made = sim.signer.signature(IMAGE, OURS, REF)
    v = sim.verifier.verify(made.artifact, IMAGE)
    assert v.status is Status.UNPROVEN
    assert v.entry is not None
    assert v.entry.log_index == made.log_index


def test_legacy_attestation(sim: Sim) -> None:
    made = sim.signer.attestation(IMAGE, OURS, REF)
    v = check(sim, made.artifact, made.log_index)
    assert v.status is Status.VALID, v.reason
    assert (v.role, v.predicate_type, v.form) == (
        Role.ATTESTATION,
        SLSA_PROVENANCE,
        ArtifactForm.DSSE,
    )
    assert v.entry is not None
    assert v.entry.kind == "dsse"


def test_bundle_cosign_sign_counts_as_signature(sim: Sim) -> None:
    made = sim.signer.bundle(IMAGE, OURS, REF)
    v = sim.verifier.verify(made.artifact, IMAGE)  # a bundle carries its own proof
    assert v.status is Status.VALID, v.reason
    assert v.role is Role.SIGNATURE
    assert v.predicate_type == "https://sigstore.dev/cosign/sign/v1"


def test_bundle_slsa_is_an_attestation(sim: Sim) -> None:
    made = sim.signer.bundle(IMAGE, OURS, REF, predicate_type=SLSA_PROVENANCE)
    v = sim.verifier.verify(made.artifact, IMAGE)
    assert v.status is Status.VALID, v.reason
    assert v.role is Role.ATTESTATION


@pytest.mark.parametrize("form", ["signature", "attestation", "bundle"])
def test_signed_for_another_digest(sim: Sim, form: str) -> None:
    made = getattr(sim.signer, form)(OTHER, OURS, REF)
    v = check(sim, made.artifact, made.log_index, IMAGE)
    assert v.status is Status.INVALID
    assert v.reason == f"signs {OTHER}, not this image"


def _with(artifact: ImageArtifact, **annotations: str) -> ImageArtifact:
    return dataclasses.replace(artifact, annotations={**artifact.annotations, **annotations})


def test_wrong_payload(sim: Sim) -> None:
    made = sim.signer.signature(IMAGE, OURS, REF)
    payload = made.artifact.payload.replace(REF.encode(), b"registry.sim/acme/evil")
    v = check(sim, dataclasses.replace(made.artifact, payload=payload), made.log_index)
    assert v.status is Status.INVALID
    assert v.reason == "the signature does not verify over the payload"


def test_signature_of_another_payload(sim: Sim) -> None:
    first = sim.signer.signature(IMAGE, OURS, REF)
    second = sim.signer.signature(IMAGE, OURS, REF + "2")
    swapped = _with(
        second.artifact, **{ANNOTATION_SIGNATURE: first.artifact.annotations[ANNOTATION_SIGNATURE]}
    )
    v = check(sim, swapped, second.log_index)
    assert v.status is Status.INVALID
    assert "does not verify over the payload" in v.reason


def test_certificate_not_from_the_trust_roots_ca(sim: Sim) -> None:
    rogue = ImageSigner(sim.signer.log, sim.signer.log_id, SimCA.create(999), sim.signer.ct)
    made = rogue.signature(IMAGE, OURS, REF)
    v = check(sim, made.artifact, made.log_index)
    assert v.status is Status.INVALID
    assert v.reason.startswith("the certificate does not chain to the trust root's Fulcio CAs")


def test_sct_from_a_ct_log_the_root_does_not_list(sim: Sim) -> None:
    ca = sim.signer.ca
    rogue = ImageSigner(sim.signer.log, sim.signer.log_id, ca, SimCTLog.create(999))
    made = rogue.bundle(IMAGE, OURS, REF)
    v = sim.verifier.verify(made.artifact, IMAGE)
    assert v.status is Status.INVALID
    assert v.reason.startswith("the certificate's SCT does not verify"), v.reason


def test_sim_root_whose_ct_log_is_not_valid_yet_verifies_nothing(sim: Sim) -> None:
    made = sim.signer.bundle(IMAGE, OURS, REF)
    ct = json.loads(json.dumps(sim.root["ctlogs"][0]))
    ct["publicKey"]["validFor"]["start"] = "2099-01-01T00:00:00Z"
    verifier = ImageVerifier(json.dumps({**sim.root, "ctlogs": [ct]}).encode())
    v = verifier.verify(made.artifact, IMAGE)
    assert v.status is Status.INVALID
    assert v.reason.startswith("the trust root lists no CT log valid now"), v.reason


def test_broken_set(sim: Sim) -> None:
    made = sim.signer.signature(IMAGE, OURS, REF)
    doc = json.loads(made.artifact.annotations[ANNOTATION_BUNDLE])
    doc["Payload"]["integratedTime"] += 1
    v = check(sim, _with(made.artifact, **{ANNOTATION_BUNDLE: json.dumps(doc)}), made.log_index)
    assert v.status is Status.INVALID
    assert v.reason.startswith("the transparency-log evidence does not verify"), v.reason


def test_proof_of_another_entry(sim: Sim) -> None:
    made = sim.signer.signature(IMAGE, OURS, REF)
    v = sim.verifier.verify(made.artifact, IMAGE, sim.signer.proof(made.log_index - 1))
    assert v.status is Status.INVALID
    assert v.reason.startswith("the body the signature's log evidence carries is not the logged")


def test_a_body_that_says_the_same_but_is_not_the_logged_bytes_is_invalid(sim: Sim) -> None:
    """The bit flips found an annotation body, differing from the logged bytes, that was
    called valid; the monitor ties signatures to its log by those bytes, so it checks them
    against the inclusion proof itself, before sigstore, and says so."""
    made = sim.signer.signature(IMAGE, OURS, REF)
    doc = json.loads(made.artifact.annotations[ANNOTATION_BUNDLE])
    body = json.loads(base64.b64decode(doc["Payload"]["body"]))
    doc["Payload"]["body"] = base64.b64encode(json.dumps(body, indent=1).encode()).decode()
    changed = dataclasses.replace(
        made.artifact, annotations={**made.artifact.annotations, ANNOTATION_BUNDLE: json.dumps(doc)}
    )
    v = check(sim, changed, made.log_index)
    assert v.status is Status.INVALID
    assert v.reason.startswith("the body the signature's log evidence carries is not the logged")


def test_no_log_evidence(sim: Sim) -> None:
    made = sim.signer.signature(IMAGE, OURS, REF)
    bare = dict(made.artifact.annotations)
    del bare[ANNOTATION_BUNDLE]
    v = check(sim, dataclasses.replace(made.artifact, annotations=bare), made.log_index)
    assert v.status is Status.INVALID
    assert v.reason.startswith("no transparency-log evidence")


def test_legacy_attestation_logged_as_intoto_is_unsupported(sim: Sim) -> None:
    made = sim.signer.attestation(IMAGE, OURS, REF, entry_kind="intoto")
    for proof in (sim.signer.proof(made.log_index), None):
        v = sim.verifier.verify(made.artifact, IMAGE, proof)
        assert v.status is Status.UNSUPPORTED
        assert (
            v.reason == "logged as intoto 0.0.2, which sigstore does not verify (only dsse 0.0.1)"
        )
        assert v.role is Role.ATTESTATION


def test_unsupported_is_neither_expected_nor_invalid(sim: Sim) -> None:
    made = sim.signer.attestation(IMAGE, OURS, REF, entry_kind="intoto")
    v = sim.verifier.verify(made.artifact, IMAGE)
    judged = Expectation(EXPECT, Require.ATTESTATION).judge(IMAGE, [v])
    assert judged.unsupported == (v,)
    assert not judged.invalid
    assert judged.missing == (Role.ATTESTATION,)


def test_legacy_signature_with_a_bare_key_is_unsupported(sim: Sim) -> None:
    made = sim.signer.signature(IMAGE, OURS, REF)
    keyed = {k: v for k, v in made.artifact.annotations.items() if "certificate" not in k}
    v = check(sim, dataclasses.replace(made.artifact, annotations=keyed), made.log_index)
    assert v.status is Status.UNSUPPORTED
    assert v.reason.startswith("signed with a bare key")


def test_leaf_sct_signs_the_leaf_without_it(sim: Sim) -> None:
    """The SCT extension comes last, and the leaf without it is the precertificate."""
    made = sim.signer.bundle(IMAGE, OURS, REF)
    leaf = made.certificate
    assert leaf.extensions[-1].oid.dotted_string == "1.3.6.1.4.1.11129.2.4.2"
    plain = sim.signer.ca.issue_github_actions(
        leaf.public_key(), OURS, not_before=leaf.not_valid_before_utc
    )
    assert leaf.tbs_precertificate_bytes == plain.tbs_certificate_bytes
    assert leaf.tbs_certificate_bytes != plain.tbs_certificate_bytes


def test_proof_as_the_log_serves_it(sim: Sim) -> None:
    made = sim.signer.signature(IMAGE, OURS, REF)
    log = sim.signer.log
    served = log.log_entry_json(made.log_index, log.entry(made.log_index), sim.signer.log_id)
    (doc,) = served.values()
    proof = inclusion_proof_from_v1(doc["verification"]["inclusionProof"])
    ours = sim.signer.proof(made.log_index)  # the same but for the note's ECDSA signature
    assert dataclasses.replace(proof, checkpoint="") == dataclasses.replace(ours, checkpoint="")
    assert sim.verifier.verify(made.artifact, IMAGE, proof).status is Status.VALID


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        (
            {"logIndex": 1, "treeSize": 2, "rootHash": "00", "hashes": [], "checkpoint": ""},
            "SHA-256",
        ),
        (
            {"logIndex": 1, "treeSize": 2, "rootHash": "zz", "hashes": [], "checkpoint": ""},
            "not hex",
        ),
        (
            {"logIndex": -1, "treeSize": 2, "rootHash": "00" * 32, "hashes": [], "checkpoint": ""},
            "range",
        ),
        (
            {
                "logIndex": 1,
                "treeSize": 2,
                "rootHash": "00" * 32,
                "hashes": ["00" * 32] * 65,
                "checkpoint": "",
            },
            "more than 64",
        ),
        ([], "expected an object"),
    ],
)
def test_malformed_proofs_are_refused(doc: Any, problem: str) -> None:
    with pytest.raises(MalformedInputError, match=problem):
        inclusion_proof_from_v1(doc)


def _bundle_tampered(artifact: ImageArtifact, how: str) -> ImageArtifact:
    doc = json.loads(artifact.payload)
    entry = doc["verificationMaterial"]["tlogEntries"][0]
    if how == "signature":
        sig = bytearray(base64.b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"]))
        sig[8] ^= 1
        doc["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(sig).decode()
    elif how == "promise":
        sig = bytearray(base64.b64decode(entry["inclusionPromise"]["signedEntryTimestamp"]))
        sig[8] ^= 1
        entry["inclusionPromise"]["signedEntryTimestamp"] = base64.b64encode(sig).decode()
    elif how == "checkpoint":
        note = entry["inclusionProof"]["checkpoint"]["envelope"]
        entry["inclusionProof"]["checkpoint"]["envelope"] = note.replace("\n", "\nx", 1)
    elif how == "body":
        other = json.loads(base64.b64decode(entry["canonicalizedBody"]))
        other["spec"]["payloadHash"]["value"] = "00" * 32
        entry["canonicalizedBody"] = base64.b64encode(json.dumps(other).encode()).decode()
    return dataclasses.replace(artifact, payload=json.dumps(doc).encode())


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("signature", "the signature does not verify over the payload"),
        ("promise", "the transparency-log evidence does not verify"),
        ("checkpoint", "the transparency-log evidence does not verify"),
        ("body", "the transparency-log evidence does not verify"),
    ],
)
def test_tampered_sim_bundle(sim: Sim, how: str, reason: str) -> None:
    made = sim.signer.bundle(IMAGE, OURS, REF)
    v = sim.verifier.verify(_bundle_tampered(made.artifact, how), IMAGE)
    assert v.status is Status.INVALID
    assert v.reason.startswith(reason), v.reason


def test_a_layer_whose_media_type_is_not_its_form(sim: Sim) -> None:
    made = sim.signer.signature(IMAGE, OURS, REF)
    odd = dataclasses.replace(made.artifact, media_type="application/octet-stream")
    v = check(sim, odd, made.log_index)
    assert v.status is Status.INVALID
    assert v.reason == "a simple-signing layer of media type 'application/octet-stream'"


def test_forms_of_media_types() -> None:
    assert (
        form_for("application/vnd.dev.cosign.simplesigning.v1+json") is ArtifactForm.SIMPLE_SIGNING
    )
    assert form_for("application/vnd.dsse.envelope.v1+json") is ArtifactForm.DSSE
    assert form_for("application/vnd.dev.sigstore.bundle.v0.3+json") is ArtifactForm.BUNDLE
    assert form_for("application/vnd.oci.image.layer.v1.tar") is None


def _descriptor(artifact: ImageArtifact, blob: bytes | None = None) -> dict[str, Any]:
    return {
        "mediaType": artifact.media_type,
        "digest": "sha256:"
        + hashlib.sha256(artifact.payload if blob is None else blob).hexdigest(),
        "size": len(artifact.payload),
        "annotations": dict(artifact.annotations),
    }


def test_artifact_from_a_manifest_layer(sim: Sim) -> None:
    made = sim.signer.signature(IMAGE, OURS, REF)
    read = artifact_from_layer(_descriptor(made.artifact), made.artifact.payload, "tag .sig")
    assert read == dataclasses.replace(made.artifact, source="tag .sig")
    assert check(sim, read, made.log_index).valid


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"mediaType": "application/vnd.oci.image.layer.v1.tar"}, "is no cosign form"),
        ({"digest": "sha256:" + "00" * 32}, "the blob served is not"),
        ({"digest": "md5:00"}, "not a sha256 digest"),
        ({"annotations": {"dev.sigstore.cosign/bundle": 7}}, "is not a string"),
        ({"annotations": []}, "expected an object"),
    ],
)
def test_layers_that_are_not_artifacts(sim: Sim, change: dict[str, Any], problem: str) -> None:
    made = sim.signer.signature(IMAGE, OURS, REF)
    with pytest.raises(MalformedInputError, match=problem):
        artifact_from_layer({**_descriptor(made.artifact), **change}, made.artifact.payload)
