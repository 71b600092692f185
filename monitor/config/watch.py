"""A watch rule's settings: which entries are ours, what a legitimate signature looks like."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any

from pydantic import Field

from monitor.config.base import ConfigModel
from monitor.config.durations import Duration
from monitor.config.fields import Name
from monitor.config.problems import Problem
from monitor.config.selectors import OptionalSelector, RuleSelector, SeverityName
from monitor.rules.spec import RuleSpec


class OrphanSettings(ConfigModel):
    """A rule's orphan check: its entries that no watched registry explains."""

    grace: Annotated[timedelta, Duration(timedelta(minutes=1), timedelta(days=30))] = Field(
        default=timedelta(hours=1),
        description="How long after the monitor stores an entry of the rule a signature in a "
        "watched registry may take to appear (a release pushes after it signs). The period "
        "also lasts until a complete pass over every `images` repository that began after "
        "the entry was stored.",
    )


class WatchRule(ConfigModel):
    """What is "ours" (``match``), what a legitimate signature of ours looks like
    (``expect``, optional), and how bad a surprise is (``severity``)."""

    name: Name = Field(
        description="The rule's name: findings, alerts, metrics and sink filters name it."
    )
    match: RuleSelector = Field(
        description="Which entries are ours. An entry matches when every field of the selector "
        "has a value matching one of its patterns."
    )
    expect: OptionalSelector = Field(
        default=None,
        description="What a legitimate signature of ours looks like. A matched entry that fails "
        "it is an `unexpected_signer` finding (`unexpected_key_use` for a bare key); one that "
        "meets it is `expected_use`. Without `expect` every match is a `watched_use` finding. "
        "A certificate that does not chain to a Fulcio CA of the trusted root never meets it.",
    )
    severity: SeverityName = Field(
        description="How bad a finding of this rule is: `info`, `low`, `medium`, `high` or "
        "`critical`. Sinks filter on it."
    )
    description: str | None = Field(
        default=None, description="Shown to responders with every finding of the rule."
    )
    alert_expected_use: bool = Field(
        default=False,
        description="Send this rule's `expected_use` findings to the sinks that ask for them: "
        "those listing `expected_use` in their `kinds` (one at least must). Expected uses are "
        "always stored, in the state `recorded`, never in the open queue. Needs `expect`.",
    )

    orphans: OrphanSettings | None = Field(
        default=None,
        description="Opt in to `orphan_signature` findings: an entry of this rule that no "
        "signature in a watched registry (`images`) is tied to once `grace` is over was "
        "signed with the identity and never shipped. Needs an `images` section; the rule "
        "should match only identities that sign images.",
    )

    @classmethod
    def cross_checks(cls, raw: Mapping[str, Any]) -> list[Problem]:
        if raw.get("alert_expected_use") is True and raw.get("expect") is None:
            return [
                Problem(
                    ("alert_expected_use",),
                    "needs expect: without it every match is a watched_use finding",
                )
            ]
        return []

    @property
    def spec(self) -> RuleSpec:
        return RuleSpec(self.name, self.match, self.expect, self.severity)
