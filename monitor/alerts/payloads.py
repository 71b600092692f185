"""What each alert sink is sent: pure builders from stored findings to HTTP requests.

A builder takes the sink's settings, the event (``trigger``, ``resolve`` or ``test``) and one
or more findings as the outbox stores them (``StoredFinding.to_json()``: the finding JSON
of ``monitor.core.findings`` plus ``state_changed_by``, ``state_changed_at``, ``comment`` and
``evidence``). Several findings are a group: findings of one rule that arrived together,
sent as one message so that a storm does not flood the receiver; every one of them stays in
the findings record and is named in the message's ``dedup_keys``.

Builders do no I/O and read no clock: the delivery worker passes the time, does the HTTP
request (to ``deliver.request_url(sink)``) and retries. A ``Message`` is the same bytes on every
retry except where the protocol wants the attempt's time (the Standard Webhooks timestamp
and signature, Alertmanager's ``endsAt``); its ``idempotency_key`` never changes.

Secrets: the webhook signing secret only ever becomes signatures; the PagerDuty routing key
appears in the PagerDuty body (the Events API requires it there) and nowhere else; the
Slack URL is the sink's endpoint and never enters a message. ``repr(Message)`` shows
neither body nor headers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any, Final, Literal, get_args

from monitor import __version__
from monitor.alerts.signing import webhook_headers
from monitor.config.models import SinkSettings
from monitor.config.webhook_secrets import parse_secrets
from monitor.core.errors import ConfigError
from monitor.core.escape import escape
from monitor.core.findings import dedup_key

Event = Literal["trigger", "resolve", "test"]
EVENTS: Final[tuple[str, ...]] = get_args(Event)
FindingJSON = Mapping[str, Any]
EntryUrl = Callable[[str, int], str | None]
"""``entry_url(log, index)``: a link to the log entry for people, or None (no link)."""

WEBHOOK_SCHEMA: Final = "tlog-monitor.webhook/v1"
WEBHOOK_SCHEMA_FILE: Final = "webhook-v1.schema.json"
WEBHOOK_TYPES: Final[Mapping[str, str]] = {
    "trigger": "finding.triggered",
    "resolve": "finding.resolved",
    "test": "test",
}

TEST_KIND: Final = "test"
TEST_TITLE: Final = "TEST: tlog-monitor alert path check"
TEST_KEY_PREFIX: Final = "test-"
GROUP_KEY_PREFIX: Final = "group-"

SEVERITIES: Final = ("info", "low", "medium", "high", "critical")  # str(Severity), ascending
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

ALERTNAME: Final = "TlogMonitorFinding"
ALERTMANAGER_RESEND_AFTER: Final = timedelta(minutes=1)  # as Prometheus' resend_delay
ALERTMANAGER_ENDS_AFTER: Final = 4  # resend periods; Prometheus uses 4 too
ALERTMANAGER_TEST_TTL: Final = timedelta(minutes=5)

SLACK_LISTED: Final = 10  # findings shown in a group's message
_SLACK_TEXT_MAX = 3000  # a section's mrkdwn text
_SLACK_FIELD_MAX = 2000  # a section field
_SLACK_HEADER_MAX = 150
_VALUE_MAX = 300  # one value from the log (a SAN, a subject) as shown in Slack
_DETAIL_MAX = 1500

_USER_AGENT = f"tlog-monitor/{__version__}"


@dataclass(frozen=True, repr=False)
class Message:
    """One HTTP POST to a sink's endpoint.

    ``idempotency_key`` is derived from the event and the findings' dedup keys only: the same
    for every retry and after restarts, different for trigger and resolve, so that a receiver
    can drop repeats. ``dedup_keys`` are those of every finding the message covers, in order.
    """

    body: bytes
    headers: dict[str, str]
    idempotency_key: str
    event: Event
    dedup_keys: tuple[str, ...]

    def __repr__(self) -> str:
        # body and headers carry signatures and the PagerDuty routing key: never shown
        return (
            f"Message(event={self.event!r}, idempotency_key={self.idempotency_key!r}, "
            f"findings={len(self.dedup_keys)}, body=<{len(self.body)} bytes>, "
            f"headers=<{', '.join(sorted(self.headers))}>)"
        )

    __str__ = __repr__


# --- keys --------------------------------------------------------------------------------


def idempotency_key(event: Event, dedup_keys: Sequence[str]) -> str:
    """Stable for an event about a set of findings (order does not matter): 32 hex digits."""
    _check_event(event)
    return dedup_key("tlog-monitor.alert", event, *sorted(set(dedup_keys)))


def message_id(event: Event, dedup_keys: Sequence[str]) -> str:
    """The Standard Webhooks ``webhook-id`` of a message: ``msg_`` + its idempotency key, so
    that retries share it, as the specification asks."""
    return "msg_" + idempotency_key(event, dedup_keys)


def group_key(dedup_keys: Sequence[str]) -> str:
    """The key of what a message is about, the same for its trigger and its resolve: a
    finding's own dedup key, or for a group ``group-`` + a digest of its members' keys (a
    group is resolved only as the same group)."""
    keys = sorted(set(dedup_keys))
    if not keys:
        raise ValueError("no dedup keys")
    if len(keys) == 1:
        return keys[0]
    return GROUP_KEY_PREFIX + dedup_key("tlog-monitor.group", *keys)


# --- the test finding --------------------------------------------------------------------


def test_finding(sink: SinkSettings, *, now: datetime) -> dict[str, Any]:
    """A stored-finding JSON that is obviously a test: kind ``test``, severity ``info``, a
    dedup key starting ``test-`` (new for every test, so no receiver drops a second one)."""
    at = _rfc3339(now)
    return {
        "id": None,
        "kind": TEST_KIND,
        "type": None,
        "severity": "info",
        "rule": None,
        "log": None,
        "index": None,
        "dedup_key": TEST_KEY_PREFIX + dedup_key("tlog-monitor.test", sink.name, at),
        "state": "open",
        "created_at": at,
        "matched": [],
        "unmet": [],
        "detail": (
            f"{TEST_TITLE}: sent by `tlog-monitor alerts test --sink {sink.name}` to check "
            "that alerts reach this destination. No action is needed."
        ),
        "state_changed_by": None,
        "state_changed_at": None,
        "comment": None,
        "evidence": None,
    }


# --- generic webhook ---------------------------------------------------------------------


def webhook(
    sink: SinkSettings,
    event: Event,
    findings: Sequence[FindingJSON],
    *,
    timestamp: int,
    msg_id: str | None = None,
) -> Message:
    """The generic webhook: JSON as ``schema/webhook-v1.schema.json`` documents, signed the
    Standard Webhooks way with every secret of ``sink.secret``. ``timestamp`` (Unix
    seconds) is the attempt's time; ``msg_id`` defaults to ``message_id(...)``, stable
    across retries (pass another only with the same stability)."""
    fs, keys = _findings(event, findings)
    secrets = _webhook_secrets(sink)
    key = idempotency_key(event, keys)
    msg_id = message_id(event, keys) if msg_id is None else msg_id
    doc = {
        "schema": WEBHOOK_SCHEMA,
        "type": WEBHOOK_TYPES[event],
        "id": msg_id,
        "idempotency_key": key,
        "timestamp": _rfc3339(datetime.fromtimestamp(timestamp, UTC)),
        "sink": sink.name,
        "rule": _common(fs, "rule"),
        "count": len(fs),
        "findings": [dict(f) for f in fs],
        "monitor": {"version": __version__},
    }
    body = _dumps(doc)
    headers = webhook_headers(msg_id, timestamp, body, secrets)
    headers["user-agent"] = _USER_AGENT
    return Message(body, headers, key, event, keys)


def webhook_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the webhook body, as shipped in the package."""
    text = (resources.files(__package__) / "schema" / WEBHOOK_SCHEMA_FILE).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _webhook_secrets(sink: SinkSettings) -> tuple[bytes, ...]:
    if sink.secret is None:
        raise ConfigError(f"sink {sink.name}: a webhook sink needs a secret to sign with")
    try:
        return parse_secrets(sink.secret.get_secret_value())
    except ConfigError as e:
        raise ConfigError(f"sink {sink.name}: {e}") from None


