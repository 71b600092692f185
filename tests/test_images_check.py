"""Checking images against a real registry on loopback, with signatures made by the
simulator's CA and logged in its Rekor v1 log: each form cosign leaves, each signer, each
way a signature or its log entry can fail, an index and its platforms, a whole repository."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from monitor.config.images import ImageSettings
from monitor.core.imageref import ImageReference
from monitor.images import (
    DigestReport,
    Ours,
    check_reference,
    findings_of,
    report_json,
    scan_repository,
    status_of,
)
from monitor.images import checker as checker_module
from monitor.imagesig import ArtifactForm, Expectation, ImageArtifact, Require, Role, Status
from monitor.rules.spec import Selector
from monitor.sim.images import SLSA_PROVENANCE
from monitor.tlog.checkpoint import SignedCheckpoint
from tests.images_support import (
    EXPECT,
    OURS,
    THEIRS,
    World,
    in_world,
    push_att,
    push_bundle,
    push_sig,
    renumbered,
)
from tests.registry_support import Layer, RunningRegistry, plain_registry

EXPECTATION = Expectation(Selector.parse(EXPECT))


registry = pytest.fixture(scope="module")(plain_registry)


async def check(
    w: World,
    name: str,
    digest: str,
    expectation: Expectation = EXPECTATION,
    *,
    ours: Ours | None = None,
) -> list[DigestReport]:
    repo, _ = w.repo(name)
    ref = ImageReference(repo, digest=digest)
    return await check_reference(ref, w.client(repo), w.checker(ours), expectation)


def test_legacy_sig_by_the_expected_signer_is_proven_through_the_log(
    tmp_path: Path, registry: RunningRegistry
) -> None:
    async def body(w: World) -> None:
        repo, pusher = w.repo("acme/legacy")
        image = await pusher.image("v1")
        made = w.signer.signature(image.digest, OURS, str(repo))
        await push_sig(pusher, image, made)
        (report,) = await check(w, "acme/legacy", image.digest)
        (sig,) = report.signatures
        assert sig.verdict.status is Status.VALID, sig.verdict.reason
        assert sig.verdict.form is ArtifactForm.SIMPLE_SIGNING
        assert sig.tie is not None
        assert (sig.tie.log, sig.tie.index, sig.tie.status) == ("sim-v1", made.log_index, "proven")
        body_hex = hashlib.sha256(w.signer.log.entry(made.log_index).body).hexdigest()
        assert sig.tie.body_sha256 == sig.tie.log_body_sha256 == body_hex
        assert "no verified checkpoint of the monitor's" in sig.tie.detail
        assert status_of(report) == "signed"
        assert findings_of(report) == ()
        assert report.judgment.expected == (sig.verdict,)

    in_world(tmp_path, registry, body)


def test_tie_proves_the_logs_tree_consistent_with_ours(
    tmp_path: Path, registry: RunningRegistry
) -> None:
    async def body(w: World) -> None:
        repo, pusher = w.repo("acme/consistent")
        ours = (await w.h.v1.log_info()).active.checkpoint  # before the signature is logged
        image = await pusher.image("v1")
        made = w.signer.signature(image.digest, OURS, str(repo))
        await push_sig(pusher, image, made)
        asked: list[str] = []

        async def latest(name: str) -> SignedCheckpoint | None:
            asked.append(name)
            return ours

        (report,) = await check(w, "acme/consistent", image.digest, ours=latest)
        tie = report.signatures[0].tie
        assert tie is not None
        assert tie.status == "proven"
        assert f"consistent with the monitor's verified tree of {ours.size}" in tie.detail
        assert asked == ["sim-v1"]
        # the same tree as ours: the roots must agree
        same = (await w.h.v1.log_info()).active.checkpoint
        (again,) = await check(w, "acme/consistent", image.digest, ours=lambda _: same)
        tie = again.signatures[0].tie
        assert tie is not None
        assert tie.status == "proven"
        assert f"consistent with the monitor's verified tree of {same.size}" in tie.detail
        # ours of the frozen shard: another tree, inclusion only
        frozen = (await w.h.v1.log_info()).inactive[0].checkpoint
        (other,) = await check(w, "acme/consistent", image.digest, ours=lambda _: frozen)
        tie = other.signatures[0].tie
        assert tie is not None
        assert tie.status == "proven"
        assert "the monitor's checkpoint is of another tree" in tie.detail

    in_world(tmp_path, registry, body)


def test_a_log_tree_inconsistent_with_ours_is_a_mismatch(
    tmp_path: Path, registry: RunningRegistry
) -> None:
    async def body(w: World) -> None:
        repo, pusher = w.repo("acme/forked")
        image = await pusher.image("v1")
        await push_sig(pusher, image, w.signer.signature(image.digest, OURS, str(repo)))
        # the monitor was shown a fork of the same size; the log now serves the other tree
        await w.h.admin("faults", {"fork_at": 25})
        forked = (await w.h.v1.log_info()).active.checkpoint
        await w.h.admin("faults", {"fork_at": None})
        honest = (await w.h.v1.log_info()).active.checkpoint
        assert (forked.size, forked.root_hash != honest.root_hash) == (honest.size, True)
        (report,) = await check(w, "acme/forked", image.digest, ours=lambda _: forked)
        (sig,) = report.signatures
        assert sig.tie is not None
        assert sig.tie.status == "mismatch"
        assert "is not consistent with the monitor's verified tree" in sig.tie.detail
        assert "tlog_mismatch" in findings_of(report)

    in_world(tmp_path, registry, body)


def test_another_signer_is_unexpected_and_leaves_the_image_unsigned(
    tmp_path: Path, registry: RunningRegistry
) -> None:
    async def body(w: World) -> None:
        repo, pusher = w.repo("acme/theirs")
        image = await pusher.image("v1")
        await push_sig(pusher, image, w.signer.signature(image.digest, THEIRS, str(repo)))
        (report,) = await check(w, "acme/theirs", image.digest)
        assert report.signatures[0].verdict.valid
        assert status_of(report) == "unexpected"
        assert findings_of(report) == ("unsigned_image", "unexpected_signer")
        doc = report_json(report)
        assert doc["signatures"][0]["signer"]["sans"][0]["value"] == THEIRS.email
        assert doc["missing"] == ["signature"]

    in_world(tmp_path, registry, body)


def test_unsigned(tmp_path: Path, registry: RunningRegistry) -> None:
    async def body(w: World) -> None:
        _, pusher = w.repo("acme/unsigned")
        image = await pusher.image("v1")
        (report,) = await check(w, "acme/unsigned", image.digest)
        assert report.signatures == ()
        assert status_of(report) == "unsigned"
        assert findings_of(report) == ("unsigned_image",)

    in_world(tmp_path, registry, body)


def test_invalid_signature_says_why(tmp_path: Path, registry: RunningRegistry) -> None:
    async def body(w: World) -> None:
        repo, pusher = w.repo("acme/invalid")
        image = await pusher.image("v1")
        other = await pusher.image(None)
        # a signature of another image, put beside this one
        await push_sig(pusher, image, w.signer.signature(other.digest, OURS, str(repo)))
        (report,) = await check(w, "acme/invalid", image.digest)
        (sig,) = report.signatures
        assert sig.verdict.status is Status.INVALID
        assert sig.verdict.reason == f"signs {other.digest}, not this image"
        assert status_of(report) == "invalid"
        assert findings_of(report) == ("unsigned_image", "invalid_signature")

    in_world(tmp_path, registry, body)


def test_bundle_referrer_through_the_fallback_tag(
    tmp_path: Path, registry: RunningRegistry
) -> None:
    async def body(w: World) -> None:
        repo, pusher = w.repo("acme/bundle")
        image = await pusher.image("v1")
        made = w.signer.bundle(image.digest, OURS, str(repo))
        await push_bundle(pusher, image, made)
        (report,) = await check(w, "acme/bundle", image.digest)
        (sig,) = report.signatures
        assert sig.verdict.status is Status.VALID, sig.verdict.reason
        assert (sig.verdict.form, sig.verdict.role) == (ArtifactForm.BUNDLE, Role.SIGNATURE)
        assert sig.verdict.source.startswith("referrer sha256:")
        assert sig.tie is not None
        assert (sig.tie.index, sig.tie.status) == (made.log_index, "proven")
        assert status_of(report) == "signed"

    in_world(tmp_path, registry, body)


def test_attestation_and_signature_for_require_both(
    tmp_path: Path, registry: RunningRegistry
) -> None:
    async def body(w: World) -> None:
        repo, pusher = w.repo("acme/both")
        image = await pusher.image("v1")
        await push_sig(pusher, image, w.signer.signature(image.digest, OURS, str(repo)))
        both = Expectation(Selector.parse(EXPECT), Require.BOTH)
        (report,) = await check(w, "acme/both", image.digest, both)
        assert report.judgment.missing == (Role.ATTESTATION,)
        assert findings_of(report) == ("unsigned_image",)
        await push_att(pusher, image, w.signer.attestation(image.digest, OURS, str(repo)))
        (report,) = await check(w, "acme/both", image.digest, both)
        assert {s.verdict.role for s in report.signatures} == {Role.SIGNATURE, Role.ATTESTATION}
        assert all(s.verdict.valid for s in report.signatures), report.signatures
        att = next(s for s in report.signatures if s.verdict.role is Role.ATTESTATION)
        assert att.verdict.predicate_type == SLSA_PROVENANCE
        assert status_of(report) == "signed"

    in_world(tmp_path, registry, body)


def test_an_index_signature_covers_its_platforms(tmp_path: Path, registry: RunningRegistry) -> None:
    async def body(w: World) -> None:
        repo, pusher = w.repo("acme/multi")
        index, images = await pusher.multi_arch("v1")
        await push_bundle(pusher, index, w.signer.bundle(index.digest, OURS, str(repo)))
        reports = await check(w, "acme/multi", index.digest)
        assert [r.digest for r in reports] == [index.digest, *(i.digest for i in images)]
        assert [r.platform for r in reports] == [None, "linux/amd64", "linux/arm64"]
        assert [r.index_digest for r in reports] == [None, index.digest, index.digest]
        assert all(status_of(r) == "signed" for r in reports), [report_json(r) for r in reports]
        for platform in reports[1:]:
            (sig,) = platform.signatures
            assert sig.verdict.image_digest == index.digest  # the index's, inherited

    in_world(tmp_path, registry, body)


def test_a_platform_signed_alone_is_signed_and_its_index_is_not(
    tmp_path: Path, registry: RunningRegistry
) -> None:
    async def body(w: World) -> None:
        repo, pusher = w.repo("acme/partly")
        index, images = await pusher.multi_arch("v1")
        await push_sig(pusher, images[0], w.signer.signature(images[0].digest, OURS, str(repo)))
        reports = await check(w, "acme/partly", index.digest)
        assert [status_of(r) for r in reports] == ["unsigned", "signed", "unsigned"]

    in_world(tmp_path, registry, body)


def test_sig_naming_an_entry_the_log_holds_otherwise_is_a_mismatch(
    tmp_path: Path, registry: RunningRegistry
) -> None:
    async def body(w: World) -> None:
        repo, pusher = w.repo("acme/mismatch")
        image = await pusher.image("v1")
        made = w.signer.signature(image.digest, OURS, str(repo))
        # the log itself signed a promise of entry 3 with this body, and serves another there
        lie = renumbered(made, 3, signed_by=w.signer)
        await pusher.legacy(image.digest, ".sig", [_layer(lie)])
        (report,) = await check(w, "acme/mismatch", image.digest)
        (sig,) = report.signatures
        assert sig.tie is not None
        assert (sig.tie.status, sig.tie.index, sig.tie.log) == ("mismatch", 3, "sim-v1")
        held = hashlib.sha256(w.signer.log.entry(3).body).hexdigest()
        assert sig.tie.log_body_sha256 == held
        assert sig.tie.body_sha256 != held
        assert f"the log holds another body at 3: sha256:{held}" in sig.tie.detail
        assert sig.verdict.status is Status.UNPROVEN  # never given a proof of another body
        assert findings_of(report) == ("unsigned_image", "tlog_mismatch")

    in_world(tmp_path, registry, body)


def test_a_registrys_claim_the_log_never_signed_is_no_mismatch(
    tmp_path: Path, registry: RunningRegistry
) -> None:
    """Anyone who may push could otherwise raise critical findings at will: a promise whose
    signature does not verify names an entry, the log holds another there, and that proves
    nothing about the log."""

    async def body(w: World) -> None:
        repo, pusher = w.repo("acme/claim")
        image = await pusher.image("v1")
        made = w.signer.signature(image.digest, OURS, str(repo))
        await pusher.legacy(image.digest, ".sig", [_layer(renumbered(made, 3))])
        (report,) = await check(w, "acme/claim", image.digest)
        (sig,) = report.signatures
        assert sig.tie is not None
        assert (sig.tie.status, sig.tie.index) == ("unvouched", 3)
        assert "the log never promised this entry" in sig.tie.detail
        assert findings_of(report) == ("unsigned_image",)

    in_world(tmp_path, registry, body)


def test_sig_naming_an_entry_past_the_logs_tree_is_not_proven_yet(
    tmp_path: Path, registry: RunningRegistry
) -> None:
    async def body(w: World) -> None:
        repo, pusher = w.repo("acme/beyond")
        image = await pusher.image("v1")
        made = w.signer.signature(image.digest, OURS, str(repo))
        lie = renumbered(made, 10_000, signed_by=w.signer)
        await pusher.legacy(image.digest, ".sig", [_layer(lie)])
        (report,) = await check(w, "acme/beyond", image.digest)
        tie = report.signatures[0].tie
        assert tie is not None
        assert tie.status == "unavailable"  # a promise may come before the next tree
        assert tie.log_body_sha256 is None
        assert "the log holds no entry 10000 yet: its signed tree ends at" in tie.detail
        assert status_of(report) == "unknown"
        assert findings_of(report) == ()

    in_world(tmp_path, registry, body)


def test_log_that_cannot_prove_is_unavailable(tmp_path: Path, registry: RunningRegistry) -> None:
    async def body(w: World) -> None:
        repo, pusher = w.repo("acme/down")
        image = await pusher.image("v1")
        await push_sig(pusher, image, w.signer.signature(image.digest, OURS, str(repo)))
        await w.h.admin("faults", {"bad_signature": True})
        (report,) = await check(w, "acme/down", image.digest)
        (sig,) = report.signatures
        assert sig.tie is not None
        assert sig.tie.status == "unavailable"
        assert sig.verdict.status is Status.UNPROVEN
        # the log's fault, not the image's: unknown, and no unsigned_image
        assert status_of(report) == "unknown"
        assert findings_of(report) == ()

    in_world(tmp_path, registry, body)


def test_entry_of_a_log_the_trust_root_does_not_know(
    tmp_path: Path, registry: RunningRegistry
) -> None:
    async def body(w: World) -> None:
        repo, pusher = w.repo("acme/unknown")
        image = await pusher.image("v1")
        made = w.signer.signature(image.digest, OURS, str(repo))
        changed = dict(made.artifact.annotations)
        changed["dev.sigstore.cosign/bundle"] = changed["dev.sigstore.cosign/bundle"].replace(
            w.signer.log_id.hex(), "ab" * 32
        )
        await pusher.legacy(
            image.digest, ".sig", [Layer(made.artifact.media_type, made.artifact.payload, changed)]
        )
        (report,) = await check(w, "acme/unknown", image.digest)
        tie = report.signatures[0].tie
        assert tie is not None
        assert (tie.status, tie.log) == ("unknown_log", None)
        assert "ab" * 32 in tie.detail

    in_world(tmp_path, registry, body)


def test_scan_repository(tmp_path: Path, registry: RunningRegistry) -> None:
    async def body(w: World) -> None:
        repo, pusher = w.repo("acme/scan")
        signed = await pusher.image("v1")
        await pusher.manifest("latest", _doc(signed.raw), signed.media_type)
        await push_sig(pusher, signed, w.signer.signature(signed.digest, OURS, str(repo)))
        unsigned = await pusher.image("v2")
        await pusher.image("dev-1")  # not watched
        image = ImageSettings.model_validate(
            {
                "repository": str(repo),
                "tags": ["v*", "latest"],
                "expect": EXPECT,
                "insecure_http": True,
            }
        )
        scan = await scan_repository(image, w.client(repo), w.checker())
        assert scan.complete, scan
        assert scan.error is None
        by_digest = {r.digest: r for r in scan.reports}
        assert set(by_digest) == {signed.digest, unsigned.digest}
        assert by_digest[signed.digest].tags == ("latest", "v1")
        assert status_of(by_digest[signed.digest]) == "signed"
        assert status_of(by_digest[unsigned.digest]) == "unsigned"
        assert scan.started_at <= scan.finished_at

    in_world(tmp_path, registry, body)


def test_scan_of_a_missing_repository_is_incomplete(
    tmp_path: Path, registry: RunningRegistry
) -> None:
    async def body(w: World) -> None:
        repo, _ = w.repo("acme/nothing-here")
        image = ImageSettings.model_validate({"repository": str(repo), "insecure_http": True})
        scan = await scan_repository(image, w.client(repo), w.checker())
        assert not scan.complete
        assert scan.reports == ()
        assert scan.error is not None
        assert "no such repository" in scan.error

    in_world(tmp_path, registry, body)


def test_one_broken_digest_does_not_stop_the_scan(
    tmp_path: Path, registry: RunningRegistry
) -> None:
    async def body(w: World) -> None:
        repo, pusher = w.repo("acme/broken")
        good = await pusher.image("good")
        await push_sig(pusher, good, w.signer.signature(good.digest, OURS, str(repo)))
        bad = await pusher.image("bad")
        made = w.signer.signature(bad.digest, OURS, str(repo))
        sig = await pusher.legacy(bad.digest, ".sig", [_layer(made.artifact)])
        # the .sig's layer blob deleted: the registry cannot serve what it lists
        layer_digest = _layers_of(sig.raw)[0]
        async with w.session.delete(
            f"{w.registry.url}/v2/acme/broken/blobs/{layer_digest}"
        ) as resp:
            assert resp.status == 202, await resp.text()
        image = ImageSettings.model_validate({"repository": str(repo), "insecure_http": True})
        scan = await scan_repository(image, w.client(repo), w.checker())
        assert not scan.complete
        by_tag = {r.tags: r for r in scan.reports}
        assert status_of(by_tag[("good",)]) == "signed"
        broken = by_tag[("bad",)]
        assert broken.error is not None
        assert "blob not found" in broken.error
        assert status_of(broken) == "unknown"
        assert findings_of(broken) == ()

    in_world(tmp_path, registry, body)


def test_a_registry_cannot_make_the_checker_read_without_bound(
    tmp_path: Path, registry: RunningRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Layers past the bound are not read; a layer larger than an artifact may be is not
    fetched, and is an invalid signature."""
    monkeypatch.setattr(checker_module, "MAX_ARTIFACTS", 3)
    monkeypatch.setattr(checker_module, "MAX_ARTIFACT_BYTES", 2000)

    async def body(w: World) -> None:
        repo, pusher = w.repo("acme/many")
        image = await pusher.image("v1")
        made = w.signer.signature(image.digest, OURS, str(repo))
        big = Layer(made.artifact.media_type, b"x" * 2001, {})
        await pusher.legacy(image.digest, ".sig", [big, *[_layer(made.artifact)] * 5])
        (report,) = await check(w, "acme/many", image.digest)
        assert len(report.signatures) == 3
        first = report.signatures[0].verdict
        assert first.status is Status.INVALID
        assert first.reason == "a layer of 2001 bytes: larger than 2000"
        assert all(s.verdict.valid for s in report.signatures[1:])

    in_world(tmp_path, registry, body)


def _layer(artifact: ImageArtifact) -> Layer:
    return Layer(artifact.media_type, artifact.payload, artifact.annotations)


def _doc(raw: bytes) -> dict[str, object]:
    doc = json.loads(raw)
    assert isinstance(doc, dict)
    return doc


def _layers_of(raw: bytes) -> list[str]:
    return [layer["digest"] for layer in json.loads(raw)["layers"]]
