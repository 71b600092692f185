"""The webhook body's JSON Schema: shipped in the package, every field described, its
examples valid, in agreement with the code; every body the sinks send validates strictly."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.alerts import payloads
from monitor.alerts.events import AlertFinding
from monitor.alerts.payloads import Event, webhook_schema
from monitor.core.findings import FindingKind, FindingState, HealthType, IntegrityType, Severity
from tests.json_schema_check import schema_errors
from tests.payload_support import NOW, body, health, sink, stored, webhook_doc

SCHEMA_FILE = Path(payloads.__file__).parent / "schema" / "webhook-v1.schema.json"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return webhook_schema()


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