# --- Slack -------------------------------------------------------------------------------


def slack(
    sink: SinkSettings,
    event: Event,
    findings: Sequence[FindingJSON],
    *,
    entry_url: EntryUrl | None = None,
) -> Message:
    """A Slack incoming-webhook message: ``text`` for notifications, ``blocks`` for reading.
    Everything taken from the log is escaped (``&``, ``<``, ``>``) and set ``verbatim``, so
    that a hostile SAN can neither link nor mention; link previews are off."""
    fs, keys = _findings(event, findings)
    blocks: list[dict[str, Any]] = [_slack_header(event, fs)]
    if event == "test":
        blocks.append(_mrkdwn_section(_slack_test_text(sink)))
    elif len(fs) == 1:
        blocks += _slack_single(event, fs[0], entry_url)
    else:
        blocks += _slack_group(event, fs, entry_url)
    footer = f"tlog-monitor {__version__} · sink {sink.name}"
    if event != "test":
        footer += f" · {_slack_plural(len(fs), 'finding')} · key {group_key(keys)}"
    blocks.append({"type": "context", "elements": [_mrkdwn(_esc(footer))]})
    doc = {
        "text": _slack_fallback(event, fs, sink),
        "blocks": blocks,
        "unfurl_links": False,
        "unfurl_media": False,
    }
    return Message(_dumps(doc), _json_headers(), idempotency_key(event, keys), event, keys)


