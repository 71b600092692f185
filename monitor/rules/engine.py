"""The rule engine: signing records in, findings out.

Rules are compiled once. For every field a rule's ``match`` names, exact values go into one
hash table and every glob and regular expression of that field, from every rule, into one RE2
set matched in a single linear-time pass; both lead to the rule clauses they satisfy. A rule
matches when each of its clauses (one per selector field: AND) is satisfied by at least one
value of the record (a list of patterns: OR). The cost per entry is one lookup per value, plus
one set pass per value of a field that has globs or regexes: it does not grow with the number
of rules that cannot match. ``expect`` is evaluated only for the few rules that matched.

``expect`` is judged signer by signer: every signer of the entry must satisfy it (with the
entry's own fields: digests, subjects, kind, log), and a certificate that does not chain to a
Fulcio CA (``ChainStatus.VERIFIED``) never does. The chain check costs a signature
verification, so ``evaluate`` asks for it (``check_chain``) only when a rule with ``expect``
matched an entry whose certificates are still unchecked.

Pattern semantics: globs and regexes are anchored at both ends; ``.`` (and so a glob's ``*``)
matches any character, newline included. Exact and glob patterns on hex fields (``digest``,
``subject_digest``, ``key_fingerprint``, ``cert_fingerprint``) also match in lower-case hex,
as the parser writes it (see ``variants``); regexes are used as written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import re2

from monitor.core.errors import ConfigError
from monitor.core.escape import escape
from monitor.core.findings import Finding, FindingKind, Severity, Unmet, dedup_key, initial_state
from monitor.entries.record import (
    CertificateSigner,
    ChainStatus,
    Digest,
    MalformedEntry,
    ParseResult,
    Signer,
    SigningRecord,
)
from monitor.rules.fields import RECORD_FIELDS, Fields, record_level_fields, signer_field
from monitor.rules.spec import EXT_PREFIX, Pattern, PatternKind, RuleSpec, regex_options

HEX_FIELDS = frozenset({"digest", "subject_digest", "key_fingerprint", "cert_fingerprint"})
CHAIN_FIELD = "fulcio_chain"
_HEX = frozenset("0123456789abcdefABCDEF")
_DETAIL_VALUE_MAX = 160

ChainCheck = Callable[[SigningRecord], ParseResult]
"""Returns the record with its certificates' chain status filled in, e.g.
``lambda r: with_chain_status(r, cas)``."""

Pair = tuple[str, str]
Hits = dict[int, list[Pair]]  # clause id -> the (field, value) pairs that satisfied it


def variants(field: str, pattern: Pattern) -> tuple[Pattern, ...]:
    """The patterns that stand for ``pattern`` on ``field``: on hex fields, exact and glob
    patterns also in lower-case hex (``SHA256:AB*`` also as ``sha256:ab*``), as the parser
    writes digests and fingerprints; the pattern as written stays, for the fingerprints whose
    case matters (SSH's ``SHA256:<base64>``). Regexes are used as written."""
    if field not in HEX_FIELDS or pattern.kind is PatternKind.REGEX:
        return (pattern,)
    alg, sep, value = pattern.text.rpartition(":")
    bare = value.replace("*", "")
    lowered = Pattern(pattern.kind, f"{alg.lower()}{sep}{value.lower()}")
    if not bare or not _HEX.issuperset(bare) or lowered == pattern:
        return (pattern,)
    return (pattern, lowered)


class _PatternSet:
    """Exact values in a hash table, globs and regexes in one RE2 set; each pattern leads to
    the clause ids it belongs to."""

    __slots__ = ("_regex", "_regex_targets", "exact", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.exact: dict[str, tuple[int, ...]] = {}
        self._regex: re2.Set | None = None
        self._regex_targets: list[tuple[int, ...]] = []

    @classmethod
    def build(cls, name: str, patterns: Iterable[tuple[Pattern, int]]) -> _PatternSet:
        out = cls(name)
        exact: dict[str, list[int]] = {}
        regex: dict[str, list[int]] = {}
        for pattern, target in patterns:
            table = exact if pattern.kind is PatternKind.EXACT else regex
            key = pattern.text if pattern.kind is PatternKind.EXACT else pattern.as_regex()
            ids = table.setdefault(key, [])
            if target not in ids:
                ids.append(target)
        out.exact = {k: tuple(v) for k, v in exact.items()}
        if regex:
            rset = re2.Set.FullMatchSet(regex_options())
            for i, (text, ids) in enumerate(regex.items()):
                try:
                    index = rset.Add(text.encode("utf-8", "surrogatepass"))
                except re2.error as e:
                    raise ConfigError(f"{name}: invalid pattern {text!r}: {e}") from None
                if index != i:  # pragma: no cover - RE2 numbers patterns in order
                    raise AssertionError(f"RE2 set numbered pattern {i} as {index}")
                out._regex_targets.append(tuple(ids))
            try:
                rset.Compile()
            except re2.error as e:  # pragma: no cover - only past max_mem
                raise ConfigError(f"{name}: {len(regex)} patterns too large together: {e}") from e
            out._regex = rset
        return out

    def targets(self, value: str) -> Iterable[int]:
        """Every target whose pattern ``value`` matches (a target may repeat)."""
        found = self.exact.get(value, ())
        if self._regex is None:
            return found
        # surrogatepass: a lone surrogate (JSON can carry one) must not stop matching
        indices = self._regex.Match(value.encode("utf-8", "surrogatepass"))
        if not indices:
            return found
        return [*found, *(t for i in indices for t in self._regex_targets[i])]

    def probe(self, value: str, hits: Hits) -> None:
        """Record in ``hits`` every clause that ``value`` satisfies."""
        for clause in self.targets(value):
            pairs = hits.get(clause)
            if pairs is None:
                hits[clause] = [(self.name, value)]
            else:
                pairs.append((self.name, value))

    def any(self, values: Iterable[str]) -> bool:
        return any(self.targets(v) for v in values)


@dataclass(frozen=True)
class _Clause:
    """One field of an ``expect`` selector."""

    field: str
    expected: tuple[str, ...]  # the patterns, as written (str(Pattern))
    patterns: _PatternSet


@dataclass(frozen=True)
class RuleMatch:
    """A rule whose ``match`` an entry satisfied, and the (field, value) pairs that did."""

    rule: RuleSpec
    matched: tuple[Pair, ...]
    position: int  # of the rule in ``RuleEngine.rules``


@dataclass(frozen=True)
class _Unit:
    """What one signer shows to ``expect``: its own fields with the entry's, and its chain."""

    entry: Fields  # record-level fields
    signer: Signer | None  # None for an entry without signers
    chain: ChainStatus | None  # None for a bare key (or an entry without signers)

    def values(self, field: str) -> tuple[str, ...]:
        if field in RECORD_FIELDS:
            return self.entry.get(field, ())
        return signer_field(self.signer, field) if self.signer is not None else ()


class RuleEngine:
    """Compiled watch rules. Build with ``RuleEngine.compile(rules)``; thread-safe to use."""

    __slots__ = (
        "_cert_fp",
        "_clause_rule",
        "_digest",
        "_expect",
        "_ext_by_name",
        "_ext_by_oid",
        "_issuer",
        "_key_fp",
        "_kind",
        "_log",
        "_need",
        "_rule_clauses",
        "_rules",
        "_san",
        "_subject",
        "_subject_digest",
    )

    def __init__(
        self,
        rules: tuple[RuleSpec, ...],
        clause_rule: list[int],
        rule_clauses: list[tuple[int, ...]],
        by_field: dict[str, _PatternSet],
        expect: list[tuple[_Clause, ...] | None],
    ) -> None:
        self._rules = rules
        self._clause_rule = clause_rule
        self._rule_clauses = rule_clauses
        self._need = [len(c) for c in rule_clauses]
        self._expect = expect
        get = by_field.get
        self._san = get("san")
        self._issuer = get("issuer")
        self._key_fp = get("key_fingerprint")
        self._cert_fp = get("cert_fingerprint")
        self._digest = get("digest")
        self._subject = get("subject")
        self._subject_digest = get("subject_digest")
        self._kind = get("kind")
        self._log = get("log")
        ext = {f[len(EXT_PREFIX) :]: s for f, s in by_field.items() if f.startswith(EXT_PREFIX)}
        self._ext_by_oid = {k: s for k, s in ext.items() if _is_oid(k)}
        self._ext_by_name = {k: s for k, s in ext.items() if not _is_oid(k)}

    @classmethod
    def compile(cls, rules: Sequence[RuleSpec]) -> RuleEngine:
        """Compile ``rules`` (in order: findings come out in this order). Raises
        ``ConfigError`` for a pattern RE2 rejects (``Pattern.parse`` already refuses them)."""
        clause_rule: list[int] = []
        rule_clauses: list[tuple[int, ...]] = []
        per_field: dict[str, list[tuple[Pattern, int]]] = {}
        expect: list[tuple[_Clause, ...] | None] = []
        for r, rule in enumerate(rules):
            ids = []
            for field, patterns in rule.match.fields:
                clause = len(clause_rule)
                clause_rule.append(r)
                ids.append(clause)
                per_field.setdefault(field, []).extend(
                    (v, clause) for p in patterns for v in variants(field, p)
                )
            rule_clauses.append(tuple(ids))
            expect.append(_compile_expect(rule) if rule.expect is not None else None)
        by_field = {f: _PatternSet.build(f, pats) for f, pats in per_field.items()}
        return cls(tuple(rules), clause_rule, rule_clauses, by_field, expect)

    @property
    def rules(self) -> tuple[RuleSpec, ...]:
        return self._rules

    def matching_rules(self, record: SigningRecord) -> list[RuleMatch]:
        """The rules whose ``match`` the record satisfies, in rule order (cheap: no chain
        check, no ``expect``)."""
        hits = self._hits(record)
        if not hits:
            return []
        counts: dict[int, int] = {}
        rule_of = self._clause_rule
        for clause in hits:
            r = rule_of[clause]
            counts[r] = counts.get(r, 0) + 1
        need = self._need
        out = []
        for r in sorted(r for r, n in counts.items() if n == need[r]):
            pairs = [p for c in self._rule_clauses[r] for p in hits[c]]
            out.append(RuleMatch(self._rules[r], tuple(dict.fromkeys(pairs)), r))
        return out

    def evaluate(
        self, record: SigningRecord, check_chain: ChainCheck | None = None
    ) -> list[Finding]:
        """One finding per rule whose ``match`` the record satisfies.

        ``check_chain`` is called (once) only when a matched rule has ``expect`` and a
        certificate of the record is ``UNCHECKED``; without it such a certificate fails
        ``expect`` (``fulcio_chain`` unmet)."""
        matches = self.matching_rules(record)
        if not matches:
            return []
        expects = [self._expect[m.position] for m in matches]
        units: list[_Unit] | None = None
        if any(e is not None for e in expects):
            checked = record
            if check_chain is not None and _unchecked(record):
                result = check_chain(record)
                if isinstance(result, SigningRecord):
                    checked = result
            units = _units(checked)
        has_cert = any(isinstance(s, CertificateSigner) for s in record.signers)
        findings = []
        for m, clauses in zip(matches, expects, strict=True):
            unmet: tuple[Unmet, ...] = ()
            if clauses is None or units is None:
                kind = FindingKind.WATCHED_USE
            else:
                unmet = _judge(clauses, units)
                if not unmet:
                    kind = FindingKind.EXPECTED_USE
                elif has_cert:
                    kind = FindingKind.UNEXPECTED_SIGNER
                else:
                    kind = FindingKind.UNEXPECTED_KEY_USE
            findings.append(
                Finding(
                    kind=kind,
                    severity=m.rule.severity,
                    dedup_key=dedup_key(kind, m.rule.name, record.log, record.index),
                    rule=m.rule.name,
                    log=record.log,
                    index=record.index,
                    matched=m.matched,
                    unmet=unmet,
                    detail=_detail(record, m.rule, kind, unmet),
                    state=initial_state(kind),
                )
            )
        return findings

    def _hits(self, record: SigningRecord) -> Hits:
        """Every ``match`` clause the record satisfies, with the values that did. Walks the
        record directly (only the fields some rule names), equal to probing every value of
        ``record_fields(record)``."""
        hits: Hits = {}
        for signer in record.signers:
            if isinstance(signer, CertificateSigner):
                self._certificate_hits(signer, hits)
            elif self._key_fp is not None:
                self._key_fp.probe(signer.fingerprint, hits)
        if self._digest is not None:
            _probe_digests(self._digest, record.artifact_digests, hits)
            if record.payload_hash is not None:
                _probe_digests(self._digest, (record.payload_hash,), hits)
        if self._subject is not None:
            for s in record.subjects:
                self._subject.probe(s.name, hits)
        if self._subject_digest is not None:
            for s in record.subjects:
                _probe_digests(self._subject_digest, s.digests, hits)
        if self._kind is not None:
            self._kind.probe(record.kind, hits)
        if self._log is not None:
            self._log.probe(record.log, hits)
        return hits

    def _certificate_hits(self, cert: CertificateSigner, hits: Hits) -> None:
        if self._san is not None:
            for san in cert.sans:
                self._san.probe(san.value, hits)
        if self._issuer is not None and cert.issuer is not None:
            self._issuer.probe(cert.issuer, hits)
        by_name, by_oid = self._ext_by_name, self._ext_by_oid
        if by_name or by_oid:
            for ext in cert.extensions:
                if ext.name is not None and (ps := by_name.get(ext.name)) is not None:
                    ps.probe(ext.value, hits)
                if (ps := by_oid.get(ext.oid)) is not None:
                    ps.probe(ext.value, hits)
        if self._cert_fp is not None:
            self._cert_fp.probe(cert.fingerprint, hits)
        if self._key_fp is not None:
            self._key_fp.probe(cert.key.fingerprint, hits)


def _probe_digests(patterns: _PatternSet, digests: Iterable[Digest], hits: Hits) -> None:
    """A digest is seen as ``alg:hex`` and as bare ``hex``."""
    for d in digests:
        patterns.probe(f"{d.algorithm}:{d.value}", hits)
        patterns.probe(d.value, hits)


def malformed_finding(entry: MalformedEntry) -> Finding:
    """The finding for an entry the log served that could not be parsed."""
    kind = FindingKind.MALFORMED_ENTRY
    what = f"{entry.kind} {entry.api_version}" if entry.kind else "entry"
    return Finding(
        kind=kind,
        severity=Severity.MEDIUM,
        dedup_key=dedup_key(kind, entry.log, entry.index),
        log=entry.log,
        index=entry.index,
        detail=_clean(f"{entry.log} #{entry.index}: malformed {what}: {entry.reason}", 400),
    )


def _compile_expect(rule: RuleSpec) -> tuple[_Clause, ...]:
    assert rule.expect is not None
    clauses = []
    for field, patterns in rule.expect.fields:
        normalised = [v for p in patterns for v in variants(field, p)]
        clauses.append(
            _Clause(
                field=field,
                expected=tuple(str(p) for p in patterns),
                patterns=_PatternSet.build(field, ((p, 0) for p in normalised)),
            )
        )
    return tuple(clauses)


def _is_oid(name: str) -> bool:
    return name[:1].isdigit()


def _unchecked(record: SigningRecord) -> bool:
    return any(
        isinstance(s, CertificateSigner) and s.chain is ChainStatus.UNCHECKED
        for s in record.signers
    )


def _units(record: SigningRecord) -> list[_Unit]:
    entry = record_level_fields(record)
    if not record.signers:
        return [_Unit(entry, None, None)]
    return [
        _Unit(entry, s, s.chain if isinstance(s, CertificateSigner) else None)
        for s in record.signers
    ]


def _judge(clauses: tuple[_Clause, ...], units: list[_Unit]) -> tuple[Unmet, ...]:
    """What ``expect`` finds missing, over every signer (empty: satisfied)."""
    unmet: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for unit in units:
        for clause in clauses:
            values = unit.values(clause.field)
            if not clause.patterns.any(values):
                unmet.setdefault((clause.field, clause.expected), []).extend(values)
        if unit.chain is not None and unit.chain is not ChainStatus.VERIFIED:
            key = (CHAIN_FIELD, (str(ChainStatus.VERIFIED),))
            unmet.setdefault(key, []).append(str(unit.chain))
    return tuple(
        Unmet(field, expected, tuple(dict.fromkeys(actual)))
        for (field, expected), actual in unmet.items()
    )


def _detail(
    record: SigningRecord, rule: RuleSpec, kind: FindingKind, unmet: tuple[Unmet, ...]
) -> str:
    who = ", ".join(_who(s) for s in record.signers) or "no known signer"
    what = _what(record)
    head = f"{record.log} #{record.index} {record.kind}: {who}"
    if what:
        head += f" signed {what}"
    if kind is FindingKind.WATCHED_USE:
        why = "watched use"
    elif kind is FindingKind.EXPECTED_USE:
        why = "as expected"
    else:
        why = "not as expected: " + "; ".join(
            f"{u.field} is {_values(u.actual) or 'absent'}, expected {' or '.join(u.expected)}"
            for u in unmet
        )
    return _clean(f"{head}; rule {rule.name}: {why}", 2000)


def _who(signer: Signer) -> str:
    if isinstance(signer, CertificateSigner):
        name = signer.sans[0].value if signer.sans else signer.subject_dn or "certificate"
        if len(signer.sans) > 1:
            name += f" (+{len(signer.sans) - 1} SANs)"
        if signer.issuer:
            name += f" via {signer.issuer}"
        return _clean(name, _DETAIL_VALUE_MAX)
    return _clean(f"{signer.key_type} key {signer.fingerprint}", _DETAIL_VALUE_MAX)


def _what(record: SigningRecord) -> str:
    if record.subjects:
        names = [_clean(s.name, _DETAIL_VALUE_MAX) for s in record.subjects[:3]]
        more = len(record.subjects) - len(names)
        return ", ".join(names) + (f" (+{more} more)" if more else "")
    if record.artifact_digests:
        return str(record.artifact_digests[0])
    if record.payload_hash is not None:
        return f"payload {record.payload_hash}"
    return ""


def _values(values: tuple[str, ...]) -> str:
    return " or ".join(_clean(v, _DETAIL_VALUE_MAX) for v in values[:3]) + (
        f" (+{len(values) - 3} more)" if len(values) > 3 else ""
    )


def _clean(text: str, limit: int) -> str:
    """One printable line, at most ``limit`` characters (values come from certificates)."""
    text = escape(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."
