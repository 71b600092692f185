"""Alert payloads of every sink: idempotency keys shared by an event's messages, dispatch on
the sink type, builders that refuse what is not a message, and secrets kept out of
everything but where the protocol puts them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from monitor.alerts import payloads
from monitor.alerts.events import AlertFinding, decode_finding
from monitor.alerts.payloads import (
    Event,
    Message,
    alertmanager,
    build,
    idempotency_key,
    pagerduty,
    slack,
    webhook,
)
from monitor.core.errors import MalformedInputError
from monitor.core.findings import dedup_key
from tests.payload_support import NOW, ROUTING_KEY, body, entry_url, health, sink, stored


def strings(doc: Any) -> Iterator[str]:
    if isinstance(doc, str):
        yield doc
    elif isinstance(doc, dict):
        for v in doc.values():
            yield from strings(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from strings(v)


def every_message() -> list[Message]:
    one, group = [stored()], [stored(i) for i in (5, 6, 7)]
    out = [payloads.test_message(sink(k), now=NOW) for k in ("webhook", "slack", "pagerduty")]
    out.append(payloads.test_message(sink("alertmanager"), now=NOW))
    cases: list[tuple[Event, list[AlertFinding]]] = [
        ("trigger", one),
        ("trigger", group),
        ("resolve", [health()]),
    ]
    for k in ("webhook", "slack", "pagerduty", "alertmanager"):
        for event, fs in cases:
            out.append(build(sink(k), event, fs, now=NOW, entry_url=entry_url))
    return out


# --- keys, dispatch, secrets ---------------------------------------------------------------


def test_idempotency_keys() -> None:
    keys = ["a" * 32, "b" * 32]
    assert idempotency_key("trigger", keys) == idempotency_key("trigger", keys[::-1])
    # a digest, the same in every process (not Python's randomised hash)
    assert idempotency_key("trigger", keys) == dedup_key("tlog-monitor.alert", "trigger", *keys)
    events: tuple[Event, ...] = ("trigger", "resolve", "test")
    distinct = {idempotency_key(e, keys) for e in events}
    assert len(distinct) == 3
    assert idempotency_key("trigger", keys[:1]) != idempotency_key("trigger", keys)
    with pytest.raises(ValueError, match="unknown alert event"):
        idempotency_key("fire", keys)  # type: ignore[arg-type]


def test_messages_share_the_idempotency_key_of_their_event_and_findings() -> None:
    fs = [stored(1), stored(2)]
    keys = [f.dedup_key for f in fs]
    for kind in ("webhook", "slack", "pagerduty", "alertmanager"):
        first = build(sink(kind), "trigger", fs, now=NOW)
        retry = build(sink(kind), "trigger", fs, now=NOW + timedelta(minutes=5))
        resolve = build(sink(kind), "resolve", fs, now=NOW)
        assert first.idempotency_key == retry.idempotency_key == idempotency_key("trigger", keys)
        assert resolve.idempotency_key != first.idempotency_key
        assert first.event == "trigger"
        assert resolve.event == "resolve"
        assert first.dedup_keys == tuple(keys)


def test_build_dispatches_on_the_sink_type() -> None:
    fs = [stored()]
    stamp = int(NOW.timestamp())
    assert build(sink("webhook"), "trigger", fs, now=NOW) == webhook(
        sink("webhook"), "trigger", fs, timestamp=stamp
    )
    assert build(sink("slack"), "trigger", fs, now=NOW, entry_url=entry_url) == slack(
        sink("slack"), "trigger", fs, entry_url=entry_url
    )
    assert build(sink("pagerduty"), "resolve", fs, now=NOW) == pagerduty(
        sink("pagerduty"), "resolve", fs
    )
    assert build(sink("alertmanager"), "trigger", fs, now=NOW) == alertmanager(
        sink("alertmanager"), "trigger", fs, now=NOW
    )


def test_builders_refuse_what_is_not_a_message() -> None:
    s = sink("slack")
    with pytest.raises(ValueError, match="non-empty"):
        slack(s, "trigger", [])
    with pytest.raises(ValueError, match="test findings"):
        slack(s, "trigger", [payloads.test_finding(s, now=NOW)])
    with pytest.raises(ValueError, match="test findings"):
        slack(s, "test", [stored()])
    with pytest.raises(ValueError, match="twice"):
        slack(s, "trigger", [stored(), stored()])
    with pytest.raises(MalformedInputError, match="severity"):
        decode_finding({**stored().to_json(), "severity": 3})


def test_repr_hides_body_and_headers() -> None:
    for m in every_message():
        shown = f"{m!r} {m!s} {m}"
        assert m.idempotency_key in shown
        assert ROUTING_KEY not in shown
        assert "v1," not in shown
        assert "mallory" not in shown
        assert "TEST:" not in shown
        assert "bytes>" in shown


def test_secrets_appear_only_where_the_protocol_puts_them() -> None:
    for m in every_message():
        texts = [*strings(body(m)), *m.headers.values(), repr(m)]
        routing = [t for t in texts if ROUTING_KEY in t]
        if m.body.startswith(b'{"routing_key"'):
            assert routing == [ROUTING_KEY]  # body.routing_key, nowhere else
        else:
            assert routing == []
        assert not any("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" in t for t in texts)
        assert not any("S3CR3TPATH" in t for t in texts)