def slack_escape(text: str) -> str:
    """Text for Slack mrkdwn: ``&``, ``<`` and ``>`` as entities (so no ``<!channel>``,
    ``<@U123>`` or ``<url|label>`` survives), control characters made visible."""
    return escape(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_esc = slack_escape


def _slack_header(event: Event, fs: Sequence[FindingJSON]) -> dict[str, Any]:
    # plain_text: Slack parses neither links nor mentions here; only configured names and
    # our enums go in it anyway
    f = fs[0]
    if event == "test":
        text = f":test_tube: {TEST_TITLE}"
    else:
        what = _kind(f) if len(fs) == 1 else f"{len(fs)} {_kinds(fs)} findings"
        rule = _common(fs, "rule")
        text = f"{what} · rule {rule}" if rule else what
        if event == "resolve":
            text = f":white_check_mark: RESOLVED: {text}"
        else:
            text = f"{_slack_emoji(_max_severity(fs))} {_max_severity(fs).upper()}: {text}"
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": _clip(text, _SLACK_HEADER_MAX)},
    }


def _slack_emoji(severity: str) -> str:
    if severity in ("critical", "high"):
        return ":rotating_light:"
    return ":warning:" if severity == "medium" else ":information_source:"


def _slack_fallback(event: Event, fs: Sequence[FindingJSON], sink: SinkSettings) -> str:
    """The notification text: configured names and our enums, no values from the log."""
    if event == "test":
        return _esc(f"{TEST_TITLE} (sink {sink.name})")
    f = fs[0]
    rule = _common(fs, "rule")
    if len(fs) == 1:
        text = _kind(f)
        if rule:
            text += f", rule {rule}"
        if _str(f, "log") is not None:
            text += f", {_entry_name(f)}"
    else:
        text = f"{len(fs)} {_kinds(fs)} findings" + (f" of rule {rule}" if rule else "")
    if event == "resolve":
        return _esc(f"RESOLVED: {text}")
    return _esc(f"[{_max_severity(fs).upper()}] {text}")


def _slack_test_text(sink: SinkSettings) -> str:
    return (
        f"*{_esc(TEST_TITLE)}*\n"
        f"This is a test alert, sent by `tlog-monitor alerts test --sink {_esc(sink.name)}` "
        "to check that alerts reach this channel. *No action is needed.*"
    )


