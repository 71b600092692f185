"""Prometheus Alertmanager: the body of ``POST /api/v2/alerts``, one alert per finding
(Alertmanager groups them itself).

Alertmanager resolves an alert once its ``endsAt`` passes, so an active alert says
``endsAt = ends_at(now, resend_after)`` and must be sent again by ``resend_at(sent_at,
resend_after)`` for as long as it is active (a few missed re-sends are tolerated). A resolve
says ``endsAt = now``; a test alert ends by itself after ``ALERTMANAGER_TEST_TTL``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from monitor.alerts.events import Alert, AlertFinding, JSONObject, JSONValue, rfc3339
from monitor.alerts.formats.text import clip, created, dumps, json_headers, summary
from monitor.alerts.message import Context, EntryUrl, Message, message
from monitor.config.models import SinkSettings
from monitor.core.escape import escape
from monitor.core.findings import FindingState

ALERTNAME: Final = "TlogMonitorFinding"
ALERTMANAGER_ENDS_AFTER: Final = 4  # resend periods; Prometheus uses 4 too
ALERTMANAGER_TEST_TTL: Final = timedelta(minutes=5)


def render(sink: SinkSettings, alert: Alert, ctx: Context) -> Message:
    del sink  # one shape for every Alertmanager
    now = ctx.now
    if alert.event == "resolve":
        ends = now
    elif alert.event == "test":
        ends = now + ALERTMANAGER_TEST_TTL
    else:
        ends = ends_at(now, ctx.resend_after)
    test = alert.event == "test"
    alerts: list[JSONValue] = [_alert(f, ends, ctx.entry_url, test=test) for f in alert.findings]
    return message(dumps(alerts), json_headers(), alert)


def ends_at(now: datetime, resend_after: timedelta) -> datetime:
    """``endsAt`` of an active alert sent at ``now``: ``ALERTMANAGER_ENDS_AFTER`` re-send
    periods later (as Prometheus does)."""
    _check_resend(resend_after)
    return now + resend_after * ALERTMANAGER_ENDS_AFTER


def resend_at(sent_at: datetime, resend_after: timedelta) -> datetime:
    """When the worker must send an active alert again, to keep Alertmanager from resolving
    it: well before the ``endsAt`` it was sent with."""
    _check_resend(resend_after)
    return sent_at + resend_after


def active(finding: AlertFinding) -> bool:
    """Whether a finding is still to be re-sent to Alertmanager (not resolved)."""
    return finding.state is not FindingState.RESOLVED


def _check_resend(resend_after: timedelta) -> None:
    if resend_after <= timedelta():
        raise ValueError("resend_after must be positive")


def _alert(
    f: AlertFinding, ends: datetime, entry_url: EntryUrl | None, *, test: bool
) -> JSONObject:
    labels = {
        "alertname": ALERTNAME,
        "kind": str(f.kind),
        "type": f.type,
        "severity": str(f.severity),
        "rule": f.rule,
        "log": f.log,
        "repository": None if f.image is None else f.image.repository,
        "dedup_key": f.dedup_key,
    }
    if test:
        labels["test"] = "true"
    annotations = {"summary": clip(escape(summary(f)), 1024), "description": f.detail}
    if f.index is not None:
        annotations["index"] = str(f.index)
    if f.image is not None:
        annotations["image"] = str(f.image)
        annotations["tag"] = f.image.tag or ""
        annotations["digest"] = f.image.digest or ""
    shown_labels: JSONObject = {k: v for k, v in labels.items() if v}  # empty: no label
    shown_annotations: JSONObject = {k: v for k, v in annotations.items() if v}
    alert: JSONObject = {
        "labels": shown_labels,
        "annotations": shown_annotations,
        "endsAt": rfc3339(ends),
        "startsAt": rfc3339(created(f)),
    }
    if entry_url is not None and f.log is not None and f.index is not None:
        url = entry_url(f.log, f.index)
        if url:
            alert["generatorURL"] = url
    return alert
