"""Outbox rows decoded once (``monitor.alerts.events``): what storage wrote comes back field
for field, and what it cannot have written is refused with the field named."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from monitor.alerts.events import Alert, decode_finding, decode_row, test_finding
from monitor.config.models import SinkSettings
from monitor.core.errors import MalformedInputError
from monitor.core.findings import (
    Finding,
    FindingImage,
    FindingKind,
    FindingState,
    Severity,
    Unmet,
    dedup_key,
)
from monitor.storage.findings_store import StoredFinding
from monitor.storage.outbox import OutboxItem

AT = datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)


def stored(kind: FindingKind = FindingKind.UNEXPECTED_SIGNER, **kw: Any) -> dict[str, Any]:
    finding = Finding(
        kind=kind,
        severity=Severity.HIGH,
        dedup_key=dedup_key(kind, kw.get("index")),
        rule="release",
        log="rekor",
        index=7,
        matched=(("san", "a@example"),),
        unmet=(Unmet("san", ("b@*",), ("a@example",)),),
        detail="rekor #7: a@example signed",
        created_at=AT,
        id=3,
        image=kw.get("image"),
    )
    by, at, comment = kw.get("changed", (None, None, None))
    return StoredFinding(finding, by, at, comment, kw.get("evidence")).to_json()


@pytest.mark.parametrize("kind", list(FindingKind))
def test_every_kind_decodes_and_encodes_back_to_what_was_stored(kind: FindingKind) -> None:
    doc = stored(kind)
    assert decode_finding(doc).to_json() == doc
    assert list(decode_finding(doc).to_json()) == list(doc)  # in order: bodies keep it


def test_evidence_and_state_changes_come_back_as_stored() -> None:
    evidence = {"proof": ["ab", {"n": 1, "x": 1.5, "ok": True, "none": None}]}
    changed = ("alice", datetime(2025, 3, 2, tzinfo=UTC), "fixed")
    doc = stored(FindingKind.INTEGRITY_FAILURE, evidence=evidence, changed=changed)
    f = decode_finding(doc)
    assert f.evidence == evidence
    assert f.state_changed_at == changed[1]
    assert f.to_json() == doc


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.pop("dedup_key"), "dedup_key: missing"),
        (lambda d: d.update(dedup_key=""), "dedup_key: empty"),
        (lambda d: d.update(kind="surprise"), "kind: not one of"),
        (lambda d: d.update(state="closed"), "state: not one of"),
        (lambda d: d.update(index=True), "index: expected an integer"),
        (lambda d: d.update(id="3"), "id: expected an integer"),
        (lambda d: d.update(rule=1), "rule: expected a string or null"),
        (lambda d: d.update(created_at="noon"), "created_at: not an ISO 8601 time"),
        (lambda d: d.update(state_changed_at="later"), "state_changed_at: not an ISO 8601"),
        (lambda d: d.update(matched={}), "matched: expected a list"),
        (lambda d: d.update(matched=[{"field": "san"}]), r"matched\[0\].value: missing"),
        (lambda d: d.update(unmet=[{**d["unmet"][0], "actual": "x"}]), r"unmet\[0\].actual"),
        (lambda d: d.update(detail=None), "detail: expected a string"),
        (lambda d: d.update(evidence=[1]), "evidence: expected an object"),
        (lambda d: d.update(evidence={"x": {1, 2}}), "evidence: not JSON"),
        (lambda d: d.update(image="ghcr.io/a/b"), "image: expected an object"),
        (lambda d: d.update(image={"tag": "1"}), "image.repository: missing"),
        (lambda d: d.update(image={"repository": "r", "tag": 1}), "image.tag: expected"),
        (lambda d: d.update(image={"repository": "r", "digest": []}), "image.digest: expected"),
    ],
)
def test_what_storage_cannot_have_written_is_refused_by_name(
    change: Callable[[dict[str, Any]], object], field: str
) -> None:
    doc = stored()
    change(doc)
    with pytest.raises(MalformedInputError, match=field):
        decode_finding(doc)


def test_an_image_comes_back_as_stored_and_an_older_row_has_none() -> None:
    image = FindingImage("ghcr.io/acme/app", "1.0", "sha256:" + "ab" * 32)
    doc = stored(FindingKind.UNSIGNED_IMAGE, image=image)
    assert doc["image"] == {"repository": "ghcr.io/acme/app", "tag": "1.0", "digest": image.digest}
    f = decode_finding(doc)
    assert f.image == image
    assert f.to_json() == doc
    assert decode_finding(stored(FindingKind.TLOG_MISMATCH, image=FindingImage("r"))).image == (
        FindingImage("r", None, None)
    )
    # a row queued before findings carried an image
    old = stored()
    del old["image"]
    assert decode_finding(old).image is None


def row(event: str, payload: object) -> OutboxItem:
    return OutboxItem(1, "k", "soc", payload, event, AT, AT, 0, None, None, None)  # type: ignore[arg-type]


def test_a_row_decodes_with_its_event() -> None:
    q = decode_row(row("resolve", stored()))
    assert (q.event, q.finding.dedup_key, q.item.id) == ("resolve", stored()["dedup_key"], 1)
    with pytest.raises(MalformedInputError, match="event: unknown event 'fire'"):
        decode_row(row("fire", stored()))


def test_an_alert_is_a_nonempty_set_of_findings_of_its_event() -> None:
    f = decode_finding(stored())
    other = decode_finding(stored(FindingKind.HEALTH, index=1))
    sink = SinkSettings(name="soc", type="pagerduty", routing_key=SecretStr("k"))
    test = test_finding(sink, now=AT)
    assert Alert("trigger", (f, other)).dedup_keys == (f.dedup_key, other.dedup_key)
    with pytest.raises(ValueError, match="non-empty"):
        Alert("trigger", ())
    with pytest.raises(ValueError, match="twice"):
        Alert("trigger", (f, f))
    with pytest.raises(ValueError, match="test findings"):
        Alert("trigger", (test,))
    with pytest.raises(ValueError, match="test findings"):
        Alert("test", (f,))
    with pytest.raises(ValueError, match="unknown alert event"):
        Alert("fire", (f,))  # type: ignore[arg-type]
    assert test.kind == "test"
    assert test.to_json()["created_at"] == "2025-03-01T12:00:00.250000Z"
    assert test.state is FindingState.OPEN
