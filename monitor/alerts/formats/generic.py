"""The generic webhook: JSON as ``schema/webhook-v1.schema.json`` documents, signed the
Standard Webhooks way with every secret of the sink (so that keys can rotate)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import resources
from typing import Final

from monitor import __version__
from monitor.alerts.events import Alert, JSONObject, JSONValue, rfc3339
from monitor.alerts.formats.text import USER_AGENT, common, dumps
from monitor.alerts.message import Context, Message, idempotency_key, message, message_id
from monitor.alerts.signing import webhook_headers
from monitor.config.models import SinkSettings
from monitor.config.webhook_secrets import parse_secrets
from monitor.core.errors import ConfigError

WEBHOOK_SCHEMA: Final = "tlog-monitor.webhook/v1"
WEBHOOK_SCHEMA_FILE: Final = "webhook-v1.schema.json"
WEBHOOK_TYPES: Final[Mapping[str, str]] = {
    "trigger": "finding.triggered",
    "resolve": "finding.resolved",
    "test": "test",
}


def render(sink: SinkSettings, alert: Alert, ctx: Context) -> Message:
    """The body carries every finding whole, as stored (evidence included); the timestamp
    is the attempt's (Unix seconds in the signature)."""
    secrets = _secrets(sink)
    timestamp = int(ctx.now.timestamp())
    keys = alert.dedup_keys
    msg_id = message_id(alert.event, keys) if ctx.msg_id is None else ctx.msg_id
    findings: list[JSONValue] = [f.to_json() for f in alert.findings]
    monitor: JSONObject = {"version": __version__}
    doc: JSONObject = {
        "schema": WEBHOOK_SCHEMA,
        "type": WEBHOOK_TYPES[alert.event],
        "id": msg_id,
        "idempotency_key": idempotency_key(alert.event, keys),
        "timestamp": rfc3339(datetime.fromtimestamp(timestamp, UTC)),
        "sink": sink.name,
        "rule": common(f.rule for f in alert.findings),
        "count": len(alert.findings),
        "findings": findings,
        "monitor": monitor,
    }
    body = dumps(doc)
    headers = webhook_headers(msg_id, timestamp, body, secrets)
    headers["user-agent"] = USER_AGENT
    return message(body, headers, alert)


def schema() -> JSONObject:
    """The JSON Schema (draft 2020-12) of the webhook body, as shipped in the package."""
    package = __package__.rpartition(".")[0]  # monitor.alerts, beside its schema folder
    text = (resources.files(package) / "schema" / WEBHOOK_SCHEMA_FILE).read_text("utf-8")
    doc: JSONObject = json.loads(text)
    return doc


def _secrets(sink: SinkSettings) -> tuple[bytes, ...]:
    if sink.secret is None:
        raise ConfigError(f"sink {sink.name}: a webhook sink needs a secret to sign with")
    try:
        return parse_secrets(sink.secret.get_secret_value())
    except ConfigError as e:
        raise ConfigError(f"sink {sink.name}: {e}") from None