def _slack_single(event: Event, f: FindingJSON, entry_url: EntryUrl | None) -> list[dict[str, Any]]:
    fields = [
        f"*Severity*\n{_esc(_severity(f))}",
        f"*Kind*\n{_esc(_kind(f))}",
        f"*Rule*\n{_esc(_str(f, 'rule') or '-')}",
        f"*Log entry*\n{_slack_entry(f, entry_url)}",
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "fields": [_mrkdwn(_clip_mrkdwn(t, _SLACK_FIELD_MAX)) for t in fields]}
    ]
    if event == "resolve":
        blocks.append(_mrkdwn_section("*This finding has cleared.*"))
    if matched := _slack_matched(f):
        blocks.append(_mrkdwn_section("*Identity and artifact (matched)*\n" + matched))
    if unmet := _slack_unmet(f):
        blocks.append(_mrkdwn_section("*Why `expect` failed*\n" + unmet))
    if detail := _str(f, "detail"):
        blocks.append(_mrkdwn_section("*Detail*\n" + _esc(_clip(detail, _DETAIL_MAX))))
    return blocks


def _slack_group(
    event: Event, fs: Sequence[FindingJSON], entry_url: EntryUrl | None
) -> list[dict[str, Any]]:
    rule = _common(fs, "rule")
    intro = f"*{len(fs)} findings*" + (f" of rule *{_esc(rule)}*" if rule else "")
    intro += " cleared." if event == "resolve" else " arrived together."
    if len(fs) > SLACK_LISTED:
        intro += f" The first {SLACK_LISTED} are listed; every one is in the findings record."
    blocks = [_mrkdwn_section(intro)]
    for n, f in enumerate(fs[:SLACK_LISTED], start=1):
        lines = [f"*{n}.* {_slack_entry(f, entry_url)} · {_esc(_severity(f))} {_esc(_kind(f))}"]
        if matched := _slack_matched(f, limit=3):
            lines.append(matched)
        if unmet := _slack_unmet(f, limit=3):
            lines.append(unmet)
        if not matched and not unmet and (detail := _str(f, "detail")):
            lines.append(_esc(_clip(detail, 500)))
        blocks.append(_mrkdwn_section("\n".join(lines)))
    if (more := len(fs) - SLACK_LISTED) > 0:
        text = f"…and {_slack_plural(more, 'more finding')} not shown here."
        blocks.append({"type": "context", "elements": [_mrkdwn(text)]})
    return blocks


def _slack_plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _slack_entry(f: FindingJSON, entry_url: EntryUrl | None) -> str:
    log, index = _str(f, "log"), _index(f)
    if log is None:
        return "-"
    name = _esc(_entry_name(f))
    if index is None or entry_url is None:
        return name
    url = entry_url(log, index)
    return f"<{url}|{name}>" if url is not None and _safe_url(url) else name


def _safe_url(url: str) -> bool:
    """A URL that cannot break out of ``<url|label>``."""
    return (
        url.startswith(("https://", "http://"))
        and len(url) <= 2000
        and all("!" <= c <= "~" and c not in "<>|" for c in url)
    )


def _slack_matched(f: FindingJSON, limit: int = 10) -> str:
    items = [m for m in _list(f, "matched") if isinstance(m, Mapping)]
    lines = [
        f"• {_esc(str(m.get('field', '?')))}: {_code(str(m.get('value', '')))}"
        for m in items[:limit]
    ]
    if len(items) > limit:
        lines.append(f"• (+{len(items) - limit} more)")
    return "\n".join(lines)


def _slack_unmet(f: FindingJSON, limit: int = 10) -> str:
    items = [u for u in _list(f, "unmet") if isinstance(u, Mapping)]
    lines = []
    for u in items[:limit]:
        expected = _code_list(u.get("expected"))
        actual = _code_list(u.get("actual")) or "_absent_"
        lines.append(f"• {_esc(str(u.get('field', '?')))} is {actual}, expected {expected}")
    if len(items) > limit:
        lines.append(f"• (+{len(items) - limit} more)")
    return "\n".join(lines)


def _code_list(values: Any, limit: int = 5) -> str:
    if not isinstance(values, list):
        return ""
    shown = " or ".join(_code(str(v), 200) for v in values[:limit])
    return shown + (f" (+{len(values) - limit} more)" if len(values) > limit else "")


def _code(value: str, limit: int = _VALUE_MAX) -> str:
    """A value from the log as inline code: escaped; a backtick (which would end the code
    span) shown as ``'``."""
    if not value:
        return "_empty_"
    return "`" + _esc(_clip(value, limit).replace("`", "'")) + "`"


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _mrkdwn_section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(_clip_mrkdwn(text, _SLACK_TEXT_MAX))}


