"""Alert payloads: each sink's request, parsed back; the webhook body against its JSON Schema;
Slack escaping of hostile values; idempotency keys; secrets kept out of everything else."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr, ValidationError

import monitor
from monitor.alerts import payloads
from monitor.alerts.deliver import request_url
from monitor.alerts.events import AlertFinding, decode_finding
from monitor.alerts.payloads import (
    ALERTMANAGER_RESEND_AFTER,
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
    slack,
    slack_escape,
    webhook,
    webhook_schema,
)
from monitor.alerts.signing import verify
from monitor.config.models import SinkSettings
from monitor.config.webhook_secrets import parse_secrets
from monitor.core.errors import ConfigError, MalformedInputError
from monitor.core.findings import (
    Finding,
    FindingKind,
    FindingState,
    HealthType,
    IntegrityType,
    Severity,
    Unmet,
    dedup_key,
)
from monitor.daemon.service import Monitor
from monitor.storage.findings_store import StoredFinding
from tests.storage_support import run

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
ROUTING_KEY = "R0UT1NGK3Yr0ut1ngk3yR0UT1NGK3Y99"
SLACK_URL = "https://hooks.slack.com/services/T000/B000/S3CR3TPATH"
NOW = datetime(2025, 3, 1, 12, 0, 5, tzinfo=UTC)
CREATED = datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)
SCHEMA_FILE = Path(payloads.__file__).parent / "schema" / "webhook-v1.schema.json"
TRUST = Path(__file__).parent / "fixtures" / "trust"

HOSTILE_SAN = "<!channel> <https://evil.example|click here> <@U0123> &lt;!here&gt; `x` *bold*"


def sink(kind: str, **extra: Any) -> SinkSettings:
    raw: dict[str, Any] = {"name": f"{kind}-sink", "type": kind}
    if kind == "slack":
        raw["url"] = SLACK_URL
    elif kind != "pagerduty":
        raw["url"] = "https://receiver.example/hook"
    if kind == "webhook":
        raw["secret"] = SECRET
    if kind == "pagerduty":
        raw["routing_key"] = ROUTING_KEY
    return SinkSettings.model_validate({**raw, **extra})


def stored(
    index: int = 42,
    *,
    kind: FindingKind = FindingKind.UNEXPECTED_SIGNER,
    severity: Severity = Severity.HIGH,
    rule: str | None = "release",
    log: str | None = "rekor",
    type_: str | None = None,
    san: str = "mallory@evil.example",
    detail: str | None = None,
    state: FindingState = FindingState.OPEN,
    evidence: dict[str, Any] | None = None,
) -> AlertFinding:
    """A finding as the outbox stores it (``StoredFinding.to_json``), decoded as delivery
    decodes it."""
    is_rule = rule is not None
    finding = Finding(
        kind=kind,
        severity=severity,
        dedup_key=dedup_key(kind, rule, log, index),
        rule=rule,
        log=log,
        index=index,
        type=type_,
        matched=(("subject", "pkg:oci/example/app"),) if is_rule else (),
        unmet=(
            (
                Unmet("san", ("https://github.com/example/app/*",), (san,)),
                Unmet("fulcio_chain", ("verified",), ()),
            )
            if is_rule
            else ()
        ),
        detail=(
            detail
            if detail is not None
            else f"{log} #{index} hashedrekord: {san} signed pkg:oci/example/app; rule {rule}: "
            f"not as expected: san is {san}, expected https://github.com/example/app/*"
        ),
        created_at=CREATED,
        state=state,
        id=index + 1000,
    )
    return decode_finding(StoredFinding(finding, None, None, None, evidence).to_json())


def health(state: FindingState = FindingState.OPEN) -> AlertFinding:
    return stored(
        0,
        kind=FindingKind.HEALTH,
        severity=Severity.CRITICAL,
        rule=None,
        type_=str(HealthType.LOG_UNREACHABLE),
        detail="rekor unreachable for 5m: connection refused",
        state=state,
    )


def entry_url(log: str, index: int) -> str | None:
    return f"https://search.sigstore.dev/?logIndex={index}" if log == "rekor" else None


def body(m: Message) -> Any:
    return json.loads(m.body)


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


# --- a focused JSON Schema checker (jsonschema is not a dependency) -----------------------

_KEYWORDS = {
    # annotations
    "$schema", "$id", "$defs", "$comment", "title", "description", "examples",
    # assertions and applicators this checker implements
    "type", "enum", "const", "properties", "required", "additionalProperties", "items",
    "minItems", "minimum", "minLength", "format", "$ref", "allOf", "if", "then", "else", "not",
}  # fmt: skip


def _is(value: Any, kind: str) -> bool:
    match kind:
        case "object":
            return isinstance(value, dict)
        case "array":
            return isinstance(value, list)
        case "string":
            return isinstance(value, str)
        case "integer":
            return isinstance(value, int) and not isinstance(value, bool)
        case "boolean":
            return isinstance(value, bool)
        case "null":
            return value is None
    raise AssertionError(f"schema type {kind!r} not handled by this checker")


def _date_time(text: str) -> bool:
    if "T" not in text.upper():
        return False
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return at.tzinfo is not None


def schema_errors(  # noqa: PLR0912  # a branch per keyword reads best
    value: Any, schema: Any, root: Any, path: str = "$", *, strict: bool = False
) -> list[str]:
    """Where ``value`` breaks ``schema`` (a subset of draft 2020-12: every keyword the
    webhook schema uses; any other keyword fails the check rather than being ignored).
    ``strict``: objects with declared ``properties`` may hold no other key."""
    if schema is True:
        return []
    if schema is False:
        return [f"{path}: nothing is allowed here"]
    unknown = set(schema) - _KEYWORDS
    assert not unknown, f"schema keywords not handled by this checker: {unknown}"
    errors: list[str] = []

    def sub(v: Any, s: Any, p: str = path) -> list[str]:
        return schema_errors(v, s, root, p, strict=strict)

    if "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/"), ref
        target = root
        for part in ref[2:].split("/"):
            target = target[part]
        errors += sub(value, target)
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is(value, k) for k in kinds):
            return [*errors, f"{path}: {value!r} is not {' or '.join(kinds)}"]
    if "enum" in schema and not any(value == e and type(value) is type(e) for e in schema["enum"]):
        errors.append(f"{path}: {value!r} not one of {schema['enum']}")
    if "const" in schema and not (
        value == schema["const"] and type(value) is type(schema["const"])
    ):
        errors.append(f"{path}: {value!r} is not {schema['const']!r}")
    if "not" in schema and not sub(value, schema["not"]):
        errors.append(f"{path}: matches what is forbidden: {schema['not']}")
    for part in schema.get("allOf", []):
        errors += sub(value, part)
    if "if" in schema:
        branch = "then" if not sub(value, schema["if"]) else "else"
        if branch in schema:
            errors += sub(value, schema[branch])
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{path}: too short")
        if schema.get("format") == "date-time" and not _date_time(value):
            errors.append(f"{path}: {value!r} is not an RFC 3339 date-time")
    if _is(value, "integer") and "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{path}: {value} is below {schema['minimum']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{path}: too few items")
        if "items" in schema:
            for i, item in enumerate(value):
                errors += sub(item, schema["items"], f"{path}[{i}]")
    if isinstance(value, dict):
        errors += [f"{path}: {k} missing" for k in schema.get("required", []) if k not in value]
        props = schema.get("properties", {})
        for k, v in value.items():
            if k in props:
                errors += sub(v, props[k], f"{path}.{k}")
            elif "additionalProperties" in schema:
                errors += sub(v, schema["additionalProperties"], f"{path}.{k}")
            elif strict and props and schema.get("type") == "object":
                errors.append(f"{path}.{k}: not documented in the schema")
    return errors


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return webhook_schema()


def webhook_doc(event: Event = "trigger", fs: list[AlertFinding] | None = None) -> Any:
    findings = [stored()] if fs is None else fs
    return body(webhook(sink("webhook"), event, findings, timestamp=1740830405))


# --- the schema ---------------------------------------------------------------------------


def test_schema_ships_in_the_package_and_is_draft_2020_12(schema: dict[str, Any]) -> None:
    assert schema == json.loads(SCHEMA_FILE.read_text("utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["schema"]["const"] == payloads.WEBHOOK_SCHEMA


def _described(node: Any, path: str) -> Iterator[str]:
    """Paths of documented properties that lack a description (conditionals and examples
    repeat properties already documented)."""
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key in ("if", "then", "else", "not", "allOf", "examples", "const", "enum"):
            continue
        if key == "properties":
            for name, prop in value.items():
                if not prop.get("description"):
                    yield f"{path}.{name}"
                yield from _described(prop, f"{path}.{name}")
        elif isinstance(value, dict):
            yield from _described(value, f"{path}/{key}")


def test_every_field_of_the_schema_is_described(schema: dict[str, Any]) -> None:
    assert schema["description"]
    assert list(_described(schema, "$")) == []


def test_schema_examples_are_valid(schema: dict[str, Any]) -> None:
    assert schema["examples"]
    for example in schema["examples"]:
        assert schema_errors(example, schema, schema, strict=True) == []


def test_schema_agrees_with_the_code(schema: dict[str, Any]) -> None:
    finding = schema["$defs"]["finding"]
    props = finding["properties"]
    assert set(props["kind"]["enum"]) == {str(k) for k in FindingKind} | {"test"}
    assert props["severity"]["enum"] == [str(s) for s in Severity]
    assert set(props["state"]["enum"]) == {str(s) for s in FindingState}
    assert set(finding["required"]) == set(props) == set(stored().to_json())
    assert set(schema["required"]) == set(schema["properties"]) == set(webhook_doc())
    described_types = props["type"]["description"]
    for t in [*IntegrityType, *HealthType]:
        assert str(t) in described_types


@pytest.mark.parametrize(
    ("event", "findings"),
    [
        ("trigger", [stored()]),
        ("trigger", [stored(i) for i in range(30)]),
        ("resolve", [health(FindingState.RESOLVED)]),
        ("trigger", [stored(evidence={"checkpoint": "rekor.sigstore.dev - 123\n"}, rule=None)]),
    ],
)
def test_webhook_bodies_validate_strictly(
    schema: dict[str, Any], event: Event, findings: list[AlertFinding]
) -> None:
    assert schema_errors(webhook_doc(event, findings), schema, schema, strict=True) == []


def test_the_test_alert_validates(schema: dict[str, Any]) -> None:
    doc = body(payloads.test_message(sink("webhook"), now=NOW))
    assert schema_errors(doc, schema, schema, strict=True) == []


@pytest.mark.parametrize(
    "mutation",
    [
        lambda d: d.pop("count"),
        lambda d: d.update(schema="tlog-monitor.webhook/v2"),
        lambda d: d.update(type="finding.exploded"),
        lambda d: d.update(timestamp="yesterday"),
        lambda d: d.update(findings=[]),
        lambda d: d.update(count=0),
        lambda d: d["findings"][0].update(kind="bogus"),
        lambda d: d["findings"][0].update(severity="HIGH"),
        lambda d: d["findings"][0].update(index=-1),
        lambda d: d["findings"][0].update(index="42"),
        lambda d: d["findings"][0].update(created_at="2025-03-01 noon"),
        lambda d: d["findings"][0].pop("dedup_key"),
        lambda d: d["findings"][0]["unmet"][0].update(actual="x"),
        lambda d: d["findings"][0].update(kind="test"),  # a test finding in a real alert
        lambda d: d.update(type="test"),  # a real finding in a test alert
        lambda d: d["monitor"].pop("version"),
    ],
)
def test_the_checker_rejects_what_the_schema_forbids(schema: dict[str, Any], mutation: Any) -> None:
    doc = webhook_doc()
    mutation(doc)
    assert schema_errors(doc, schema, schema) != []


def test_strict_checking_catches_undocumented_fields(schema: dict[str, Any]) -> None:
    doc = webhook_doc()
    doc["findings"][0]["surprise"] = 1
    assert schema_errors(doc, schema, schema) == []  # receivers ignore new fields
    assert schema_errors(doc, schema, schema, strict=True) == [
        "$.findings[0].surprise: not documented in the schema"
    ]


# --- webhook ------------------------------------------------------------------------------


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


# --- Slack --------------------------------------------------------------------------------


def mrkdwn_texts(doc: Any) -> Iterator[dict[str, Any]]:
    if isinstance(doc, dict):
        if doc.get("type") == "mrkdwn":
            yield doc
        for v in doc.values():
            yield from mrkdwn_texts(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from mrkdwn_texts(v)


def test_slack_single_finding_reads_well() -> None:
    m = slack(sink("slack"), "trigger", [stored()], entry_url=entry_url)
    doc = body(m)
    assert doc["unfurl_links"] is False
    assert doc["unfurl_media"] is False
    assert doc["text"] == "[HIGH] unexpected_signer, rule release, rekor #42"
    header = doc["blocks"][0]
    assert header["type"] == "header"
    assert "HIGH" in header["text"]["text"]
    assert "rule release" in header["text"]["text"]
    text = "\n".join(t["text"] for t in mrkdwn_texts(doc))
    assert "<https://search.sigstore.dev/?logIndex=42|rekor #42>" in text
    assert "`pkg:oci/example/app`" in text  # the artifact that matched
    assert "san is `mallory@evil.example`, expected `https://github.com/example/app/*`" in text
    assert "fulcio_chain is _absent_, expected `verified`" in text
    assert "mallory@evil.example signed pkg:oci/example/app" in text  # the detail
    assert m.headers == {"content-type": "application/json", "user-agent": m.headers["user-agent"]}


def test_slack_without_a_link() -> None:
    doc = body(slack(sink("slack"), "trigger", [stored(log="other")], entry_url=entry_url))
    text = "\n".join(t["text"] for t in mrkdwn_texts(doc))
    assert "*Log entry*\nother #42" in text
    assert "<" not in text


@pytest.mark.parametrize("where", ["san", "detail"])
def test_slack_escapes_hostile_values(where: str) -> None:
    f = stored(san=HOSTILE_SAN) if where == "san" else stored(detail=HOSTILE_SAN)
    for fs in ([f], [f, stored(43, san=HOSTILE_SAN)]):
        doc = body(slack(sink("slack"), "trigger", fs, entry_url=entry_url))
        texts = list(mrkdwn_texts(doc))
        assert texts
        assert all(t["verbatim"] is True for t in texts)
        joined = "\n".join(t["text"] for t in texts)
        assert "&lt;!channel&gt;" in joined
        assert "&lt;https://evil.example|click here&gt;" in joined
        assert "&amp;lt;!here&amp;gt;" in joined  # entities in the data stay text
        for link in ("<https://search.sigstore.dev/?logIndex=42|rekor #42>",
                     "<https://search.sigstore.dev/?logIndex=43|rekor #43>"):  # fmt: skip
            joined = joined.replace(link, "")
        # no '<' or '>' left: nothing from the log can open a link or a mention
        assert "<" not in joined
        assert ">" not in joined
        assert "<" not in doc["text"]
        assert "&" not in doc["text"]  # the notification text holds no log values


def test_slack_escape() -> None:
    assert slack_escape("<!channel> a&b >x") == "&lt;!channel&gt; a&amp;b &gt;x"
    assert slack_escape("line\nbreak\x00") == "line\\nbreak\\x00"


@pytest.mark.parametrize(
    "url", ["https://x.example/a|<!channel>", "javascript:alert(1)", "https://x.example/a b"]
)
def test_slack_refuses_links_that_could_break_out(url: str) -> None:
    doc = body(slack(sink("slack"), "trigger", [stored()], entry_url=lambda _log, _i: url))
    joined = "\n".join(t["text"] for t in mrkdwn_texts(doc))
    assert "<" not in joined
    assert "rekor #42" in joined


def test_slack_group_lists_ten_and_counts_the_rest() -> None:
    fs = [stored(i) for i in range(100, 125)]
    m = slack(sink("slack"), "trigger", fs, entry_url=entry_url)
    doc = body(m)
    assert m.dedup_keys == tuple(f.dedup_key for f in fs)  # none lost
    assert doc["text"] == "[HIGH] 25 unexpected_signer findings of rule release"
    joined = "\n".join(t["text"] for t in mrkdwn_texts(doc))
    assert "*25 findings* of rule *release* arrived together" in joined
    for i in range(100, 110):
        assert f"|rekor #{i}>" in joined
    assert "rekor #110" not in joined
    assert "15 more findings not shown" in joined
    assert len(doc["blocks"]) <= 50


def test_slack_group_severity_is_the_worst() -> None:
    fs = [stored(1, severity=Severity.LOW), stored(2, severity=Severity.CRITICAL)]
    doc = body(slack(sink("slack"), "trigger", fs))
    assert doc["text"].startswith("[CRITICAL] 2 unexpected_signer findings")


def test_slack_respects_block_limits_with_huge_hostile_values() -> None:
    evil = "&<>" * 1000
    f = stored(san=evil, detail=evil)
    for fs in ([f], [f, stored(43, san=evil, detail=evil)]):
        doc = body(slack(sink("slack"), "trigger", fs, entry_url=entry_url))
        assert len(doc["blocks"][0]["text"]["text"]) <= 150
        for block in doc["blocks"]:
            if "text" in block and block["type"] == "section":
                text = block["text"]["text"]
                assert 0 < len(text) <= 3000
                assert text.count("`") % 2 == 0
                if "&" in text:  # no entity cut in half
                    assert ";" in text[text.rfind("&") :]
            for field in block.get("fields", []):
                assert len(field["text"]) <= 2000


def test_slack_resolve_and_test_are_marked() -> None:
    resolved = body(slack(sink("slack"), "resolve", [health()]))
    assert resolved["text"].startswith("RESOLVED: health (log_unreachable)")
    assert "RESOLVED" in resolved["blocks"][0]["text"]["text"]
    assert any("has cleared" in t["text"] for t in mrkdwn_texts(resolved))
    test = body(payloads.test_message(sink("slack"), now=NOW))
    assert test["text"].startswith("TEST: tlog-monitor alert path check")
    assert "TEST" in test["blocks"][0]["text"]["text"]
    assert any("No action is needed" in t["text"] for t in mrkdwn_texts(test))


def test_slack_never_carries_its_url() -> None:
    for m in (
        slack(sink("slack"), "trigger", [stored()]),
        payloads.test_message(sink("slack"), now=NOW),
    ):
        assert b"S3CR3TPATH" not in m.body
        assert "S3CR3TPATH" not in repr(m)


def monitor_config(path: Path, root: str, logs: list[dict[str, Any]]) -> Path:
    """A configuration of ``logs`` checked against the ``root`` trusted root fixture."""
    doc = {
        "trust": {
            "trusted_root": str(TRUST / f"trusted_root.{root}.json"),
            "signing_config": str(TRUST / "signing_config.v0.2.prod.json"),
        },
        "logs": logs,
        "database": {"url": f"sqlite+aiosqlite:///{path.with_suffix('.db')}"},
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_the_daemon_links_entries_of_the_public_rekor_v1_log_only(tmp_path: Path) -> None:
    """``Monitor.entry_url`` (``runners.link_to_entry``), what the daemon gives the sinks: the
    public Rekor v1 log's entries link to search.sigstore.dev by log index; no other log's
    entries link anywhere."""
    prod = monitor_config(
        tmp_path / "prod.yaml",
        "prod",
        [
            {"name": "rekor", "api": "v1", "url": "https://rekor.sigstore.dev"},
            {"name": "rekor-v2", "api": "v2", "url": "https://log2025-1.rekor.sigstore.dev"},
        ],
    )
    staging = monitor_config(
        tmp_path / "staging.yaml",
        "staging",
        [{"name": "staging", "api": "v1", "url": "https://rekor.sigstage.dev"}],
    )

    async def links() -> None:
        async with Monitor.open(str(prod)) as m:
            assert sorted(m.runners) == ["rekor", "rekor-v2"]
            assert m.store.queued == m.wake_workers  # a commit that queues alerts wakes them
            assert m.entry_url("rekor", 123456789) == (
                "https://search.sigstore.dev/?logIndex=123456789"
            )
            assert m.entry_url("rekor", 0) == "https://search.sigstore.dev/?logIndex=0"
            assert m.entry_url("rekor-v2", 7) is None
            assert m.entry_url("not-configured", 7) is None
            doc = body(slack(sink("slack"), "trigger", [stored(5)], entry_url=m.entry_url))
            text = "\n".join(t["text"] for t in mrkdwn_texts(doc))
            assert "<https://search.sigstore.dev/?logIndex=5|rekor #5>" in text
        async with Monitor.open(str(staging)) as m:
            assert list(m.runners) == ["staging"]
            assert m.entry_url("staging", 7) is None

    run(links)


# --- PagerDuty ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        (Severity.CRITICAL, "critical"),
        (Severity.HIGH, "error"),
        (Severity.MEDIUM, "warning"),
        (Severity.LOW, "info"),
        (Severity.INFO, "info"),
    ],
)
def test_pagerduty_severity(severity: Severity, expected: str) -> None:
    doc = body(pagerduty(sink("pagerduty"), "trigger", [stored(severity=severity)]))
    assert doc["payload"]["severity"] == expected


def test_pagerduty_trigger() -> None:
    f = stored(evidence={"big": "x" * 1000})
    m = pagerduty(sink("pagerduty"), "trigger", [f], entry_url=entry_url)
    doc = body(m)
    assert doc["routing_key"] == ROUTING_KEY
    assert doc["event_action"] == "trigger"
    assert doc["dedup_key"] == f.dedup_key
    p = doc["payload"]
    assert p["summary"].startswith("unexpected_signer: rekor #42 hashedrekord: mallory@")
    assert p["source"] == "rekor"
    assert p["component"] == "rekor"
    assert p["group"] == "release"
    assert p["class"] == "unexpected_signer"
    assert p["timestamp"] == "2025-03-01T12:00:00.250000Z"
    assert p["custom_details"]["unmet"] == f.to_json()["unmet"]
    assert "evidence" not in p["custom_details"]  # kept in the monitor, may be large
    assert doc["links"] == [
        {"href": "https://search.sigstore.dev/?logIndex=42", "text": "log entry rekor #42"}
    ]


def test_pagerduty_summary_is_at_most_1024_characters() -> None:
    doc = body(pagerduty(sink("pagerduty"), "trigger", [stored(detail="y" * 5000)]))
    assert len(doc["payload"]["summary"]) == 1024


def test_pagerduty_resolve_carries_only_the_keys() -> None:
    f = health(FindingState.RESOLVED)
    trigger = body(pagerduty(sink("pagerduty"), "trigger", [f]))
    resolve = body(pagerduty(sink("pagerduty"), "resolve", [f]))
    assert resolve == {
        "routing_key": ROUTING_KEY,
        "dedup_key": f.dedup_key,
        "event_action": "resolve",
    }
    assert resolve["dedup_key"] == trigger["dedup_key"]  # the resolve closes that incident


def test_pagerduty_group_key_is_stable_and_derived() -> None:
    fs = [stored(i) for i in range(30)]
    doc = body(pagerduty(sink("pagerduty"), "trigger", fs))
    reordered = body(pagerduty(sink("pagerduty"), "trigger", fs[::-1]))
    assert doc["dedup_key"] == reordered["dedup_key"] == group_key([f.dedup_key for f in fs])
    assert doc["dedup_key"].startswith("group-")
    assert doc["dedup_key"] not in {f.dedup_key for f in fs}
    other = body(pagerduty(sink("pagerduty"), "trigger", fs[:29]))
    assert other["dedup_key"] != doc["dedup_key"]
    details = doc["payload"]["custom_details"]
    assert details["count"] == 30
    assert len(details["findings"]) == 20
    assert details["findings_not_listed"] == 10
    assert doc["payload"]["summary"].startswith("30 unexpected_signer findings of rule release")


def test_pagerduty_test_event_is_marked() -> None:
    doc = body(payloads.test_message(sink("pagerduty"), now=NOW))
    assert doc["event_action"] == "trigger"
    assert doc["dedup_key"].startswith("test-")
    assert doc["payload"]["summary"].startswith("TEST: tlog-monitor alert path check")
    assert doc["payload"]["severity"] == "info"
    assert doc["payload"]["class"] == "test"
    later = body(payloads.test_message(sink("pagerduty"), now=NOW + timedelta(seconds=1)))
    assert later["dedup_key"] != doc["dedup_key"]  # every test reaches PagerDuty


def test_pagerduty_needs_its_routing_key() -> None:
    s = SinkSettings.model_construct(name="pd", type="pagerduty", routing_key=None)
    with pytest.raises(ConfigError, match="sink pd: a pagerduty sink needs a routing key"):
        pagerduty(s, "trigger", [stored()])


# --- Alertmanager -------------------------------------------------------------------------


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
