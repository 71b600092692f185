"""Alerts: what each sink is sent (``payloads``) and how webhooks are signed (``signing``).

Pure functions for the delivery worker: they build requests, they never send them.
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