def _clip_mrkdwn(text: str, limit: int) -> str:
    """At most ``limit`` characters, never cutting an entity (``&amp;``) or a link."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp, semi = cut.rfind("&"), cut.rfind(";")
    if amp > semi:
        cut = cut[:amp]
    lt, gt = cut.rfind("<"), cut.rfind(">")
    if lt > gt:
        cut = cut[:lt]
    if cut.count("`") % 2:  # an open code span
        cut = cut[: cut.rfind("`")]
    return cut + "…"


# --- PagerDuty ---------------------------------------------------------------------------


def pagerduty(
    sink: SinkSettings,
    event: Event,
    findings: Sequence[FindingJSON],
    *,
    entry_url: EntryUrl | None = None,
) -> Message:
    """A PagerDuty Events API v2 event. ``dedup_key`` is ``group_key(...)``: a finding's own
    key, so that its resolve closes the incident its trigger opened. A resolve carries only
    ``routing_key``, ``dedup_key`` and ``event_action``."""
    fs, keys = _findings(event, findings)
    if sink.routing_key is None:
        raise ConfigError(f"sink {sink.name}: a pagerduty sink needs a routing key")
    routing_key = sink.routing_key.get_secret_value()
    dkey = group_key(keys)
    doc: dict[str, Any]
    if event == "resolve":
        doc = {"routing_key": routing_key, "dedup_key": dkey, "event_action": "resolve"}
    else:
        doc = {
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": dkey,
            "payload": _pagerduty_payload(event, fs, sink),
            "client": "tlog-monitor",
        }
        links = _pagerduty_links(fs, entry_url)
        if links:
            doc["links"] = links
    return Message(_dumps(doc), _json_headers(), idempotency_key(event, keys), event, keys)


def pagerduty_severity(severity: str) -> str:
    """PagerDuty's severity for a finding severity name (unknown names: ``error``)."""
    return PAGERDUTY_SEVERITY.get(severity, "error")


def _pagerduty_payload(
    event: Event, fs: Sequence[FindingJSON], sink: SinkSettings
) -> dict[str, Any]:
    f = fs[0]
    log, rule = _common(fs, "log"), _common(fs, "rule")
    if event == "test":
        summary = f"{TEST_TITLE} (sink {sink.name}): no action is needed"
    elif len(fs) == 1:
        summary = _summary(f)
    else:
        summary = f"{len(fs)} {_kinds(fs)} findings" + (f" of rule {rule}" if rule else "")
        summary += f"; first: {_summary(f)}"
    payload: dict[str, Any] = {
        "summary": _clip(escape(summary), PAGERDUTY_SUMMARY_MAX),
        "source": log or "tlog-monitor",
        "severity": pagerduty_severity(_max_severity(fs)),
        "class": _common(fs, "kind") or "mixed",
    }
    if (created := _timestamp(f)) is not None:
        payload["timestamp"] = _rfc3339(created)
    if log:
        payload["component"] = log
    if rule:
        payload["group"] = rule
    if len(fs) == 1:
        details: dict[str, Any] = _slim(f)
    else:
        details = {
            "count": len(fs),
            "rule": rule,
            "findings": [_slim(x) for x in fs[:PAGERDUTY_LISTED]],
            "findings_not_listed": max(0, len(fs) - PAGERDUTY_LISTED),
            "dedup_keys": [_str(x, "dedup_key") for x in fs[:PAGERDUTY_KEYS_LISTED]],
        }
    details["monitor_version"] = __version__
    payload["custom_details"] = details
    return payload


def _pagerduty_links(fs: Sequence[FindingJSON], entry_url: EntryUrl | None) -> list[Any]:
    if entry_url is None:
        return []
    links = []
    for f in fs[:5]:
        log, index = _str(f, "log"), _index(f)
        if log is not None and index is not None and (url := entry_url(log, index)):
            links.append({"href": url, "text": f"log entry {_entry_name(f)}"})
    return links


def _slim(f: FindingJSON) -> dict[str, Any]:
    """A finding without its evidence (kept in the monitor; it may be large)."""
    return {k: v for k, v in f.items() if k != "evidence"}


