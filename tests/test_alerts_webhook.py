"""Alert payloads for a webhook: the body and its Standard Webhooks signature, with every
secret while keys rotate, the same message on every retry, and secret problems named by sink."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

import monitor
from monitor.alerts import payloads
from monitor.alerts.payloads import message_id, webhook
from monitor.alerts.signing import verify
from monitor.config.models import SinkSettings
from monitor.config.webhook_secrets import parse_secrets
from monitor.core.errors import ConfigError
from tests.payload_support import NOW, SECRET, body, health, sink, stored, webhook_doc

OTHER_SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def test_webhook_body_and_signature() -> None:
    findings = [stored(1, evidence={"proof": ["ab", "cd"]}), stored(2)]
    m = webhook(sink("webhook"), "trigger", findings, timestamp=1740830405)
    doc = body(m)
    assert doc["schema"] == "tlog-monitor.webhook/v1"
    assert doc["type"] == "finding.triggered"
    assert doc["timestamp"] == "2025-03-01T12:00:05Z"
    assert doc["count"] == 2
    assert doc["findings"] == [f.to_json() for f in findings]  # as stored, evidence included
    assert doc["rule"] == "release"
    assert doc["sink"] == "webhook-sink"
    assert doc["monitor"] == {"version": monitor.__version__}
    assert doc["id"] == m.headers["webhook-id"] == message_id("trigger", m.dedup_keys)
    assert doc["idempotency_key"] == m.idempotency_key
    assert m.headers["webhook-timestamp"] == "1740830405"
    assert m.headers["content-type"] == "application/json"
    assert m.dedup_keys == (findings[0].dedup_key, findings[1].dedup_key)
    secrets = parse_secrets(SECRET)
    assert verify(m.headers, m.body, secrets, now=1740830405)
    assert not verify(m.headers, m.body.replace(b"release", b"relaxed"), secrets, now=1740830405)


def test_webhook_types() -> None:
    assert webhook_doc("resolve", [health()])["type"] == "finding.resolved"
    doc = body(payloads.test_message(sink("webhook"), now=NOW))
    assert doc["type"] == "test"
    assert [f["kind"] for f in doc["findings"]] == ["test"]
    assert doc["findings"][0]["severity"] == "info"
    assert doc["findings"][0]["detail"].startswith("TEST: tlog-monitor alert path check")


def test_webhook_signs_with_every_secret_while_keys_rotate() -> None:
    m = webhook(
        sink("webhook", secret=f"{OTHER_SECRET} {SECRET}"), "trigger", [stored()], timestamp=10
    )
    assert len(m.headers["webhook-signature"].split(" ")) == 2
    assert verify(m.headers, m.body, parse_secrets(SECRET), now=10)
    assert verify(m.headers, m.body, parse_secrets(OTHER_SECRET), now=10)


def test_webhook_retries_are_the_same_message() -> None:
    s = sink("webhook")
    first = webhook(s, "trigger", [stored()], timestamp=100)
    again = webhook(s, "trigger", [stored()], timestamp=100)
    later = webhook(s, "trigger", [stored()], timestamp=160)
    assert first == again
    assert later.headers["webhook-id"] == first.headers["webhook-id"]
    assert later.idempotency_key == first.idempotency_key
    assert later.headers["webhook-signature"] != first.headers["webhook-signature"]
    explicit = webhook(s, "trigger", [stored()], timestamp=100, msg_id="msg_abc")
    assert explicit.headers["webhook-id"] == body(explicit)["id"] == "msg_abc"


def test_webhook_secret_problems_name_the_sink_not_the_secret() -> None:
    missing = SinkSettings.model_construct(name="hook", type="webhook", secret=None)
    with pytest.raises(ConfigError, match="sink hook: a webhook sink needs a secret"):
        webhook(missing, "trigger", [stored()], timestamp=1)
    # a short secret is refused when the configuration loads, without echoing it
    with pytest.raises(ValidationError) as bad:
        sink("webhook", secret="whsec_c2hvcnRzZWNyZXQ=")
    assert "c2hvcnRzZWNyZXQ" not in str(bad.value)
    # and by the signer too, should settings be built some other way
    short = SinkSettings.model_construct(
        name="hook", type="webhook", secret=SecretStr("whsec_c2hvcnRzZWNyZXQ=")
    )
    with pytest.raises(ConfigError) as info:
        webhook(short, "trigger", [stored()], timestamp=1)
    assert "sink hook" in str(info.value)
    assert "c2hvcnRzZWNyZXQ" not in str(info.value)
