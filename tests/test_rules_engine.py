"""The rule engine on records built here: every operator, every field, AND and OR, expect and
its unmet fields, the Fulcio chain rule, finding kinds and dedup keys, when the chain check
runs; then property tests (a glob and its regex agree, a missing field never matches, exact
is string equality)."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.errors import ConfigError
from monitor.core.findings import Finding, FindingKind, FindingState, Severity, Unmet, dedup_key
from monitor.entries.record import (
    CertExtension,
    CertificateSigner,
    ChainStatus,
    Digest,
    KeySigner,
    MalformedEntry,
    ParseResult,
    SanType,
    Signer,
    SigningRecord,
    Subject,
    SubjectAltName,
)
from monitor.entries.x509 import FULCIO_EXTENSION_OIDS
from monitor.rules.engine import RuleEngine, malformed_finding, variants
from monitor.rules.fields import record_fields, record_level_fields, signer_fields
from monitor.rules.spec import Pattern, PatternKind, RuleSpec, Selector

GHA = "https://token.actions.githubusercontent.com"
RELEASE = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.2.3"
CERT_FP = "sha256:" + "c0" * 32
CERT_KEY_FP = "sha256:" + "d1" * 32
BARE_KEY_FP = "sha256:" + "4e" * 32
ARTIFACT = Digest("sha256", "ab" * 32)
PAYLOAD = Digest("sha256", "9f" * 32)
SUBJECT_DIGEST = Digest("sha512", "5e" * 64)
KEY_USAGE_OID = "2.5.29.15"  # not a Fulcio extension: kept by OID, value in hex

DEFAULT_EXT = {
    "source-repository-uri": "https://github.com/acme/app",
    "source-repository-owner-uri": "https://github.com/acme",
    "runner-environment": "github-hosted",
    "build-signer-uri": RELEASE,
}


def ext(name: str, value: str) -> CertExtension:
    return CertExtension(FULCIO_EXTENSION_OIDS[name], name, value)


def cert(
    *sans: str,
    issuer: str | None = GHA,
    extensions: dict[str, str] | None = None,
    chain: ChainStatus = ChainStatus.VERIFIED,
    fingerprint: str = CERT_FP,
    key_fingerprint: str = CERT_KEY_FP,
    san_type: SanType = SanType.URI,
) -> CertificateSigner:
    exts = [ext(k, v) for k, v in (DEFAULT_EXT if extensions is None else extensions).items()]
    exts.append(CertExtension(KEY_USAGE_OID, None, "03020780", critical=True))
    return CertificateSigner(
        sans=tuple(SubjectAltName(san_type, s) for s in (sans or (RELEASE,))),
        issuer=issuer,
        extensions=tuple(exts),
        serial="01",
        not_before=datetime(2025, 1, 1, tzinfo=UTC),
        not_after=datetime(2025, 1, 1, 0, 10, tzinfo=UTC),
        issuer_dn="O=sigstore.dev, CN=sigstore-intermediate",
        subject_dn="",
        fingerprint=fingerprint,
        key=KeySigner("ecdsa", key_fingerprint, 256, "P-256"),
        chain=chain,
    )


def key(fingerprint: str = BARE_KEY_FP) -> KeySigner:
    return KeySigner("ecdsa", fingerprint, 256, "P-256")


def rec(
    *signers: Signer,
    kind: str = "hashedrekord",
    log: str = "rekor",
    index: int = 42,
    digests: tuple[Digest, ...] = (ARTIFACT,),
    payload: Digest | None = None,
    subjects: tuple[Subject, ...] = (),
    known: bool = True,
) -> SigningRecord:
    return SigningRecord(
        log=log,
        index=index,
        kind=kind,
        api_version="0.0.1",
        known=known,
        signers=signers if signers else (cert(),),
        artifact_digests=digests,
        payload_hash=payload,
        subjects=subjects,
    )


def unknown(kind: str = "cose", log: str = "rekor") -> SigningRecord:
    return SigningRecord(log=log, index=7, kind=kind, api_version="9.9.9", known=False)


def rule(
    name: str, match: dict[str, Any], expect: dict[str, Any] | None = None, sev: str = "high"
) -> RuleSpec:
    return RuleSpec(
        name,
        Selector.parse(match),
        Selector.parse(expect) if expect is not None else None,
        Severity.parse(sev),
    )


def matches(match: dict[str, Any], record: SigningRecord) -> bool:
    return bool(RuleEngine.compile([rule("r", match)]).matching_rules(record))


def evaluate(rules: list[RuleSpec], record: SigningRecord, **kw: Any) -> list[Finding]:
    return RuleEngine.compile(rules).evaluate(record, **kw)


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


# --- operators ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ("dev@acme.com", True),
        ("Dev@acme.com", False),
        ("dev@acme.com.evil", False),
        ("xdev@acme.com", False),
        ("dev@acme.co", False),
    ],
)
def test_exact_is_string_equality(value: str, want: bool) -> None:
    assert matches({"san": "dev@acme.com"}, rec(cert(value))) is want


@pytest.mark.parametrize(
    ("glob", "value", "want"),
    [
        ("*@acme.com", "dev@acme.com", True),
        ("*@acme.com", "@acme.com", True),  # * matches the empty string
        ("*@acme.com", "dev@acme.com.evil", False),
        ("dev@*", "dev@anything.at/all", True),
        ("https://github.com/acme/*", "https://github.com/acme/app/.github/x.yml@y", True),
        ("https://github.com/acme/*", "https://github.com/acmex/app", False),
        ("https://github.com/*/.github/workflows/release.yml@*", RELEASE, True),
        ("https://github.com/*/.github/workflows/release.yml@*", RELEASE + "x/../", True),
        ("*/acme/*/release.yml@refs/tags/v*", "https://github.com/acme/app/release.yml@", False),
        ("*", "anything at all", True),
        ("a*b*c", "abc", True),
        ("a*b*c", "a-c-b", False),
        # every other character is literal: . ? [ ( + \ are not operators in a glob
        ("a.b*", "axb", False),
        ("a.b*", "a.b", True),
        ("a?b*", "a?bc", True),
        ("a?b*", "axb", False),
        ("[ab]*", "a", False),
        ("[ab]*", "[ab]", True),
        ("(a|b)*", "a", False),
        ("a+*", "aa", False),
        ("a\\d*", "a\\d9", True),
        ("x*", "x\nnewline", True),  # * matches anything, newline included
    ],
)
def test_glob(glob: str, value: str, want: bool) -> None:
    assert Pattern.parse(glob).kind is PatternKind.GLOB
    assert matches({"san": glob}, rec(cert(value))) is want


@pytest.mark.parametrize(
    ("regex", "value", "want"),
    [
        ("ops-[a-z]+@acme\\.io", "ops-dev@acme.io", True),
        ("ops-[a-z]+@acme\\.io", "xops-dev@acme.io", False),  # anchored at the start
        ("ops-[a-z]+@acme\\.io", "ops-dev@acme.io.evil", False),  # and at the end
        ("ops-[a-z]+@acme\\.io", "ops-dev@acmexio", False),
        ("ops|dev", "ops-dev", False),  # alternation does not escape the anchors
        ("ops|dev", "dev", True),
        ("^ops$", "ops", True),
        (".*@acme\\.(io|com)", "a@acme.com", True),
        ("(?i)OPS@ACME\\.IO", "ops@acme.io", True),
    ],
)
def test_regex_is_anchored(regex: str, value: str, want: bool) -> None:
    assert matches({"san": {"regex": regex}}, rec(cert(value))) is want


def test_invalid_regex_is_a_config_error() -> None:
    bad = RuleSpec(
        "bad", Selector((("san", (Pattern(PatternKind.REGEX, "(unclosed"),)),)), None, Severity.LOW
    )
    with pytest.raises(ConfigError, match="san: invalid pattern"):
        RuleEngine.compile([bad])
    with pytest.raises(ConfigError):
        Selector.parse({"san": {"regex": "(unclosed"}})
    with pytest.raises(ConfigError, match="not valid Unicode"):
        Selector.parse({"san": "a*\ud800"})


def test_regex_runs_in_linear_time() -> None:
    """A catastrophic pattern for backtracking engines is instant in RE2."""
    engine = RuleEngine.compile([rule("r", {"san": [{"regex": "(a*)*b"}, {"regex": "(a|aa)*c"}]})])
    start = time.perf_counter()
    assert not engine.matching_rules(rec(cert("a" * 100_000)))
    assert time.perf_counter() - start < 1.0


# --- fields ---------------------------------------------------------------------------------

SUBJECT = Subject("ghcr.io/acme/app", (SUBJECT_DIGEST,))

# (selector, a record that has it, the same record without it)
FIELD_CASES: list[tuple[str, dict[str, Any], SigningRecord, SigningRecord]] = [
    ("san", {"san": "dev@acme.com"}, rec(cert("dev@acme.com")), rec(cert("x@acme.com"))),
    ("issuer", {"issuer": GHA}, rec(cert()), rec(cert(issuer="https://accounts.google.com"))),
    (
        "ext-by-name",
        {"extensions": {"source-repository-uri": "https://github.com/acme/app"}},
        rec(cert()),
        rec(cert(extensions={"source-repository-uri": "https://github.com/acme/other"})),
    ),
    (
        "ext-by-fulcio-oid",
        {"extensions": {"1.3.6.1.4.1.57264.1.11": "github-hosted"}},
        rec(cert()),
        rec(cert(extensions={"runner-environment": "self-hosted"})),
    ),
    (
        "ext-by-other-oid",
        {"extensions": {KEY_USAGE_OID: "03020780"}},
        rec(cert()),
        rec(key()),
    ),
    ("key-bare", {"key_fingerprint": BARE_KEY_FP}, rec(key()), rec(key("sha256:" + "00" * 32))),
    ("key-in-cert", {"key_fingerprint": CERT_KEY_FP}, rec(cert()), rec(key())),
    ("cert", {"cert_fingerprint": CERT_FP}, rec(cert()), rec(key(CERT_FP))),
    ("digest-artifact", {"digest": str(ARTIFACT)}, rec(), rec(digests=())),
    (
        "digest-payload",
        {"digest": str(PAYLOAD)},
        rec(digests=(), payload=PAYLOAD),
        rec(digests=(ARTIFACT,), payload=None),
    ),
    ("subject", {"subject": "ghcr.io/acme/app"}, rec(subjects=(SUBJECT,)), rec()),
    (
        "subject-digest",
        {"subject_digest": str(SUBJECT_DIGEST)},
        rec(subjects=(SUBJECT,)),
        rec(subjects=(Subject("ghcr.io/acme/app", ()),)),
    ),
    ("kind", {"kind": "dsse"}, rec(kind="dsse"), rec(kind="hashedrekord")),
    ("log", {"log": "rekor-v2"}, rec(log="rekor-v2"), rec(log="rekor")),
]


@pytest.mark.parametrize(
    ("selector", "having", "lacking"),
    [c[1:] for c in FIELD_CASES],
    ids=[c[0] for c in FIELD_CASES],
)
def test_every_field(
    selector: dict[str, Any], having: SigningRecord, lacking: SigningRecord
) -> None:
    assert matches(selector, having)
    assert not matches(selector, lacking)


def test_key_fingerprint_is_not_cert_fingerprint() -> None:
    assert not matches({"key_fingerprint": CERT_FP}, rec(cert()))
    assert not matches({"cert_fingerprint": CERT_KEY_FP}, rec(cert()))


def test_extension_by_name_and_by_oid_are_one_field() -> None:
    by_name = {"extensions": {"runner-environment": "github-hosted"}}
    by_oid = {"extensions": {FULCIO_EXTENSION_OIDS["runner-environment"]: "github-hosted"}}
    assert Selector.parse(by_name) == Selector.parse(by_oid)
    # a rule written directly with ext:<Fulcio OID> sees the same value
    direct = RuleSpec(
        "r",
        Selector(((f"ext:{FULCIO_EXTENSION_OIDS['runner-environment']}", (Pattern.parse("*"),)),)),
        None,
        Severity.LOW,
    )
    engine = RuleEngine.compile([direct])
    assert engine.matching_rules(rec(cert()))
    assert not engine.matching_rules(rec(cert(extensions={})))


@pytest.mark.parametrize(
    "pattern",
    [
        str(ARTIFACT),
        ARTIFACT.value,
        str(ARTIFACT).upper(),
        ARTIFACT.value.upper(),
        "SHA256:" + ARTIFACT.value[:10].upper() + "*",
        ARTIFACT.value[:8].upper() + "*",
        "*" + ARTIFACT.value[-6:],
    ],
)
def test_digest_with_or_without_algorithm_any_case(pattern: str) -> None:
    assert matches({"digest": pattern}, rec())
    assert not matches({"digest": pattern}, rec(digests=(Digest("sha256", "12" * 32),)))


def test_digest_algorithm_must_agree() -> None:
    assert not matches({"digest": "sha512:" + ARTIFACT.value}, rec())


def test_subject_digest_with_or_without_algorithm() -> None:
    record = rec(subjects=(SUBJECT,))
    assert matches({"subject_digest": SUBJECT_DIGEST.value.upper()}, record)
    assert matches({"subject_digest": str(SUBJECT_DIGEST)}, record)
    assert not matches({"subject_digest": str(ARTIFACT)}, record)


def test_ssh_fingerprints_keep_their_case() -> None:
    ssh = "SHA256:AbCdEf0123456789+/xyzXYZ"
    assert variants("key_fingerprint", Pattern.parse(ssh)) == (Pattern.parse(ssh),)
    assert variants("key_fingerprint", Pattern.parse("SHA256:*")) == (Pattern.parse("SHA256:*"),)
    assert variants("san", Pattern.parse("SHA256:AB*")) == (Pattern.parse("SHA256:AB*"),)
    assert variants("digest", Pattern.parse("SHA256:AB*")) == (
        Pattern.parse("SHA256:AB*"),
        Pattern.parse("sha256:ab*"),
    )
    record = rec(KeySigner("ssh", ssh))
    assert matches({"key_fingerprint": ssh}, record)
    assert matches({"key_fingerprint": "SHA256:AbC*"}, record)
    assert not matches({"key_fingerprint": ssh.lower()}, record)


def test_fields_and_across_or_within() -> None:
    record = rec(cert("dev@acme.com", san_type=SanType.EMAIL))
    both = {"san": "dev@acme.com", "issuer": GHA}
    assert matches(both, record)
    assert not matches({**both, "issuer": "https://accounts.google.com"}, record)
    assert not matches({**both, "kind": "dsse"}, record)
    either = {"san": ["x@acme.com", "dev@acme.com"]}
    assert matches(either, record)
    assert matches({"san": ["x@acme.com", "*@acme.com", {"regex": "nope"}]}, record)
    assert not matches({"san": ["x@acme.com", {"regex": "dev@acme"}]}, record)
    # AND holds even when both clauses name one field (by extension name and by OID)
    oid = FULCIO_EXTENSION_OIDS["runner-environment"]
    twice = {"extensions": {"runner-environment": "github-hosted", oid: "self-hosted"}}
    assert not matches(twice, record)
    twice_ok = {"extensions": {"runner-environment": "github-*", oid: "*-hosted"}}
    assert matches(twice_ok, record)


def test_any_signer_satisfies_match() -> None:
    record = rec(cert("dev@acme.com"), key())
    assert matches({"san": "dev@acme.com", "key_fingerprint": BARE_KEY_FP}, record)


@pytest.mark.parametrize(
    "selector",
    [
        {"san": "*"},
        {"issuer": "*"},
        {"extensions": {"source-repository-uri": "*"}},
        {"extensions": {KEY_USAGE_OID: "*"}},
        {"cert_fingerprint": "*"},
        {"key_fingerprint": "*"},
        {"digest": "*"},
        {"subject": "*"},
        {"subject_digest": "*"},
        {"san": {"regex": ".*"}},
        {"subject": {"regex": "(?s).*"}},
    ],
)
def test_missing_field_never_matches(selector: dict[str, Any]) -> None:
    bare = SigningRecord(log="rekor", index=1, kind="hashedrekord", api_version="0.0.1")
    assert not matches(selector, bare)
    assert not matches(selector, unknown())


def test_missing_extension_or_issuer_never_matches() -> None:
    no_ext = rec(cert(issuer=None, extensions={}))
    assert not matches({"extensions": {"runner-environment": "*"}}, no_ext)
    assert not matches({"issuer": "*"}, no_ext)
    assert matches({"san": "*"}, no_ext)


def test_unknown_kind_has_only_kind_and_log() -> None:
    record = unknown("cose", "rekor")
    assert record_fields(record) == {"kind": ("cose",), "log": ("rekor",)}
    assert matches({"kind": "cose", "log": "rek*"}, record)
    f = only(evaluate([rule("odd-kinds", {"kind": "cose"})], record))
    assert f.kind is FindingKind.WATCHED_USE
    assert "no known signer" in f.detail


def test_record_fields() -> None:
    record = rec(
        cert("dev@acme.com", "https://acme.com/ci"),
        key(),
        digests=(ARTIFACT,),
        payload=PAYLOAD,
        subjects=(SUBJECT, Subject("other", ())),
    )
    f = record_fields(record)
    assert f["san"] == ("dev@acme.com", "https://acme.com/ci")
    assert f["issuer"] == (GHA,)
    assert f["ext:source-repository-uri"] == ("https://github.com/acme/app",)
    assert f["ext:" + FULCIO_EXTENSION_OIDS["source-repository-uri"]] == (
        "https://github.com/acme/app",
    )
    assert f["ext:" + KEY_USAGE_OID] == ("03020780",)
    assert f["key_fingerprint"] == (CERT_KEY_FP, BARE_KEY_FP)
    assert f["cert_fingerprint"] == (CERT_FP,)
    assert f["digest"] == (str(ARTIFACT), ARTIFACT.value, str(PAYLOAD), PAYLOAD.value)
    assert f["subject"] == ("ghcr.io/acme/app", "other")
    assert f["subject_digest"] == (str(SUBJECT_DIGEST), SUBJECT_DIGEST.value)
    assert f["kind"] == ("hashedrekord",)
    assert f["log"] == ("rekor",)
    assert all(values for values in f.values())
    assert set(record_level_fields(record)) == {
        "digest",
        "subject",
        "subject_digest",
        "kind",
        "log",
    }
    assert signer_fields(record.signers[1]) == {"key_fingerprint": (BARE_KEY_FP,)}
    assert record_fields(record) == {
        **signer_fields(record.signers[0]),
        **record_level_fields(record),
        "key_fingerprint": (CERT_KEY_FP, BARE_KEY_FP),
    }
    # duplicates collapse
    twice = rec(cert(), cert())
    assert record_fields(twice)["issuer"] == (GHA,)


# --- expect ---------------------------------------------------------------------------------

ACME = {"extensions": {"source-repository-owner-uri": "https://github.com/acme"}}
ACME_EXPECT = {
    "issuer": GHA,
    "san": "https://github.com/acme/*/.github/workflows/release.yml@refs/tags/v*",
    "extensions": {"runner-environment": "github-hosted"},
}
ACME_RULE = rule("acme-release-signing", ACME, ACME_EXPECT)


def test_expect_satisfied_is_expected_use() -> None:
    f = only(evaluate([ACME_RULE], rec(cert())))
    assert f.kind is FindingKind.EXPECTED_USE
    assert f.state is FindingState.RECORDED  # a record, not in the open queue
    assert f.unmet == ()
    assert f.severity is Severity.HIGH
    assert f.rule == "acme-release-signing"
    assert (f.log, f.index) == ("rekor", 42)
    assert f.matched == (("ext:source-repository-owner-uri", "https://github.com/acme"),)
    assert "as expected" in f.detail


def test_expect_unsatisfied_names_every_unmet_field() -> None:
    rogue = cert(
        "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main",
        extensions={**DEFAULT_EXT, "runner-environment": "self-hosted"},
    )
    f = only(evaluate([ACME_RULE], rec(rogue)))
    assert f.kind is FindingKind.UNEXPECTED_SIGNER
    assert f.unmet == (
        Unmet(
            "san",
            ("https://github.com/acme/*/.github/workflows/release.yml@refs/tags/v*",),
            ("https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main",),
        ),
        Unmet("ext:runner-environment", ("github-hosted",), ("self-hosted",)),
    )
    assert f.matched == (("ext:source-repository-owner-uri", "https://github.com/acme"),)
    assert "refs/heads/main" in f.detail
    assert "self-hosted" in f.detail
    assert "\n" not in f.detail


def test_expect_field_missing_is_unmet_with_no_actual_value() -> None:
    f = only(
        evaluate(
            [ACME_RULE],
            rec(cert(extensions={"source-repository-owner-uri": "https://github.com/acme"})),
        )
    )
    assert f.kind is FindingKind.UNEXPECTED_SIGNER
    assert Unmet("ext:runner-environment", ("github-hosted",), ()) in f.unmet
    assert "absent" in f.detail


def test_expect_lists_patterns_as_written() -> None:
    r = rule(
        "r",
        {"san": "*"},
        {"san": ["a@acme.com", {"regex": "ops-[a-z]+@acme\\.io"}], "digest": "SHA256:FF*"},
    )
    f = only(evaluate([r], rec(cert("x@evil.com"))))
    assert f.unmet == (
        Unmet("san", ("a@acme.com", "regex:ops-[a-z]+@acme\\.io"), ("x@evil.com",)),
        Unmet("digest", ("SHA256:FF*",), (str(ARTIFACT), ARTIFACT.value)),
    )


@pytest.mark.parametrize("status", [ChainStatus.UNTRUSTED, ChainStatus.UNCHECKED])
def test_certificate_not_chaining_to_fulcio_never_satisfies_expect(status: ChainStatus) -> None:
    f = only(evaluate([ACME_RULE], rec(cert(chain=status))))
    assert f.kind is FindingKind.UNEXPECTED_SIGNER
    assert f.unmet == (Unmet("fulcio_chain", ("verified",), (str(status),)),)
    assert "fulcio_chain" in f.detail


def test_chain_status_does_not_matter_without_expect() -> None:
    f = only(evaluate([rule("w", ACME)], rec(cert(chain=ChainStatus.UNTRUSTED))))
    assert f.kind is FindingKind.WATCHED_USE


def test_key_rule_with_expect_gives_unexpected_key_use() -> None:
    r = rule("k", {"key_fingerprint": BARE_KEY_FP}, {"kind": "dsse"})
    f = only(evaluate([r], rec(key())))
    assert f.kind is FindingKind.UNEXPECTED_KEY_USE
    assert f.unmet == (Unmet("kind", ("dsse",), ("hashedrekord",)),)
    assert only(evaluate([r], rec(key(), kind="dsse"))).kind is FindingKind.EXPECTED_USE


def test_every_signer_must_satisfy_expect() -> None:
    r = rule("r", {"san": "*@acme.com"}, {"issuer": "https://accounts.google.com"})
    good = cert("dev@acme.com", issuer="https://accounts.google.com")
    bad = cert("mallory@evil.com", issuer=GHA, fingerprint="sha256:" + "ee" * 32)
    assert only(evaluate([r], rec(good))).kind is FindingKind.EXPECTED_USE
    f = only(evaluate([r], rec(good, bad)))
    assert f.kind is FindingKind.UNEXPECTED_SIGNER
    assert f.unmet == (Unmet("issuer", ("https://accounts.google.com",), (GHA,)),)
    # a bare key beside a certificate is judged too, and it has no issuer
    f = only(evaluate([r], rec(good, key())))
    assert f.kind is FindingKind.UNEXPECTED_SIGNER
    assert f.unmet == (Unmet("issuer", ("https://accounts.google.com",), ()),)


def test_rule_without_expect_is_watched_use() -> None:
    r = rule("offline-root-key", {"key_fingerprint": BARE_KEY_FP}, sev="critical")
    f = only(evaluate([r], rec(key())))
    assert f.kind is FindingKind.WATCHED_USE
    assert f.severity is Severity.CRITICAL
    assert f.matched == (("key_fingerprint", BARE_KEY_FP),)
    assert f.unmet == ()


def test_several_rules_one_finding_each_in_rule_order() -> None:
    rules = [
        rule("no-match", {"san": "nobody@nowhere"}),
        rule("emails", {"san": "*@acme.com"}, sev="medium"),
        ACME_RULE,
        rule("tags-only", ACME, {"san": "*@refs/tags/v9*"}),
        rule("digest", {"digest": ARTIFACT.value}, sev="low"),
    ]
    record = rec(cert(RELEASE, "dev@acme.com"))
    findings = evaluate(rules, record)
    assert [(f.rule, f.kind) for f in findings] == [
        ("emails", FindingKind.WATCHED_USE),
        ("acme-release-signing", FindingKind.EXPECTED_USE),
        ("tags-only", FindingKind.UNEXPECTED_SIGNER),
        ("digest", FindingKind.WATCHED_USE),
    ]
    assert [f.severity for f in findings] == [
        Severity.MEDIUM,
        Severity.HIGH,
        Severity.HIGH,
        Severity.LOW,
    ]
    assert findings[0].matched == (("san", "dev@acme.com"),)
    assert findings[3].matched == (("digest", ARTIFACT.value),)


def test_matched_lists_every_satisfying_value() -> None:
    r = rule("r", {"san": ["*@acme.com", "dev@*"], "digest": "*"})
    m = RuleEngine.compile([r]).matching_rules(rec(cert("dev@acme.com", "ops@acme.com")))
    assert len(m) == 1
    assert m[0].rule == r
    assert m[0].position == 0
    assert m[0].matched == (
        ("san", "dev@acme.com"),
        ("san", "ops@acme.com"),
        ("digest", str(ARTIFACT)),
        ("digest", ARTIFACT.value),
    )


# --- dedup keys -----------------------------------------------------------------------------


def test_dedup_keys_stable_and_distinct() -> None:
    rules = [rule("a", {"san": "*"}), rule("b", {"san": "*"}), ACME_RULE]
    record = rec(cert())
    first = evaluate(rules, record)
    again = RuleEngine.compile(list(rules)).evaluate(record)  # a fresh engine: a restart
    assert [f.dedup_key for f in first] == [f.dedup_key for f in again]
    assert first[0].dedup_key == dedup_key(FindingKind.WATCHED_USE, "a", "rekor", 42)
    assert first[0].dedup_key == dedup_key("watched_use", "a", "rekor", 42)  # plain text
    keys = {f.dedup_key for f in first}
    keys |= {f.dedup_key for f in evaluate(rules, replace(record, index=43))}
    keys |= {f.dedup_key for f in evaluate(rules, replace(record, log="rekor-v2"))}
    keys |= {f.dedup_key for f in evaluate(rules, rec(cert(chain=ChainStatus.UNTRUSTED)))}
    assert len(keys) == 3 * 3 + 1  # the untrusted cert changes only the ACME rule's kind


def test_malformed_finding() -> None:
    entry = MalformedEntry("rekor", 9, "body is not JSON: x at byte 0", b"{", "dsse", "0.0.1")
    f = malformed_finding(entry)
    assert f.kind is FindingKind.MALFORMED_ENTRY
    assert f.severity is Severity.MEDIUM
    assert (f.log, f.index, f.rule) == ("rekor", 9, None)
    assert f.dedup_key == dedup_key("malformed_entry", "rekor", 9)
    assert f.dedup_key == malformed_finding(replace(entry, reason="other")).dedup_key
    assert f.dedup_key != malformed_finding(replace(entry, index=10)).dedup_key
    assert "body is not JSON" in f.detail
    assert "dsse 0.0.1" in f.detail
    assert "\n" not in malformed_finding(replace(entry, kind=None, reason="a\nb")).detail


def test_detail_is_one_printable_line() -> None:
    evil = "dev@acme.com\n[ALERT] all clear\x1b[2J" + "x" * 5000
    f = only(
        evaluate([rule("r", {"san": "dev@acme.com*"}, {"san": "ops@acme.com"})], rec(cert(evil)))
    )
    assert f.detail.isprintable()
    assert len(f.detail) < 1000
    assert f.unmet[0].actual == (evil,)  # the unmet value itself is kept whole


# --- the chain check runs only where it matters ---------------------------------------------


class CountingCheck:
    def __init__(self, status: ChainStatus = ChainStatus.VERIFIED) -> None:
        self.calls = 0
        self.status = status

    def __call__(self, record: SigningRecord) -> ParseResult:
        self.calls += 1
        signers = tuple(
            replace(s, chain=self.status) if isinstance(s, CertificateSigner) else s
            for s in record.signers
        )
        return replace(record, signers=signers)


def test_check_chain_called_only_when_needed() -> None:
    unchecked = rec(cert(chain=ChainStatus.UNCHECKED))
    engine = RuleEngine.compile([ACME_RULE, rule("tags", ACME, {"san": "*@refs/tags/*"})])
    watch_only = RuleEngine.compile([rule("w", ACME), rule("k", {"key_fingerprint": "*"})])
    key_rules = RuleEngine.compile([rule("k", {"key_fingerprint": "*"}, {"kind": "x"})])

    check = CountingCheck()
    assert engine.evaluate(rec(cert(extensions={})), check) == []  # no rule matched
    assert engine.matching_rules(unchecked)  # matching alone never checks
    assert len(watch_only.evaluate(unchecked, check)) == 2  # no expect
    assert len(engine.evaluate(rec(cert(chain=ChainStatus.VERIFIED)), check)) == 2
    assert len(engine.evaluate(rec(cert(chain=ChainStatus.UNTRUSTED)), check)) == 2
    assert len(key_rules.evaluate(rec(key()), check)) == 1  # no certificate
    assert check.calls == 0

    findings = engine.evaluate(unchecked, check)  # two expect rules: one check
    assert check.calls == 1
    assert [f.kind for f in findings] == [FindingKind.EXPECTED_USE, FindingKind.EXPECTED_USE]

    failing = CountingCheck(ChainStatus.UNTRUSTED)
    findings = engine.evaluate(unchecked, failing)
    assert failing.calls == 1
    assert all(f.kind is FindingKind.UNEXPECTED_SIGNER for f in findings)
    assert all(Unmet("fulcio_chain", ("verified",), ("untrusted",)) in f.unmet for f in findings)


def test_check_chain_keeps_matched_values_of_the_original_record() -> None:
    f = only(
        RuleEngine.compile([ACME_RULE]).evaluate(
            rec(cert(chain=ChainStatus.UNCHECKED)), CountingCheck()
        )
    )
    assert f.kind is FindingKind.EXPECTED_USE
    assert f.matched == (("ext:source-repository-owner-uri", "https://github.com/acme"),)


# --- scale ----------------------------------------------------------------------------------


def test_thousands_of_patterns_in_one_set() -> None:
    rules = [rule(f"g{i}", {"san": f"*@corp{i}.example"}) for i in range(2000)]
    rules += [rule(f"r{i}", {"san": {"regex": f"ops{i}-[a-z]+@acme\\.io"}}) for i in range(500)]
    rules += [rule(f"e{i}", {"san": f"user{i}@corp.example"}) for i in range(2000)]
    engine = RuleEngine.compile(rules)
    assert [m.rule.name for m in engine.matching_rules(rec(cert("x@corp1999.example")))] == [
        "g1999"
    ]
    assert [m.rule.name for m in engine.matching_rules(rec(cert("ops499-dev@acme.io")))] == ["r499"]
    assert [m.rule.name for m in engine.matching_rules(rec(cert("user7@corp.example")))] == ["e7"]
    assert engine.matching_rules(rec(cert("x@corp2000.example"))) == []


def test_identical_patterns_of_many_rules_share_one_entry() -> None:
    rules = [rule(f"r{i}", {"san": ["*@acme.com", "dev@acme.com"]}) for i in range(50)]
    findings = evaluate(rules, rec(cert("dev@acme.com")))
    assert [f.rule for f in findings] == [f"r{i}" for i in range(50)]
    assert all(f.matched == (("san", "dev@acme.com"),) for f in findings)


def test_lone_surrogates_are_matched_not_fatal() -> None:
    """JSON may carry a lone surrogate ("\\ud800") into a subject name: globs still see it."""
    record = rec(subjects=(Subject("ghcr.io/acme/app\ud800", ()),))
    assert matches({"subject": "ghcr.io/acme/app*"}, record)
    assert matches({"subject": "ghcr.io/acme/app\ud800"}, record)
    assert not matches({"subject": {"regex": "ghcr\\.io/acme/app"}}, record)


# --- properties -----------------------------------------------------------------------------

PROPERTY = settings(max_examples=300, deadline=None)
# a small alphabet so that globs and values collide often; regex metacharacters included,
# newline and a lone surrogate too
ALPHABET = st.sampled_from(list("ab/.@:-?+()[]{}|^$\\\n é\ud800"))
texts = st.text(ALPHABET, max_size=12)
globs = st.lists(texts, min_size=2, max_size=4).map("*".join)


def _reference_glob(glob: str, value: str) -> bool:
    regex = ".*".join(re.escape(part) for part in glob.split("*"))
    return re.fullmatch(regex, value, re.DOTALL) is not None


@PROPERTY
@given(glob=globs, values=st.lists(texts | globs, min_size=1, max_size=4))
def test_glob_and_its_regex_agree(glob: str, values: list[str]) -> None:
    as_glob = Pattern(PatternKind.GLOB, glob)
    as_regex = Pattern(PatternKind.REGEX, as_glob.as_regex())
    engine = RuleEngine.compile(
        [
            RuleSpec("glob", Selector((("san", (as_glob,)),)), None, Severity.LOW),
            RuleSpec("regex", Selector((("san", (as_regex,)),)), None, Severity.LOW),
        ]
    )
    for value in values:
        got = {m.rule.name for m in engine.matching_rules(rec(cert(value)))}
        want = _reference_glob(glob, value)
        assert got == ({"glob", "regex"} if want else set()), (glob, value)


field_selectors = st.sampled_from(
    [
        "san",
        "issuer",
        "ext:source-repository-uri",
        "ext:" + KEY_USAGE_OID,
        "key_fingerprint",
        "cert_fingerprint",
        "digest",
        "subject",
        "subject_digest",
    ]
)
patterns = st.one_of(
    texts.filter(bool).map(lambda t: Pattern(PatternKind.EXACT, t)),
    globs.map(lambda t: Pattern(PatternKind.GLOB, t)),
    st.just(Pattern(PatternKind.GLOB, "*")),
    st.just(Pattern(PatternKind.REGEX, "(?s).*")),
)


def _without(record: SigningRecord, field: str) -> SigningRecord:
    """``record`` with ``field`` taken away (and nothing else that could provide it)."""
    if field in ("digest",):
        return replace(record, artifact_digests=(), payload_hash=None)
    if field in ("subject", "subject_digest"):
        return replace(record, subjects=())
    if field in ("san", "issuer", "cert_fingerprint") or field.startswith("ext:"):
        return replace(record, signers=(key(),))
    return replace(record, signers=())  # key_fingerprint


@PROPERTY
@given(
    field=field_selectors,
    pats=st.lists(patterns, min_size=1, max_size=3),
    extra=st.sampled_from([None, ("kind", "hashedrekord"), ("log", "*")]),
)
def test_a_rule_never_matches_a_record_missing_its_field(
    field: str, pats: list[Pattern], extra: tuple[str, str] | None
) -> None:
    fields = [(field, tuple(pats))]
    if extra is not None:
        fields.append((extra[0], (Pattern.parse(extra[1]),)))
    r = RuleSpec("r", Selector(tuple(fields)), None, Severity.LOW)
    full = rec(cert("dev@acme.com"), key(), payload=PAYLOAD, subjects=(SUBJECT,))
    lacking = _without(full, field)
    assert field not in record_fields(lacking)
    engine = RuleEngine.compile([r])
    assert engine.matching_rules(lacking) == []
    assert engine.evaluate(lacking) == []
    assert engine.matching_rules(unknown()) == []


@PROPERTY
@given(pattern=texts.filter(bool), value=texts)
def test_exact_matching_is_string_equality(pattern: str, value: str) -> None:
    p = Pattern(PatternKind.EXACT, pattern)
    engine = RuleEngine.compile([RuleSpec("r", Selector((("san", (p,)),)), None, Severity.LOW)])
    assert bool(engine.matching_rules(rec(cert(value)))) is (value == pattern)
    assert bool(engine.matching_rules(rec(cert(pattern)))) is True
