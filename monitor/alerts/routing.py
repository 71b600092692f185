"""Which alert sinks hear of a finding: decided when the finding is stored, so that its outbox
rows are written in the same transaction (nothing found is ever left unannounced by a crash).

A sink takes a finding that passes all of its filters (least severity, rules, kinds).
``expected_use`` findings are the signatures a rule allows: records, not tasks. One is
announced only when both sides ask for it: its rule (``alert_expected_use: true``) and the
sink, by listing ``expected_use`` in its ``kinds`` (a sink without ``kinds`` takes every
surprise, never a record). The configuration refuses one side without the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from monitor.config.models import Settings, SinkSettings
from monitor.core.findings import Finding, FindingKind, Severity
from monitor.storage.batch import OutboxSpec


@dataclass(frozen=True)
class SinkFilter:
    name: str
    min_severity: Severity
    rules: frozenset[str] | None
    kinds: frozenset[FindingKind] | None

    @classmethod
    def of(cls, sink: SinkSettings) -> SinkFilter:
        return cls(
            sink.name,
            sink.min_severity,
            None if sink.rules is None else frozenset(sink.rules),
            None if sink.kinds is None else frozenset(sink.kinds),
        )

    def takes(self, f: Finding) -> bool:
        if f.severity < self.min_severity:
            return False
        if f.kind is FindingKind.EXPECTED_USE and self.kinds is None:
            return False  # a record reaches only a sink that lists it
        if self.kinds is not None and f.kind not in self.kinds:
            return False
        # a rules filter narrows rule findings; findings of no rule (integrity, health,
        # malformed) pass it, else a sink listing rules would never hear the log lie
        return self.rules is None or f.rule is None or f.rule in self.rules


@dataclass(frozen=True)
class Routing:
    """The sinks of a configuration, and the rules whose expected uses are announced."""

    sinks: tuple[SinkFilter, ...] = ()
    announce_expected: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> Routing:
        return cls.build(
            settings.alerts.sinks,
            {rule.name: rule.alert_expected_use for rule in settings.watch},
        )

    @classmethod
    def build(cls, sinks: Iterable[SinkSettings], expected: Mapping[str, bool]) -> Routing:
        return cls(
            tuple(SinkFilter.of(s) for s in sinks),
            frozenset(name for name, on in expected.items() if on),
        )

    def sinks_for(self, f: Finding) -> tuple[str, ...]:
        if f.kind is FindingKind.EXPECTED_USE and f.rule not in self.announce_expected:
            return ()
        return tuple(s.name for s in self.sinks if s.takes(f))

    def outbox(self, findings: Iterable[Finding]) -> tuple[OutboxSpec, ...]:
        """One outbox spec per finding that some sink takes."""
        out = []
        for f in findings:
            sinks = self.sinks_for(f)
            if sinks:
                out.append(OutboxSpec(f.dedup_key, sinks))
        return tuple(out)
