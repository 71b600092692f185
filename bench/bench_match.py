"""Watch-rule matching cost per entry, with 1,000 rules and with 10, on the realistic corpus.

The 1,000 rules are mostly exact SAN, extension and key rules over distinct values, with some
globs and regexes, and a few that match the corpus (some with ``expect``). Entries are parsed
and chain-checked once beforehand: what is timed is ``RuleEngine.evaluate`` (and, apart,
``RuleEngine.matching_rules``), field extraction included.

Run: .venv/bin/python -m bench.bench_match [--seconds S]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.corpus import corpus
from monitor.core.findings import Severity
from monitor.entries.parse import parse_entry, with_chain_status
from monitor.entries.record import SigningRecord
from monitor.rules.engine import RuleEngine
from monitor.rules.spec import PatternKind, RuleSpec, Selector
from monitor.trust import load_trust_root

TARGET_US = 20.0
GHA = "https://token.actions.githubusercontent.com"


def _rule(name: str, match: dict[str, Any], expect: dict[str, Any] | None = None) -> RuleSpec:
    return RuleSpec(
        name,
        Selector.parse(match),
        Selector.parse(expect) if expect is not None else None,
        Severity.HIGH,
    )


def _hex(i: int, salt: str) -> str:
    return hashlib.sha256(f"{salt}{i}".encode()).hexdigest()


def matching_rules() -> list[RuleSpec]:
    """Rules that match part of the corpus."""
    return [
        _rule(
            "sigstore-js-release",
            {"extensions": {"source-repository-uri": "https://github.com/sigstore/sigstore-js"}},
            {
                "san": "https://github.com/sigstore/sigstore-js/.github/workflows/"
                "release.yml@refs/heads/main",
                "issuer": GHA,
                "extensions": {"runner-environment": "github-hosted"},
            },
        ),
        _rule(
            "conformance-beacon",
            {
                "extensions": {
                    "source-repository-owner-uri": "https://github.com/sigstore-conformance"
                }
            },
            {"issuer": GHA, "san": "https://github.com/sigstore-conformance/*@refs/tags/*"},
        ),
        _rule("maintainer", {"san": "*@dehamer.com"}),
        _rule(
            "managed-key",
            {
                "key_fingerprint": "sha256:4cb32c4837c6dda8cfb1681efb3fef5f94ffce5b979e6bdb"
                "9139302c857af139"
            },
        ),
        _rule("npm-sigstore", {"subject": "pkg:npm/sigstore@*"}),
    ]


def other_rules(n: int) -> list[RuleSpec]:
    """``n`` rules over values absent from the corpus: mostly exact, some globs and regexes."""
    makers: list[tuple[int, Callable[[int], RuleSpec]]] = [
        (
            30,
            lambda i: _rule(
                f"san-{i}",
                {
                    "san": f"https://github.com/org{i}/repo{i}/.github/workflows/release.yml"
                    f"@refs/tags/v{i}"
                },
            ),
        ),
        (10, lambda i: _rule(f"email-{i}", {"san": f"user{i}@corp{i}.example"})),
        (
            15,
            lambda i: _rule(
                f"owner-{i}",
                {"extensions": {"source-repository-owner-uri": f"https://github.com/org{i}"}},
                {"san": f"https://github.com/org{i}/*/.github/workflows/release.yml@refs/tags/v*"},
            ),
        ),
        (
            10,
            lambda i: _rule(
                f"repo-{i}",
                {"extensions": {"source-repository-uri": f"https://github.com/org{i}/app{i}"}},
            ),
        ),
        (15, lambda i: _rule(f"key-{i}", {"key_fingerprint": "sha256:" + _hex(i, "key")})),
        (3, lambda i: _rule(f"cert-{i}", {"cert_fingerprint": "sha256:" + _hex(i, "cert")})),
        (3, lambda i: _rule(f"digest-{i}", {"digest": _hex(i, "digest")})),
        (4, lambda i: _rule(f"glob-email-{i}", {"san": f"*@corp{i}.example"})),
        (
            3,
            lambda i: _rule(
                f"glob-wf-{i}", {"san": f"https://github.com/org{i}/*/.github/workflows/*"}
            ),
        ),
        (2, lambda i: _rule(f"glob-image-{i}", {"subject": f"ghcr.io/org{i}/*"})),
        (3, lambda i: _rule(f"regex-{i}", {"san": {"regex": f"ops{i}-[a-z]+@corp\\.example"}})),
        (
            2,
            lambda i: _rule(
                f"regex-signer-{i}",
                {
                    "extensions": {
                        "build-signer-uri": {
                            "regex": f"https://github\\.com/org{i}/[^/]+/\\.github/.*"
                        }
                    }
                },
            ),
        ),
    ]
    weights = sum(w for w, _ in makers)
    out: list[RuleSpec] = []
    i = 0
    while len(out) < n:
        for weight, make in makers:
            for _ in range(max(1, weight * n // weights)):
                if len(out) < n:
                    out.append(make(i))
                    i += 1
    return out


def rule_set(total: int) -> list[RuleSpec]:
    hits = matching_rules()
    return [*hits, *other_rules(total - len(hits))]


def _describe(rules: list[RuleSpec]) -> str:
    kinds = dict.fromkeys(PatternKind, 0)
    for r in rules:
        for _, patterns in r.match.fields:
            for p in patterns:
                kinds[p.kind] += 1
    parts = ", ".join(f"{n} {k}" for k, n in kinds.items())
    return f"{len(rules)} rules (match patterns: {parts}; {len(matching_rules())} match the corpus)"


def _time(fn: Callable[[], object], seconds: float, per_call: int) -> float:
    """Median microseconds per entry over repeated passes of ``fn`` (``per_call`` entries)."""
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(samples) < 5:
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) / per_call * 1e6)
    return statistics.median(samples)


def run(seconds: float) -> list[dict[str, Any]]:
    cas = load_trust_root().certificate_authorities
    samples = corpus()
    parsed: dict[str, SigningRecord] = {}
    unchecked: list[SigningRecord] = []
    for s in samples:
        if s.name not in parsed:
            r = parse_entry(s.body, log="rekor", index=len(parsed), attestation=s.attestation)
            assert isinstance(r, SigningRecord), s.name
            parsed[s.name] = r
        unchecked.append(parsed[s.name])
    checked_once = {}
    for name, r in parsed.items():
        c = with_chain_status(r, cas)
        assert isinstance(c, SigningRecord)
        checked_once[name] = c
    records = [checked_once[s.name] for s in samples]

    results = []
    for total in (1000, 10):
        rules = rule_set(total)
        t0 = time.perf_counter()
        engine = RuleEngine.compile(rules)
        compile_ms = (time.perf_counter() - t0) * 1e3
        findings = [f for r in records for f in engine.evaluate(r)]
        calls = 0

        def counting(r: SigningRecord) -> SigningRecord:
            nonlocal calls
            calls += 1
            return r

        for r in records:
            engine.evaluate(r, counting)
        assert calls == 0, "pre-checked records must not be checked again"
        for r in unchecked:
            engine.evaluate(r, counting)

        def match_all(engine: RuleEngine = engine) -> None:
            for r in records:
                engine.matching_rules(r)

        def evaluate_all(engine: RuleEngine = engine) -> None:
            for r in records:
                engine.evaluate(r)

        results.append(
            {
                "rules": rules,
                "compile_ms": compile_ms,
                "match_us": _time(match_all, seconds / 4, len(records)),
                "evaluate_us": _time(evaluate_all, seconds / 4, len(records)),
                "findings": len(findings),
                "entries": len(records),
                "chain_checks": calls,
            }
        )
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=4.0)
    args = p.parse_args()
    for res in run(args.seconds):
        ok = "within" if res["evaluate_us"] < TARGET_US else "OVER"
        print(f"{_describe(res['rules'])}, compiled in {res['compile_ms']:.0f} ms")
        print(
            f"  evaluate: {res['evaluate_us']:.1f} us per entry ({ok} the {TARGET_US:.0f} us "
            f"target); matching_rules alone: {res['match_us']:.1f} us per entry"
        )
        per_finding = (
            (res["evaluate_us"] - res["match_us"]) * res["entries"] / res["findings"]
            if res["findings"]
            else 0.0
        )
        print(
            f"  {res['findings']} findings per {res['entries']} entries (about "
            f"{per_finding:.0f} us each to judge expect and build); chain checks needed if "
            f"unchecked: {res['chain_checks']} per {res['entries']} entries"
        )


if __name__ == "__main__":
    main()