# --- Prometheus Alertmanager -------------------------------------------------------------


def alertmanager(
    sink: SinkSettings,
    event: Event,
    findings: Sequence[FindingJSON],
    *,
    now: datetime,
    resend_after: timedelta = ALERTMANAGER_RESEND_AFTER,
    entry_url: EntryUrl | None = None,
) -> Message:
    """The body of ``POST /api/v2/alerts``: one alert per finding (Alertmanager groups them
    itself). Alertmanager resolves an alert once its ``endsAt`` passes, so an active alert
    says ``endsAt = alertmanager_ends_at(now, resend_after)`` and must be sent again by
    ``alertmanager_resend_at(sent_at, resend_after)`` for as long as it is active (a few
    missed re-sends are tolerated). A resolve says ``endsAt = now``; a test alert ends by
    itself after ``ALERTMANAGER_TEST_TTL``."""
    del sink  # one shape for every Alertmanager
    fs, keys = _findings(event, findings)
    _aware(now)
    if event == "resolve":
        ends = now
    elif event == "test":
        ends = now + ALERTMANAGER_TEST_TTL
    else:
        ends = alertmanager_ends_at(now, resend_after)
    alerts = [_alert(f, ends, entry_url, test=event == "test") for f in fs]
    return Message(_dumps(alerts), _json_headers(), idempotency_key(event, keys), event, keys)


def alertmanager_ends_at(now: datetime, resend_after: timedelta) -> datetime:
    """``endsAt`` of an active alert sent at ``now``: ``ALERTMANAGER_ENDS_AFTER`` re-send
    periods later (as Prometheus does)."""
    _check_resend(resend_after)
    return now + resend_after * ALERTMANAGER_ENDS_AFTER


def alertmanager_resend_at(sent_at: datetime, resend_after: timedelta) -> datetime:
    """When the worker must send an active alert again, to keep Alertmanager from resolving
    it: well before the ``endsAt`` it was sent with."""
    _check_resend(resend_after)
    return sent_at + resend_after


def alertmanager_active(finding: FindingJSON) -> bool:
    """Whether a finding is still to be re-sent to Alertmanager (not resolved)."""
    return finding.get("state") != "resolved"


def _check_resend(resend_after: timedelta) -> None:
    if resend_after <= timedelta():
        raise ValueError("resend_after must be positive")


def _alert(
    f: FindingJSON, ends: datetime, entry_url: EntryUrl | None, *, test: bool
) -> dict[str, Any]:
    labels = {
        "alertname": ALERTNAME,
        "kind": _kind_only(f),
        "type": _str(f, "type"),
        "severity": _severity(f),
        "rule": _str(f, "rule"),
        "log": _str(f, "log"),
        "dedup_key": _str(f, "dedup_key"),
    }
    if test:
        labels["test"] = "true"
    annotations = {
        "summary": _clip(escape(_summary(f)), 1024),
        "description": _str(f, "detail") or "",
    }
    log, index = _str(f, "log"), _index(f)
    if index is not None:
        annotations["index"] = str(index)
    alert: dict[str, Any] = {
        "labels": {k: v for k, v in labels.items() if v},  # an empty label is no label
        "annotations": {k: v for k, v in annotations.items() if v},
        "endsAt": _rfc3339(ends),
    }
    if (created := _timestamp(f)) is not None:
        alert["startsAt"] = _rfc3339(created)
    if entry_url is not None and log is not None and index is not None:
        url = entry_url(log, index)
        if url:
            alert["generatorURL"] = url
    return alert


# --- dispatch ----------------------------------------------------------------------------


def build(
    sink: SinkSettings,
    event: Event,
    findings: Sequence[FindingJSON],
    *,
    now: datetime,
    entry_url: EntryUrl | None = None,
    resend_after: timedelta = ALERTMANAGER_RESEND_AFTER,
    msg_id: str | None = None,
) -> Message:
    """The message for ``sink.type``; ``now`` is the attempt's time."""
    _aware(now)
    if sink.type == "webhook":
        return webhook(sink, event, findings, timestamp=int(now.timestamp()), msg_id=msg_id)
    if sink.type == "slack":
        return slack(sink, event, findings, entry_url=entry_url)
    if sink.type == "pagerduty":
        return pagerduty(sink, event, findings, entry_url=entry_url)
    if sink.type == "alertmanager":
        return alertmanager(
            sink, event, findings, now=now, resend_after=resend_after, entry_url=entry_url
        )
    raise ValueError(f"sink {sink.name}: unknown type {sink.type!r}")


