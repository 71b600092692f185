"""Realistic rule sets over the real fixture entries: every bundle and v2 entry, parsed with
its DSSE envelope where the bundle has one, certificates checked against the production
trusted root (staging certificates therefore do not chain)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from monitor.core.findings import Finding, FindingKind, Severity, Unmet
from monitor.entries import parse_entry
from monitor.entries.parse import with_chain_status
from monitor.entries.record import CertificateSigner, ChainStatus, ParseResult, SigningRecord
from monitor.entries.statement import Envelope
from monitor.entries.x509 import FULCIO_EXTENSION_OIDS
from monitor.rules.engine import RuleEngine
from monitor.rules.fields import SIGNER_FIELDS, record_fields, signer_field, signer_fields
from monitor.rules.spec import Pattern, PatternKind, RuleSpec, Selector
from monitor.trust import load_trust_root
from tests.conftest import FIXTURES

ENTRY_FILES = sorted(p for d in ("v1-bundles", "v2") for p in (FIXTURES / d).glob("*.json"))

GHA = "https://token.actions.githubusercontent.com"
JS_REPO = "https://github.com/sigstore/sigstore-js"
JS_RELEASE = f"{JS_REPO}/.github/workflows/release.yml@refs/heads/main"
JS_PROVENANCE = {
    "sigstore-go.sigstore.js-2.0.0-provenance.intoto.sigstore.json",
    "gh-cli.sigstore-js-2.1.0.intoto.sigstore.json",
}
MANAGED_KEY = "sha256:4cb32c4837c6dda8cfb1681efb3fef5f94ffce5b979e6bdb9139302c857af139"


def _parse(path: Path) -> SigningRecord:
    doc = json.loads(path.read_text())
    tle = doc["verificationMaterial"]["tlogEntries"][0] if "verificationMaterial" in doc else doc
    env = doc.get("dsseEnvelope")
    envelope = Envelope(env["payloadType"], base64.b64decode(env["payload"])) if env else None
    result = parse_entry(
        base64.b64decode(tle["canonicalizedBody"]),
        log="rekor",
        index=int(tle["logIndex"]),
        envelope=envelope,
    )
    assert isinstance(result, SigningRecord), result
    return result


@cache
def _check() -> Callable[[SigningRecord], ParseResult]:
    cas = load_trust_root().certificate_authorities
    return lambda r: with_chain_status(r, cas)


@cache
def unchecked() -> dict[str, SigningRecord]:
    return {p.name: _parse(p) for p in ENTRY_FILES}


@cache
def checked() -> dict[str, SigningRecord]:
    out = {}
    for name, record in unchecked().items():
        result = _check()(record)
        assert isinstance(result, SigningRecord)
        out[name] = result
    return out


def rule(
    name: str, match: dict[str, Any], expect: dict[str, Any] | None = None, sev: str = "high"
) -> RuleSpec:
    return RuleSpec(
        name,
        Selector.parse(match),
        Selector.parse(expect) if expect is not None else None,
        Severity.parse(sev),
    )


def run(rules: list[RuleSpec]) -> dict[str, list[Finding]]:
    """Findings per fixture (fixtures without findings left out)."""
    engine = RuleEngine.compile(rules)
    out = {}
    for name, record in checked().items():
        findings = engine.evaluate(record)
        if findings:
            out[name] = findings
    return out


def test_every_fixture_parses() -> None:
    records = checked()
    assert len(records) == len(ENTRY_FILES) >= 20
    chains = {
        s.chain for r in records.values() for s in r.signers if isinstance(s, CertificateSigner)
    }
    assert chains == {ChainStatus.VERIFIED, ChainStatus.UNTRUSTED}  # staging ones do not chain


JS_RULE = rule(
    "sigstore-js-release",
    {"extensions": {"source-repository-uri": JS_REPO}},
    {
        "san": JS_RELEASE,
        "issuer": GHA,
        "extensions": {"runner-environment": "github-hosted"},
    },
)


def test_release_workflow_rule_gives_expected_use() -> None:
    found = run([JS_RULE])
    assert set(found) == JS_PROVENANCE
    for name, findings in found.items():
        (f,) = findings
        assert f.kind is FindingKind.EXPECTED_USE, (name, f)
        assert f.unmet == ()
        assert f.matched == (("ext:source-repository-uri", JS_REPO),)
        assert f.index == checked()[name].index
        assert "pkg:npm/sigstore@" in f.detail


def test_extension_by_oid_finds_the_same_entries() -> None:
    oid = FULCIO_EXTENSION_OIDS["source-repository-uri"]
    by_oid = rule("by-oid", {"extensions": {oid: JS_REPO}})
    assert set(run([by_oid])) == JS_PROVENANCE


def test_rule_expecting_tags_flags_main_branch_signatures() -> None:
    tags = rule(
        "sigstore-js-tags-only",
        {"extensions": {"source-repository-uri": JS_REPO}},
        {"san": f"{JS_REPO}/.github/workflows/release.yml@refs/tags/*", "issuer": GHA},
    )
    found = run([tags])
    assert set(found) == JS_PROVENANCE
    for findings in found.values():
        (f,) = findings
        assert f.kind is FindingKind.UNEXPECTED_SIGNER
        assert f.unmet == (
            Unmet("san", (f"{JS_REPO}/.github/workflows/release.yml@refs/tags/*",), (JS_RELEASE,)),
        )
        assert "refs/heads/main" in f.detail


def test_email_rule_gives_watched_use() -> None:
    found = run([rule("maintainer", {"san": "*@dehamer.com"}, sev="medium")])
    assert {
        "sigstore-js.bundleV03-dsse.sigstore.json",
        "sigstore-js.bundleV03-intoto.sigstore.json",
    } <= set(found)
    assert set(found) == {
        "sigstore-js.bundleV03-dsse.sigstore.json",
        "sigstore-js.bundleV03-intoto.sigstore.json",
        "sigstore-js.TLOG_DSSEV002.prod.dsse-v002.sigstore.json",
    }
    for findings in found.values():
        (f,) = findings
        assert f.kind is FindingKind.WATCHED_USE
        assert f.severity is Severity.MEDIUM
        assert f.matched == (("san", "brian@dehamer.com"),)


def test_managed_key_rule_gives_watched_use() -> None:
    found = run([rule("offline-root-key", {"key_fingerprint": MANAGED_KEY}, sev="critical")])
    assert set(found) == {"conformance.managed-key.hashedrekord-pubkey.sigstore.json"}
    (f,) = found["conformance.managed-key.hashedrekord-pubkey.sigstore.json"]
    assert f.kind is FindingKind.WATCHED_USE
    assert f.severity is Severity.CRITICAL
    assert f.matched == (("key_fingerprint", MANAGED_KEY),)
    # the same key with an expect it cannot meet: a bare key, so unexpected_key_use
    strict = rule("key-dsse-only", {"key_fingerprint": MANAGED_KEY.upper()}, {"kind": "dsse"})
    (f,) = run([strict])["conformance.managed-key.hashedrekord-pubkey.sigstore.json"]
    assert f.kind is FindingKind.UNEXPECTED_KEY_USE
    assert f.unmet == (Unmet("kind", ("dsse",), ("hashedrekord",)),)


def test_subject_rule_matches_npm_provenance() -> None:
    found = run([rule("npm-sigstore", {"subject": "pkg:npm/sigstore@*"})])
    assert set(found) == JS_PROVENANCE | {
        "sigstore-js.bundleV03-dsse.sigstore.json",
        "sigstore-js.bundleV03-intoto.sigstore.json",
    }
    subjects = {f.matched for fs in found.values() for f in fs}
    assert (("subject", "pkg:npm/sigstore@2.0.0"),) in subjects
    assert (("subject", "pkg:npm/sigstore@2.1.0"),) in subjects


def test_image_rule_matches_the_cosign_attestation() -> None:
    found = run([rule("image", {"subject": "127.0.0.1:60943/repo"})])
    assert set(found) == {"cosign.oci-attestation.dsse.sigstore.json"}
    # and by its digest, with or without the algorithm, any case
    record = checked()["cosign.oci-attestation.dsse.sigstore.json"]
    digest = record.subjects[0].digests[0]
    for pattern in (str(digest), digest.value, digest.value.upper()):
        found = run([rule("image-digest", {"subject_digest": pattern})])
        assert set(found) == {"cosign.oci-attestation.dsse.sigstore.json"}


def test_issue_example_rules_match_nothing_real() -> None:
    rules = [
        rule(
            "acme-release-signing",
            {"extensions": {"source-repository-owner-uri": "https://github.com/acme"}},
            {
                "issuer": GHA,
                "san": "https://github.com/acme/*/.github/workflows/release.yml@refs/tags/v*",
                "extensions": {"runner-environment": "github-hosted"},
            },
        ),
        rule("maintainer-emails", {"san": ["*@acme.com", {"regex": "ops-[a-z]+@acme\\.io"}]}),
        rule("app-image", {"subject": "ghcr.io/acme/app*"}, {"san": "https://github.com/acme/*"}),
    ]
    assert run(rules) == {}


def test_staging_certificate_never_satisfies_expect_under_the_production_root() -> None:
    name = "conformance.rekor2-dsse-happy-path.staging-witnessed.sigstore.json"
    beacon = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon"
    r = rule(
        "beacon",
        {"extensions": {"source-repository-uri": beacon}},
        {"issuer": GHA, "extensions": {"runner-environment": "github-hosted"}},
    )
    found = run([r])
    assert {n for n, fs in found.items() if fs[0].kind is FindingKind.EXPECTED_USE} == {
        "conformance.happy-path-intoto-in-dsse-v3.dsse.sigstore.json",
        "conformance.happy-path-v0.1.hashedrekord.sigstore.json",
        "conformance.happy-path-v0.3.hashedrekord.sigstore.json",
    }
    (f,) = found[name]
    assert f.kind is FindingKind.UNEXPECTED_SIGNER
    assert f.unmet == (Unmet("fulcio_chain", ("verified",), ("untrusted",)),)


def test_chain_checked_only_for_entries_an_expect_rule_matched() -> None:
    engine = RuleEngine.compile(
        [
            JS_RULE,
            rule("maintainer", {"san": "*@dehamer.com"}),
            rule("offline-root-key", {"key_fingerprint": MANAGED_KEY}),
        ]
    )
    checked_names: list[str] = []

    def check(record: SigningRecord) -> ParseResult:
        checked_names.append(record.signers[0].fingerprint)
        return _check()(record)

    kinds = {}
    for name, record in unchecked().items():
        for f in engine.evaluate(record, check):
            kinds[(name, f.rule)] = f.kind
    assert len(checked_names) == 2  # the two sigstore-js provenance entries, once each
    assert {n for (n, r) in kinds if r == JS_RULE.name} == JS_PROVENANCE
    assert all(k is FindingKind.EXPECTED_USE for (_, r), k in kinds.items() if r == JS_RULE.name)


def test_matching_walk_agrees_with_record_fields() -> None:
    """The engine reads records directly; it must see exactly what ``record_fields`` lists.
    One exact rule per (field, value) seen in any fixture, one ``*`` rule per field."""
    records = checked()
    pairs = sorted(
        {(f, v) for r in records.values() for f, vs in record_fields(r).items() for v in vs}
    )
    rules = [
        RuleSpec(f"{f}={v}", Selector(((f, (Pattern(PatternKind.EXACT, v),)),)), None, Severity.LOW)
        for f, v in pairs
    ]
    fields = sorted({f for f, _ in pairs})
    rules += [
        RuleSpec(f"{f}=*", Selector(((f, (Pattern(PatternKind.GLOB, "*"),)),)), None, Severity.LOW)
        for f in fields
    ]
    assert len(rules) > 400
    engine = RuleEngine.compile(rules)
    for name, record in records.items():
        have = record_fields(record)
        want = {f"{f}={v}" for f, vs in have.items() for v in vs} | {f"{f}=*" for f in have}
        got = {m.rule.name for m in engine.matching_rules(record)}
        assert got == want, name


def test_one_signer_field_agrees_with_all_signer_fields() -> None:
    """``expect`` reads one field at a time; it must see what ``signer_fields`` lists."""
    absent = ("ext:deployment-environment", "ext:9.9.9", "digest", "subject", "kind")
    for record in checked().values():
        for signer in record.signers:
            every = signer_fields(signer)
            for field in (*every, *SIGNER_FIELDS, *absent):
                assert signer_field(signer, field) == every.get(field, ()), field


@pytest.mark.parametrize("name", sorted(p.name for p in ENTRY_FILES))
def test_findings_serialise(name: str) -> None:
    engine = RuleEngine.compile([JS_RULE, rule("all", {"log": "rekor"})])
    for f in engine.evaluate(checked()[name]):
        doc = f.to_json()
        assert json.loads(json.dumps(doc)) == doc
        assert doc["rule"] in {"all", JS_RULE.name}
        assert doc["detail"].isprintable()
