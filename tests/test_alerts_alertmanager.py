"""Alert payloads for Alertmanager: configured by its base URL, active alerts and resolves
that end now, links and test alerts, and the times it is sent."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from monitor.alerts import payloads
from monitor.alerts.deliver import request_url
from monitor.alerts.payloads import (
    ALERTMANAGER_RESEND_AFTER,
    alertmanager,
    alertmanager_active,
    alertmanager_ends_at,
    alertmanager_resend_at,
)
from monitor.core.findings import FindingState
from tests.payload_support import NOW, SLACK_URL, body, entry_url, health, sink, stored


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("http://am:9093", "http://am:9093/api/v2/alerts"),
        ("http://am:9093/", "http://am:9093/api/v2/alerts"),
        ("https://host.example/alertmanager", "https://host.example/alertmanager/api/v2/alerts"),
        ("https://host.example/alertmanager/", "https://host.example/alertmanager/api/v2/alerts"),
        ("http://am:9093/api/v2/alerts", "http://am:9093/api/v2/alerts"),
        ("http://am:9093/api/v2/alerts/", "http://am:9093/api/v2/alerts"),
        ("https://host.example/am/api/v2/alerts", "https://host.example/am/api/v2/alerts"),
        ("https://u:p@host.example:8443/am", "https://u:p@host.example:8443/am/api/v2/alerts"),
        ("http://am:9093/notapi/v2/alerts", "http://am:9093/notapi/v2/alerts/api/v2/alerts"),
    ],
)
def test_alertmanager_is_configured_by_its_base_url(url: str, endpoint: str) -> None:
    s = sink("alertmanager", url=url)
    assert request_url(s) == endpoint
    assert s.host in ("am", "host.example")


def test_only_alertmanager_urls_get_a_path() -> None:
    url = "https://receiver.example/base"
    assert request_url(sink("webhook", url=url)) == url
    assert request_url(sink("slack")) == SLACK_URL
    assert request_url(sink("pagerduty")) == "https://events.pagerduty.com/v2/enqueue"
    assert request_url(sink("pagerduty", url=url)) == url


def test_alertmanager_active_alerts() -> None:
    fs = [stored(1), stored(2)]
    resend = timedelta(minutes=2)
    m = alertmanager(sink("alertmanager"), "trigger", fs, now=NOW, resend_after=resend)
    alerts = body(m)
    assert isinstance(alerts, list)
    assert len(alerts) == 2
    a = alerts[0]
    assert a["labels"] == {
        "alertname": "TlogMonitorFinding",
        "kind": "unexpected_signer",
        "severity": "high",
        "rule": "release",
        "log": "rekor",
        "dedup_key": fs[0].dedup_key,
    }
    assert a["annotations"] == {
        "summary": f"unexpected_signer: {fs[0].detail}",
        "description": fs[0].detail,
        "index": "1",
    }
    assert a["startsAt"] == "2025-03-01T12:00:00.250000Z"
    assert a["endsAt"] == "2025-03-01T12:08:05Z"  # 4 re-send periods ahead
    assert "generatorURL" not in a
    ends = alertmanager_ends_at(NOW, resend)
    assert alertmanager_resend_at(NOW, resend) < ends
    assert ends == NOW + 4 * resend


def test_alertmanager_resolve_ends_now() -> None:
    f = health(FindingState.RESOLVED)
    (a,) = body(alertmanager(sink("alertmanager"), "resolve", [f], now=NOW))
    assert a["endsAt"] == "2025-03-01T12:00:05Z"
    assert a["labels"] == {  # the same labels as when it fired: the same alert
        "alertname": "TlogMonitorFinding",
        "kind": "health",
        "type": "log_unreachable",
        "severity": "critical",
        "log": "rekor",
        "dedup_key": f.dedup_key,
    }
    (fired,) = body(alertmanager(sink("alertmanager"), "trigger", [health()], now=NOW))
    assert fired["labels"] == a["labels"]
    assert fired["endsAt"] > a["endsAt"]


def test_alertmanager_links_and_test_alerts() -> None:
    (a,) = body(
        alertmanager(sink("alertmanager"), "trigger", [stored()], now=NOW, entry_url=entry_url)
    )
    assert a["generatorURL"] == "https://search.sigstore.dev/?logIndex=42"
    (t,) = body(payloads.test_message(sink("alertmanager"), now=NOW))
    assert t["labels"]["test"] == "true"
    assert t["labels"]["kind"] == "test"
    assert t["annotations"]["summary"] == "TEST: tlog-monitor alert path check"
    assert t["endsAt"] == "2025-03-01T12:05:05Z"  # a test alert resolves by itself


def test_alertmanager_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        alertmanager(sink("alertmanager"), "trigger", [stored()], now=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="positive"):
        alertmanager_ends_at(NOW, timedelta())
    assert timedelta() < ALERTMANAGER_RESEND_AFTER
    assert alertmanager_active(stored())
    assert alertmanager_active(stored(state=FindingState.ACKNOWLEDGED))
    assert not alertmanager_active(health(FindingState.RESOLVED))
