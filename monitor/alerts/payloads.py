"""What each alert sink is sent: from an event and its findings to an HTTP request.

``build`` picks the sink type's format (``monitor.alerts.formats``) and renders the alert:
``event`` (``trigger``, ``resolve`` or ``test``) about one or more findings, decoded from the
outbox (``monitor.alerts.events``). Several findings are a group: findings of one rule that
arrived together, sent as one message so that a storm does not flood the receiver; every one
of them stays in the findings record and is named in the message's ``dedup_keys``. The
per-type functions (``webhook``, ``slack``, ...) render one format directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from monitor.alerts.events import Alert, AlertFinding, Event, test_finding
from monitor.alerts.formats import FORMATS, generic
from monitor.alerts.formats import alertmanager as _alertmanager
from monitor.alerts.formats import pagerduty as _pagerduty
from monitor.alerts.formats import slack as _slack
from monitor.alerts.formats.alertmanager import active as alertmanager_active
from monitor.alerts.formats.alertmanager import ends_at as alertmanager_ends_at
from monitor.alerts.formats.alertmanager import resend_at as alertmanager_resend_at
from monitor.alerts.formats.generic import WEBHOOK_SCHEMA
from monitor.alerts.formats.generic import schema as webhook_schema
from monitor.alerts.formats.pagerduty import severity as pagerduty_severity
from monitor.alerts.formats.slack import escape_mrkdwn as slack_escape
from monitor.alerts.message import (
    ALERTMANAGER_RESEND_AFTER,
    Context,
    EntryUrl,
    Message,
    group_key,
    idempotency_key,
    message_id,
)
from monitor.config.models import SinkSettings

__all__ = [
    "ALERTMANAGER_RESEND_AFTER",
    "WEBHOOK_SCHEMA",
    "EntryUrl",
    "Event",
    "Message",
    "alertmanager",
    "alertmanager_active",
    "alertmanager_ends_at",
    "alertmanager_resend_at",
    "build",
    "group_key",
    "idempotency_key",
    "message_id",
    "pagerduty",
    "pagerduty_severity",
    "slack",
    "slack_escape",
    "test_finding",
    "test_message",
    "webhook",
    "webhook_schema",
]

_UNUSED_TIME = datetime(1970, 1, 1, tzinfo=UTC)  # for the formats that read no ``now``


def build(
    sink: SinkSettings,
    event: Event,
    findings: Sequence[AlertFinding],
    *,
    now: datetime,
    entry_url: EntryUrl | None = None,
    resend_after: timedelta = ALERTMANAGER_RESEND_AFTER,
    msg_id: str | None = None,
) -> Message:
    """The message for ``sink.type``; ``now`` is the attempt's time."""
    ctx = Context(now, entry_url, resend_after, msg_id)
    alert = Alert.of(event, findings)
    render = FORMATS.get(sink.type)
    if render is None:
        raise ValueError(f"sink {sink.name}: unknown type {sink.type!r}")
    return render(sink, alert, ctx)


def test_message(sink: SinkSettings, *, now: datetime) -> Message:
    """A clearly marked test alert for ``tlog-monitor alerts test --sink NAME``: the
    ``test_finding`` sent as the sink's type sends findings (event ``test``)."""
    return build(sink, "test", [test_finding(sink, now=now)], now=now)


test_message.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def webhook(
    sink: SinkSettings,
    event: Event,
    findings: Sequence[AlertFinding],
    *,
    timestamp: int,
    msg_id: str | None = None,
) -> Message:
    """The generic webhook, signed at ``timestamp`` (Unix seconds, the attempt's time)."""
    ctx = Context(datetime.fromtimestamp(timestamp, UTC), msg_id=msg_id)
    return generic.render(sink, Alert.of(event, findings), ctx)


def slack(
    sink: SinkSettings,
    event: Event,
    findings: Sequence[AlertFinding],
    *,
    entry_url: EntryUrl | None = None,
) -> Message:
    """A Slack message (it has no times of its own)."""
    ctx = Context(_UNUSED_TIME, entry_url)
    return _slack.render(sink, Alert.of(event, findings), ctx)


def pagerduty(
    sink: SinkSettings,
    event: Event,
    findings: Sequence[AlertFinding],
    *,
    entry_url: EntryUrl | None = None,
) -> Message:
    """A PagerDuty event (it has no times of its own)."""
    ctx = Context(_UNUSED_TIME, entry_url)
    return _pagerduty.render(sink, Alert.of(event, findings), ctx)


def alertmanager(
    sink: SinkSettings,
    event: Event,
    findings: Sequence[AlertFinding],
    *,
    now: datetime,
    resend_after: timedelta = ALERTMANAGER_RESEND_AFTER,
    entry_url: EntryUrl | None = None,
) -> Message:
    """Alertmanager alerts, active until ``alertmanager_ends_at(now, resend_after)``."""
    ctx = Context(now, entry_url, resend_after)
    return _alertmanager.render(sink, Alert.of(event, findings), ctx)
