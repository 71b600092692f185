"""PagerDuty Events API v2. ``dedup_key`` is ``group_key(...)``: a finding's own key, so that
its resolve closes the incident its trigger opened. A resolve carries only ``routing_key``,
``dedup_key`` and ``event_action``. The routing key appears in the body (the Events API
requires it there) and nowhere else."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from monitor import __version__
from monitor.alerts.events import TEST_TITLE, Alert, AlertFinding, JSONObject, JSONValue, rfc3339
from monitor.alerts.formats.text import (
    clip,
    common,
    created,
    dumps,
    entry_name,
    json_headers,
    kinds,
    max_severity,
    summary,
)
from monitor.alerts.message import Context, EntryUrl, Message, group_key, message
from monitor.config.models import SinkSettings
from monitor.core.errors import ConfigError
from monitor.core.escape import escape

PAGERDUTY_SEVERITY: Final[Mapping[str, str]] = {
    "critical": "critical",
    "high": "error",
    "medium": "warning",
    "low": "info",
    "info": "info",
}
PAGERDUTY_SUMMARY_MAX: Final = 1024
PAGERDUTY_LISTED: Final = 20  # findings detailed in a group's custom_details
PAGERDUTY_KEYS_LISTED: Final = 100  # dedup keys named in a group's custom_details


def render(sink: SinkSettings, alert: Alert, ctx: Context) -> Message:
    if sink.routing_key is None:
        raise ConfigError(f"sink {sink.name}: a pagerduty sink needs a routing key")
    routing_key = sink.routing_key.get_secret_value()
    dkey = group_key(alert.dedup_keys)
    doc: JSONObject
    if alert.event == "resolve":
        doc = {"routing_key": routing_key, "dedup_key": dkey, "event_action": "resolve"}
    else:
        doc = {
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": dkey,
            "payload": _payload(alert, sink),
            "client": "tlog-monitor",
        }
        links = _links(alert.findings, ctx.entry_url)
        if links:
            doc["links"] = links
    return message(dumps(doc), json_headers(), alert)


def severity(name: str) -> str:
    """PagerDuty's severity for a finding severity name (unknown names: ``error``)."""
    return PAGERDUTY_SEVERITY.get(name, "error")


def _payload(alert: Alert, sink: SinkSettings) -> JSONObject:
    fs = alert.findings
    f = fs[0]
    log, rule = common(x.log for x in fs), common(x.rule for x in fs)
    if alert.event == "test":
        text = f"{TEST_TITLE} (sink {sink.name}): no action is needed"
    elif len(fs) == 1:
        text = summary(f)
    else:
        text = f"{len(fs)} {kinds(fs)} findings" + (f" of rule {rule}" if rule else "")
        text += f"; first: {summary(f)}"
    repository = common(None if x.image is None else x.image.repository for x in fs)
    payload: JSONObject = {
        "summary": clip(escape(text), PAGERDUTY_SUMMARY_MAX),
        # where it happened: the log, or for a registry finding the repository
        "source": log or repository or "tlog-monitor",
        "severity": severity(max_severity(fs)),
        "class": common(str(x.kind) for x in fs) or "mixed",
        "timestamp": rfc3339(created(f)),
    }
    if log:
        payload["component"] = log
    if rule:
        payload["group"] = rule
    details: JSONObject
    if len(fs) == 1:
        details = _slim(f)
    else:
        listed: list[JSONValue] = [_slim(x) for x in fs[:PAGERDUTY_LISTED]]
        keys: list[JSONValue] = [x.dedup_key for x in fs[:PAGERDUTY_KEYS_LISTED]]
        details = {
            "count": len(fs),
            "rule": rule,
            "findings": listed,
            "findings_not_listed": max(0, len(fs) - PAGERDUTY_LISTED),
            "dedup_keys": keys,
        }
    details["monitor_version"] = __version__
    payload["custom_details"] = details
    return payload


def _links(fs: Sequence[AlertFinding], entry_url: EntryUrl | None) -> list[JSONValue]:
    if entry_url is None:
        return []
    links: list[JSONValue] = []
    for f in fs[:5]:
        if f.log is not None and f.index is not None and (url := entry_url(f.log, f.index)):
            links.append({"href": url, "text": f"log entry {entry_name(f)}"})
    return links


def _slim(f: AlertFinding) -> JSONObject:
    """A finding without its evidence (kept in the monitor; it may be large)."""
    return {k: v for k, v in f.to_json().items() if k != "evidence"}
