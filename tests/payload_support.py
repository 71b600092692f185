"""What the alert payload tests share: a sink of each type, stored findings and a health
finding to send, the entry links the daemon gives, and a request's body parsed back."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from monitor.alerts.events import AlertFinding, decode_finding
from monitor.alerts.payloads import Event, Message, webhook
from monitor.config.models import SinkSettings
from monitor.core.findings import (
    Finding,
    FindingKind,
    FindingState,
    HealthType,
    Severity,
    Unmet,
    dedup_key,
)
from monitor.storage.findings_store import StoredFinding

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ROUTING_KEY = "R0UT1NGK3Yr0ut1ngk3yR0UT1NGK3Y99"
SLACK_URL = "https://hooks.slack.com/services/T000/B000/S3CR3TPATH"
NOW = datetime(2025, 3, 1, 12, 0, 5, tzinfo=UTC)
CREATED = datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)


def sink(kind: str, **extra: Any) -> SinkSettings:
    raw: dict[str, Any] = {"name": f"{kind}-sink", "type": kind}
    if kind == "slack":
        raw["url"] = SLACK_URL
    elif kind != "pagerduty":
        raw["url"] = "https://receiver.example/hook"
    if kind == "webhook":
        raw["secret"] = SECRET
    if kind == "pagerduty":
        raw["routing_key"] = ROUTING_KEY
    return SinkSettings.model_validate({**raw, **extra})


def stored(
    index: int = 42,
    *,
    kind: FindingKind = FindingKind.UNEXPECTED_SIGNER,
    severity: Severity = Severity.HIGH,
    rule: str | None = "release",
    log: str | None = "rekor",
    type_: str | None = None,
    san: str = "mallory@evil.example",
    detail: str | None = None,
    state: FindingState = FindingState.OPEN,
    evidence: dict[str, Any] | None = None,
) -> AlertFinding:
    """A finding as the outbox stores it (``StoredFinding.to_json``), decoded as delivery
    decodes it."""
    is_rule = rule is not None
    finding = Finding(
        kind=kind,
        severity=severity,
        dedup_key=dedup_key(kind, rule, log, index),
        rule=rule,
        log=log,
        index=index,
        type=type_,
        matched=(("subject", "pkg:oci/example/app"),) if is_rule else (),
        unmet=(
            (
                Unmet("san", ("https://github.com/example/app/*",), (san,)),
                Unmet("fulcio_chain", ("verified",), ()),
            )
            if is_rule
            else ()
        ),
        detail=(
            detail
            if detail is not None
            else f"{log} #{index} hashedrekord: {san} signed pkg:oci/example/app; rule {rule}: "
            f"not as expected: san is {san}, expected https://github.com/example/app/*"
        ),
        created_at=CREATED,
        state=state,
        id=index + 1000,
    )
    return decode_finding(StoredFinding(finding, None, None, None, evidence).to_json())


def health(state: FindingState = FindingState.OPEN) -> AlertFinding:
    return stored(
        0,
        kind=FindingKind.HEALTH,
        severity=Severity.CRITICAL,
        rule=None,
        type_=str(HealthType.LOG_UNREACHABLE),
        detail="rekor unreachable for 5m: connection refused",
        state=state,
    )


def entry_url(log: str, index: int) -> str | None:
    return f"https://search.sigstore.dev/?logIndex={index}" if log == "rekor" else None


def body(m: Message) -> Any:
    return json.loads(m.body)


def webhook_doc(event: Event = "trigger", fs: list[AlertFinding] | None = None) -> Any:
    findings = [stored()] if fs is None else fs
    return body(webhook(sink("webhook"), event, findings, timestamp=1740830405))
