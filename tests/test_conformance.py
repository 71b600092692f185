"""verify-bundle on sigstore-conformance's bundle-verify suite, case by case.

sigstore-conformance (``test/assets/bundle-verify``, copied to ``fixtures/conformance``, see the
SOURCES file there) is the suite Sigstore clients are held to. A client verifies everything in
a bundle; verify-bundle checks only its transparency-log part. So each case is decided here:
what the log part alone must say, and why. A case that fails in the suite for an artifact,
signature, certificate or timestamp-authority reason still passes the log checks; one that
fails for a log reason must fail here, on the check that names it.

Expectations: ``ok`` (exit 0), ``promise`` (exit 0, the verdict resting on the signed entry
timestamp; ``--require-proof`` then fails it), ``fail:<check>`` (exit 1, that check failed),
``malformed`` (exit 1, a field of the bundle is malformed) and ``error`` (exit 2, nothing could
be checked).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.cli import main

SUITE = Path(__file__).parent / "fixtures" / "conformance" / "bundle-verify"

ARTIFACT = "ok: the failure is in the signature over the artifact, not in the log"
CERTIFICATE = "ok: the failure is in the signing certificate, not in the log"
TSA = "ok: the failure is in the RFC 3161 timestamp, not in the log"
KEY = "ok: the failure is in the verification key the verifier is given, not in the log"

CASES: dict[str, tuple[str, str]] = {
    "bundle-empty-certificate-chain_fail": (
        "fail:inclusion-proof",
        "the logged body was replaced and the proof cut: its leaf is not in the proven tree",
    ),
    "bundle-from-wrong-instance_fail": ("fail:log", "a staging log is not in the prod root"),
    "bundle-invalid-base64-signature_fail": (
        "fail:inclusion-proof",
        "the edit changed the logged body too: its leaf is not in the proven tree",
    ),
    "bundle-malformed-json_fail": ("error", "not JSON: nothing can be checked"),
    "bundle-negative-log-index_fail": ("malformed", "a log index is never negative"),
    "bundle-unknown-version_fail": ("error", "a bundle version whose rules are unknown"),
    "bundle-with-root-cert_fail": (
        "promise",
        "a v0.1 bundle whose proof has no checkpoint: its SET verifies; " + CERTIFICATE,
    ),
    "bundle-with-sct-with-extensions": ("ok", "valid"),
    "checkpoint-bad-keyhint_fail": (
        "fail:checkpoint-signature",
        "no signature line carries the log's key hint",
    ),
    "checkpoint-wrong-roothash_fail": (
        "fail:checkpoint-agreement",
        "a genuine checkpoint of another tree size than the proof's",
    ),
    "dsse-invalid-sig_fail": ("ok", ARTIFACT),
    "dsse-mismatch-envelope_fail": ("ok", ARTIFACT),
    "dsse-mismatch-sig_fail": ("ok", ARTIFACT),
    "happy-path-intoto-in-dsse-v3": ("ok", "valid"),
    "happy-path-v0.1": ("ok", "valid"),
    "happy-path-v0.2": ("ok", "valid"),
    "happy-path-v0.3": ("ok", "valid"),
    "happy-path-v0.3-new-mediaType": ("ok", "valid"),
    "inclusion-proof-corrupted-hash_fail": ("fail:inclusion-proof", "a flipped proof hash"),
    "incorrect-public-key_fail": (
        "fail:inclusion-proof",
        "the key was changed inside the logged body: that body is not the log's leaf",
    ),
    "integrated-time-in-future_fail": ("ok", CERTIFICATE + " (integrated after it expired)"),
    "intoto-expired-certificate_fail": ("ok", CERTIFICATE),
    "intoto-log-entry-mismatch_fail": ("ok", ARTIFACT),
    "intoto-missing-inclusion-proof_fail": (
        "fail:inclusion-proof",
        "bundles v0.2 and later must carry an inclusion proof",
    ),
    "intoto-set-outside-signing-cert-validity_fail": ("ok", CERTIFICATE),
    "intoto-tsa-timestamp-outside-cert-validity_fail": ("ok", TSA),
    "intoto-with-custom-trust-root": ("ok", "valid"),
    "invalid-checkpoint-signature_fail": (
        "fail:checkpoint-signature",
        "the log's checkpoint signature does not verify",
    ),
    "invalid-ct-key_fail": ("ok", CERTIFICATE + " (its CT log key)"),
    "invalid-inclusion-proof_fail": ("fail:inclusion-proof", "a proof of another entry"),
    "managed-key-and-trusted-root": ("ok", "valid"),
    "managed-key-happy-path": ("ok", "valid"),
    "managed-key-no-key_fail": ("ok", KEY),
    "managed-key-wrong-key_fail": ("ok", KEY),
    "message-digest-mismatch_fail": ("ok", ARTIFACT),
    "rekor2-checkpoint-cosigned": ("ok", "valid; witness cosignatures are ignored"),
    "rekor2-checkpoint-missing-log-signature_fail": (
        "fail:checkpoint-signature",
        "the checkpoint has no signature at all",
    ),
    "rekor2-checkpoint-missing-origin_fail": (
        "fail:checkpoint-signature",
        "the signed text was edited: the log's signature no longer verifies",
    ),
    "rekor2-checkpoint-missing-root-hash_fail": (
        "fail:checkpoint-signature",
        "the signed text was edited: the log's signature no longer verifies",
    ),
    "rekor2-checkpoint-missing-size_fail": (
        "fail:checkpoint-signature",
        "the signed text was edited: the log's signature no longer verifies",
    ),
    "rekor2-checkpoint-multiple-cosigs": ("ok", "valid; witness cosignatures are ignored"),
    "rekor2-checkpoint-no-matching-signature_fail": (
        "fail:checkpoint-signature",
        "signed under another name: a C2SP (Rekor v2) key is bound to the log's name",
    ),
    "rekor2-checkpoint-origin-not-first": ("ok", "valid"),
    "rekor2-checkpoint-two-sigs-cosigned": ("ok", "valid"),
    "rekor2-checkpoint-two-sigs-from-origin": ("ok", "valid"),
    "rekor2-dsse-happy-path": ("ok", "valid"),
    "rekor2-dsse-invalid-sig_fail": ("ok", ARTIFACT),
    "rekor2-dsse-mismatch-envelope_fail": ("ok", ARTIFACT),
    "rekor2-dsse-mismatch-sig_fail": ("ok", ARTIFACT),
    "rekor2-happy-path": ("ok", "valid"),
    "rekor2-no-inclusion-proof_fail": (
        "fail:inclusion-proof",
        "Rekor v2 makes no SET: without the proof nothing ties the entry to the log",
    ),
    "rekor2-no-timestamp_fail": ("ok", TSA + " (Rekor v2 needs one for the signing time)"),
    "rekor2-timestamp-outside-trust-root-tsa-validity_fail": ("ok", TSA),
    "rekor2-timestamp-outside-tsa-cert-validity_fail": ("ok", TSA),
    "rekor2-timestamp-payload-mismatch_fail": ("ok", TSA),
    "rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail": ("ok", TSA),
    "rekor2-timestamp-untrusted-tsa-without-embedded-cert_fail": ("ok", TSA),
    "rekor2-timestamp-with-embedded-cert": ("ok", "valid"),
    "rekor2-timestamp-with-expired-cert-chain": ("ok", "valid"),
    "rekor2-timestamp-with-incorrect-time_fail": ("ok", TSA),
    "rekor2-timestamp-without-embedded-cert": ("ok", "valid"),
    "set-invalid-signature_fail": (
        "fail:signed-entry-timestamp",
        "the log's promise does not verify",
    ),
    "signature-mismatch_fail": ("ok", ARTIFACT),
    "trust-root-tlog-missing-validity-start_fail": (
        "fail:log-key-validity",
        "a log key without a validity start is not trusted",
    ),
    "trust-root-tlog-validity-end-inclusive": (
        "ok",
        "integrated exactly at the key's validity end: the interval is closed",
    ),
    "trust-root-tsa-validity-end-inclusive": ("ok", "valid"),
    "wrong-hashedrekord-artifact_fail": ("ok", ARTIFACT),
    "wrong-hashedrekord-cert-and-sig_fail": ("ok", ARTIFACT),
    "wrong-hashedrekord-entry_fail": ("ok", ARTIFACT + " (a valid entry of another signature)"),
    "wrong-material_fail": ("ok", ARTIFACT),
}


def test_every_case_is_decided() -> None:
    assert sorted(p.name for p in SUITE.iterdir() if p.is_dir()) == sorted(CASES)


def _verify(capsys: pytest.CaptureFixture[str], case: str, *flags: str) -> tuple[int, str]:
    root = SUITE / case / "trusted_root.json"
    args = ["verify-bundle", *flags]
    if root.exists():
        args += ["--trusted-root", str(root)]
    code = main([*args, str(SUITE / case / "bundle.sigstore.json")])
    return code, capsys.readouterr().out


@pytest.mark.parametrize("case", sorted(CASES))
def test_case(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    expected, why = CASES[case]
    code, out = _verify(capsys, case)
    assert why
    if expected in ("ok", "promise"):
        assert (code, out[:6]) == (0, "OK    "), out
        assert ("[promise only: signed entry timestamp" in out) is (expected == "promise"), out
        # with --require-proof only the promise-only verdict changes
        strict, strict_out = _verify(capsys, case, "--require-proof")
        assert strict == (1 if expected == "promise" else 0), strict_out
    elif expected == "malformed":
        assert (code, out[:6]) == (1, "FAIL  "), out
        assert ": malformed: " in out, out
    elif expected == "error":
        assert (code, out[:6]) == (2, "ERROR "), out
    else:
        check = expected.removeprefix("fail:")
        assert (code, out[:6]) == (1, "FAIL  "), out
        assert f"{check} failed: " in out, out