def test_message(sink: SinkSettings, *, now: datetime) -> Message:
    """A clearly marked test alert for ``tlog-monitor alerts test --sink NAME``: the
    ``test_finding`` sent as the sink's type sends findings (event ``test``)."""
    return build(sink, "test", [test_finding(sink, now=now)], now=now)


test_message.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
test_finding.__test__ = False  # type: ignore[attr-defined]


# --- helpers -----------------------------------------------------------------------------


def _check_event(event: str) -> None:
    if event not in EVENTS:
        raise ValueError(f"unknown alert event {event!r}; one of {', '.join(EVENTS)}")


def _findings(
    event: Event, findings: Sequence[FindingJSON]
) -> tuple[Sequence[FindingJSON], tuple[str, ...]]:
    _check_event(event)
    if isinstance(findings, Mapping) or not findings:
        raise ValueError("a message is about a non-empty sequence of findings")
    keys = []
    for i, f in enumerate(findings):
        if not isinstance(f, Mapping):
            raise ValueError(f"finding {i} is not a JSON object")
        key, kind, severity = f.get("dedup_key"), f.get("kind"), f.get("severity")
        if not isinstance(key, str) or not key:
            raise ValueError(f"finding {i} has no dedup_key")
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"finding {i} has no kind")
        if severity not in SEVERITIES:
            raise ValueError(f"finding {i} has no known severity")
        if (kind == TEST_KIND) != (event == "test"):
            raise ValueError("test findings go in test events, and only they")
        keys.append(key)
    if len(set(keys)) != len(keys):
        raise ValueError("a message names a finding twice")
    return findings, tuple(keys)


def _str(f: FindingJSON, key: str) -> str | None:
    value = f.get(key)
    return value if isinstance(value, str) else None


def _index(f: FindingJSON) -> int | None:
    value = f.get("index")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _list(f: FindingJSON, key: str) -> list[Any]:
    value = f.get(key)
    return value if isinstance(value, list) else []


def _severity(f: FindingJSON) -> str:
    return str(f["severity"])


def _max_severity(fs: Sequence[FindingJSON]) -> str:
    return max((_severity(f) for f in fs), key=SEVERITIES.index)


def _kind_only(f: FindingJSON) -> str:
    return str(f["kind"])


def _kind(f: FindingJSON) -> str:
    """``kind`` or ``kind (type)``."""
    kind, type_ = _kind_only(f), _str(f, "type")
    return f"{kind} ({type_})" if type_ else kind


def _kinds(fs: Sequence[FindingJSON]) -> str:
    return _common(fs, "kind") or "mixed"


def _common(fs: Sequence[FindingJSON], key: str) -> str | None:
    """The value of ``key`` if every finding has the same string value; else None."""
    values = {_str(f, key) for f in fs}
    return values.pop() if len(values) == 1 else None


def _entry_name(f: FindingJSON) -> str:
    log, index = _str(f, "log") or "?", _index(f)
    return log if index is None else f"{log} #{index}"


def _summary(f: FindingJSON) -> str:
    """One line: what fired and why (the finding's detail says who signed what)."""
    if f.get("kind") == TEST_KIND:
        return TEST_TITLE
    head = _kind(f)
    if detail := _str(f, "detail"):
        return f"{head}: {detail}"
    parts = [head]
    if rule := _str(f, "rule"):
        parts.append(f"rule {rule}")
    if _str(f, "log") is not None:
        parts.append(_entry_name(f))
    return ", ".join(parts)


def _timestamp(f: FindingJSON) -> datetime | None:
    text = _str(f, "created_at")
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("times must be timezone-aware")


def _rfc3339(at: datetime) -> str:
    _aware(at)
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _json_headers() -> dict[str, str]:
    return {"content-type": "application/json", "user-agent": _USER_AGENT}
