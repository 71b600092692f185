"""Alert payloads for PagerDuty: severities, trigger and resolve events, a summary within
its limit, a stable group key, the test event marked, the routing key required."""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitor.alerts import payloads
from monitor.alerts.payloads import group_key, pagerduty
from monitor.config.models import SinkSettings
from monitor.core.errors import ConfigError
from monitor.core.findings import FindingState, Severity
from tests.payload_support import NOW, ROUTING_KEY, body, entry_url, health, sink, stored


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        (Severity.CRITICAL, "critical"),
        (Severity.HIGH, "error"),
        (Severity.MEDIUM, "warning"),
        (Severity.LOW, "info"),
        (Severity.INFO, "info"),
    ],
)
def test_pagerduty_severity(severity: Severity, expected: str) -> None:
    doc = body(pagerduty(sink("pagerduty"), "trigger", [stored(severity=severity)]))
    assert doc["payload"]["severity"] == expected


def test_pagerduty_trigger() -> None:
    f = stored(evidence={"big": "x" * 1000})
    m = pagerduty(sink("pagerduty"), "trigger", [f], entry_url=entry_url)
    doc = body(m)
    assert doc["routing_key"] == ROUTING_KEY
    assert doc["event_action"] == "trigger"
    assert doc["dedup_key"] == f.dedup_key
    p = doc["payload"]
    assert p["summary"].startswith("unexpected_signer: rekor #42 hashedrekord: mallory@")
    assert p["source"] == "rekor"
    assert p["component"] == "rekor"
    assert p["group"] == "release"
    assert p["class"] == "unexpected_signer"
    assert p["timestamp"] == "2025-03-01T12:00:00.250000Z"
    assert p["custom_details"]["unmet"] == f.to_json()["unmet"]
    assert "evidence" not in p["custom_details"]  # kept in the monitor, may be large
    assert doc["links"] == [
        {"href": "https://search.sigstore.dev/?logIndex=42", "text": "log entry rekor #42"}
    ]


def test_pagerduty_summary_is_at_most_1024_characters() -> None:
    doc = body(pagerduty(sink("pagerduty"), "trigger", [stored(detail="y" * 5000)]))
    assert len(doc["payload"]["summary"]) == 1024


def test_pagerduty_resolve_carries_only_the_keys() -> None:
    f = health(FindingState.RESOLVED)
    trigger = body(pagerduty(sink("pagerduty"), "trigger", [f]))
    resolve = body(pagerduty(sink("pagerduty"), "resolve", [f]))
    assert resolve == {
        "routing_key": ROUTING_KEY,
        "dedup_key": f.dedup_key,
        "event_action": "resolve",
    }
    assert resolve["dedup_key"] == trigger["dedup_key"]  # the resolve closes that incident


def test_pagerduty_group_key_is_stable_and_derived() -> None:
    fs = [stored(i) for i in range(30)]
    doc = body(pagerduty(sink("pagerduty"), "trigger", fs))
    reordered = body(pagerduty(sink("pagerduty"), "trigger", fs[::-1]))
    assert doc["dedup_key"] == reordered["dedup_key"] == group_key([f.dedup_key for f in fs])
    assert doc["dedup_key"].startswith("group-")
    assert doc["dedup_key"] not in {f.dedup_key for f in fs}
    other = body(pagerduty(sink("pagerduty"), "trigger", fs[:29]))
    assert other["dedup_key"] != doc["dedup_key"]
    details = doc["payload"]["custom_details"]
    assert details["count"] == 30
    assert len(details["findings"]) == 20
    assert details["findings_not_listed"] == 10
    assert doc["payload"]["summary"].startswith("30 unexpected_signer findings of rule release")


def test_pagerduty_test_event_is_marked() -> None:
    doc = body(payloads.test_message(sink("pagerduty"), now=NOW))
    assert doc["event_action"] == "trigger"
    assert doc["dedup_key"].startswith("test-")
    assert doc["payload"]["summary"].startswith("TEST: tlog-monitor alert path check")
    assert doc["payload"]["severity"] == "info"
    assert doc["payload"]["class"] == "test"
    later = body(payloads.test_message(sink("pagerduty"), now=NOW + timedelta(seconds=1)))
    assert later["dedup_key"] != doc["dedup_key"]  # every test reaches PagerDuty


def test_pagerduty_needs_its_routing_key() -> None:
    s = SinkSettings.model_construct(name="pd", type="pagerduty", routing_key=None)
    with pytest.raises(ConfigError, match="sink pd: a pagerduty sink needs a routing key"):
        pagerduty(s, "trigger", [stored()])
