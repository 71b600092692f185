"""Alerts: which sinks hear of a finding (``routing``, decided when it is stored), the
outbox's rows decoded once into typed findings and events (``events``), what each sink type
is sent (``formats``, one module per type behind ``message.SinkFormat``; ``payloads`` picks
one: pure functions that build requests, never send them), how webhooks are signed
(``signing``), and the worker that delivers the outbox (``deliver``).

Above storage: may import everything below it.
"""

from monitor.alerts.payloads import (
    ALERTMANAGER_RESEND_AFTER,
    WEBHOOK_SCHEMA,
    EntryUrl,
    Event,
    Message,
    alertmanager,
    alertmanager_active,
    alertmanager_ends_at,
    alertmanager_resend_at,
    build,
    group_key,
    idempotency_key,
    message_id,
    pagerduty,
    pagerduty_severity,
    slack,
    slack_escape,
    test_finding,
    test_message,
    webhook,
    webhook_schema,
)
from monitor.alerts.signing import sign, verify, webhook_headers

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
    "sign",
    "slack",
    "slack_escape",
    "test_finding",
    "test_message",
    "verify",
    "webhook",
    "webhook_headers",
    "webhook_schema",
]
