"""Every sink format, pinned: a fixed set of alerts (every finding kind, every event, single
findings and groups, hostile and oversized values, with and without entry links) rendered to
every sink type and compared with ``fixtures/alerts/golden.json``, byte for byte.

The bodies and headers are kept as sent, except the package version (``<version>``, so that a
release does not rewrite the file) and the webhook signatures, which are checked instead (they
sign the version too). After a deliberate change of a format, regenerate the file with
``TLOG_MONITOR_UPDATE_GOLDEN=1 pytest tests/test_alerts_golden.py`` and read its diff.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

import monitor
from monitor.alerts.events import AlertFinding, decode_finding
from monitor.alerts.payloads import Event, Message, build, test_message
from monitor.alerts.signing import verify
from monitor.config.models import SinkSettings
from monitor.config.webhook_secrets import parse_secrets
from monitor.core.findings import (
    Finding,
    FindingImage,
    FindingKind,
    FindingState,
    HealthType,
    IntegrityType,
    Severity,
    Unmet,
    dedup_key,
)
from monitor.storage.findings_store import StoredFinding

GOLDEN = Path(__file__).parent / "fixtures" / "alerts" / "golden.json"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NOW = datetime(2025, 3, 1, 12, 0, 5, tzinfo=UTC)
CREATED = datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)
HOSTILE = "<!channel> <https://evil.example|click> <@U0123> &lt;!here&gt; `x` *b* \x07"
SINK_TYPES = ("webhook", "slack", "pagerduty", "alertmanager")


def sink(kind: str) -> SinkSettings:
    raw: dict[str, Any] = {"name": f"{kind}-sink", "type": kind}
    if kind == "pagerduty":
        raw["routing_key"] = SecretStr("R0UT1NGK3Y")
    else:
        raw["url"] = "https://receiver.example/hook"
    if kind == "webhook":
        raw["secret"] = SECRET
    return SinkSettings.model_validate(raw)


def finding(  # one knob per field a format reads
    kind: FindingKind,
    index: int | None = 42,
    *,
    severity: Severity = Severity.HIGH,
    rule: str | None = "release",
    log: str | None = "rekor",
    type_: str | None = None,
    matched: tuple[tuple[str, str], ...] = (),
    unmet: tuple[Unmet, ...] = (),
    detail: str = "",
    state: FindingState = FindingState.OPEN,
    created_at: datetime = CREATED,
    changed: tuple[str, datetime, str] | None = None,
    evidence: dict[str, Any] | None = None,
    image: FindingImage | None = None,
) -> AlertFinding:
    """A finding as the outbox stores it, decoded as delivery decodes it."""
    f = Finding(
        kind=kind,
        severity=severity,
        dedup_key=dedup_key(kind, rule, log, index, type_, detail),
        rule=rule,
        log=log,
        index=index,
        type=type_,
        matched=matched,
        unmet=unmet,
        detail=detail,
        created_at=created_at,
        state=state,
        id=None if index is None else index + 1000,
        image=image,
    )
    by, at, comment = changed if changed is not None else (None, None, None)
    return decode_finding(StoredFinding(f, by, at, comment, evidence).to_json())


def signer(
    index: int, severity: Severity = Severity.HIGH, san: str = "mallory@evil"
) -> AlertFinding:
    return finding(
        FindingKind.UNEXPECTED_SIGNER,
        index,
        severity=severity,
        matched=(("subject", "pkg:oci/example/app"), ("san", san)),
        unmet=(
            Unmet("san", ("https://github.com/example/*",), (san,)),
            Unmet("fulcio_chain", ("verified",), ()),
            Unmet("issuer", tuple(f"https://issuer{i}.example" for i in range(7)), ()),
        ),
        detail=f"rekor #{index} hashedrekord: {san} signed pkg:oci/example/app",
    )


def findings_of_every_kind() -> list[tuple[str, AlertFinding]]:
    return [
        ("unexpected_signer", signer(42)),
        (
            "unexpected_key_use",
            finding(
                FindingKind.UNEXPECTED_KEY_USE,
                43,
                severity=Severity.CRITICAL,
                matched=(("key_fingerprint", "sha256:ab" * 8),),
                unmet=(Unmet("key_fingerprint", ("sha256:cd",), ("sha256:ab",)),),
            ),
        ),
        (
            "expected_use",
            finding(
                FindingKind.EXPECTED_USE,
                44,
                severity=Severity.INFO,
                matched=(("san", "https://github.com/example/app/.github/workflows/r.yml"),),
                state=FindingState.RECORDED,
                detail="rekor #44: signed as expected",
            ),
        ),
        (
            "watched_use",
            finding(
                FindingKind.WATCHED_USE,
                45,
                severity=Severity.LOW,
                rule="watch-all",
                matched=(("digest", "sha256:" + "0" * 64), ("ext:1.2.3", "")),
            ),
        ),
        (
            "integrity_failure",
            finding(
                FindingKind.INTEGRITY_FAILURE,
                None,
                severity=Severity.CRITICAL,
                rule=None,
                type_=str(IntegrityType.CONSISTENCY_FAILURE),
                detail="rekor: tree 100 is not consistent with tree 90",
                evidence={"old": {"size": 90, "root": "ab"}, "proof": ["cd", "ef"], "n": 1.5},
            ),
        ),
        (
            "malformed_entry",
            finding(
                FindingKind.MALFORMED_ENTRY,
                46,
                severity=Severity.MEDIUM,
                rule=None,
                log="rekor-v2-shard",
                detail=f"rekor-v2-shard #46: cannot parse the body: {HOSTILE}",
            ),
        ),
        (
            "health",
            finding(
                FindingKind.HEALTH,
                None,
                severity=Severity.CRITICAL,
                rule=None,
                log=None,
                type_=str(HealthType.LOG_UNREACHABLE),
                detail="rekor unreachable for 5m: connection refused",
                created_at=datetime(2025, 3, 1, 11, 0, 0),  # a naive time is UTC
            ),
        ),
        (
            "unwitnessed_checkpoint",
            finding(
                FindingKind.UNWITNESSED_CHECKPOINT,
                None,
                severity=Severity.HIGH,
                rule=None,
                log="rekor-v2-shard",
                type_="require",
                detail="the log's checkpoints have lacked the witness quorum for 600s (latest: "
                "size 1200); 2 of group 'configured witnesses' needed, 1 cosigned",
            ),
        ),
        (
            "unsigned_image",
            finding(
                FindingKind.UNSIGNED_IMAGE,
                None,
                rule=None,
                log=None,
                detail="ghcr.io/example/app:1.2 (sha256:" + "ab" * 32 + ") has no valid "
                "signature from an expected signer 2h after it was first seen",
                image=FindingImage("ghcr.io/example/app", "1.2", "sha256:" + "ab" * 32),
            ),
        ),
        (
            "invalid_signature",
            finding(
                FindingKind.INVALID_SIGNATURE,
                None,
                rule=None,
                log=None,
                matched=(("san", "https://github.com/example/app/.github/workflows/r.yml"),),
                detail="the signature of ghcr.io/example/app@sha256:" + "cd" * 32 + " does not "
                f"verify: the certificate does not chain to the trust root's Fulcio {HOSTILE}",
                image=FindingImage("ghcr.io/example/app", None, "sha256:" + "cd" * 32),
            ),
        ),
        (
            "tlog_mismatch",
            finding(
                FindingKind.TLOG_MISMATCH,
                123,
                severity=Severity.CRITICAL,
                rule=None,
                matched=(("san", HOSTILE),),
                detail="the signature of ghcr.io/example/app:latest names rekor #123, which "
                "holds another body (sha256:" + "ef" * 32 + ")",
                image=FindingImage(
                    "ghcr.io/example/app", HOSTILE[:20] + "x" * 200, "sha256:" + "ef" * 32
                ),
            ),
        ),
        (
            "orphan_signature",
            finding(
                FindingKind.ORPHAN_SIGNATURE,
                49,
                matched=(("san", "https://github.com/example/app/.github/workflows/r.yml"),),
                detail="rekor #49 was signed by the release identity, and no watched registry "
                "holds an image it signs (1h after it was stored, after a complete pass)",
            ),
        ),
        (
            "resolved",
            finding(
                FindingKind.INTEGRITY_FAILURE,
                47,
                severity=Severity.HIGH,
                rule=None,
                type_=str(IntegrityType.MISSING_ENTRIES),
                state=FindingState.RESOLVED,
                changed=("alice", NOW - timedelta(seconds=1), "served again"),
            ),
        ),
        (
            "hostile",
            signer(48, san=HOSTILE + "x" * 3000),
        ),
    ]


def entry_url(log: str, index: int) -> str | None:
    if log == "rekor":
        return f"https://search.sigstore.dev/?logIndex={index}"
    return "https://evil.example/a|b" if index == 46 else None  # refused by Slack's rendering


def cases() -> list[tuple[str, Event, list[AlertFinding]]]:
    out: list[tuple[str, Event, list[AlertFinding]]] = []
    for name, f in findings_of_every_kind():
        event: Event = "resolve" if name == "resolved" else "trigger"
        out.append((name, event, [f]))
    out.append(("resolve-one", "resolve", [signer(42)]))
    small = [signer(50, Severity.MEDIUM), signer(51, Severity.CRITICAL), signer(52, Severity.LOW)]
    out.append(("group", "trigger", small))
    out.append(("group-resolve", "resolve", small))
    out.append(("group-large", "trigger", [signer(i) for i in range(60, 82)]))
    mixed = [findings_of_every_kind()[0][1], findings_of_every_kind()[4][1]]
    out.append(("mixed", "trigger", mixed))
    return out


def rendered(kind: str, m: Message, secret: Sequence[bytes]) -> dict[str, Any]:
    version = monitor.__version__
    headers = dict(m.headers)
    if "webhook-signature" in headers:
        assert verify(headers, m.body, secret, now=int(headers["webhook-timestamp"]))
        headers["webhook-signature"] = "<verified>"
    return {
        "sink": kind,
        "event": m.event,
        "idempotency_key": m.idempotency_key,
        "dedup_keys": list(m.dedup_keys),
        "headers": {k: v.replace(version, "<version>") for k, v in sorted(headers.items())},
        "body": m.body.decode().replace(version, "<version>"),
    }


def render_all() -> dict[str, list[dict[str, Any]]]:
    secret = parse_secrets(SECRET)
    out: dict[str, list[dict[str, Any]]] = {}
    for name, event, fs in cases():
        out[name] = []
        for kind in SINK_TYPES:
            for link in (entry_url, None) if kind != "webhook" else (None,):  # no links there
                m = build(sink(kind), event, fs, now=NOW, entry_url=link)
                out[name].append({"linked": link is not None, **rendered(kind, m, secret)})
    late = timedelta(minutes=3)
    m = build(sink("alertmanager"), "trigger", [signer(42)], now=NOW, resend_after=late)
    out["alertmanager-resend"] = [rendered("alertmanager", m, secret)]
    m = build(sink("webhook"), "trigger", [signer(42)], now=NOW, msg_id="msg_given")
    out["webhook-msg-id"] = [rendered("webhook", m, secret)]
    out["test"] = [rendered(k, test_message(sink(k), now=NOW), secret) for k in SINK_TYPES]
    return out


def test_every_format_renders_as_pinned() -> None:
    got = render_all()
    if os.environ.get("TLOG_MONITOR_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n", "utf-8")
    want = json.loads(GOLDEN.read_text("utf-8"))
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name] == want[name], name


def test_the_pinned_set_covers_every_kind_and_event() -> None:
    golden = json.loads(GOLDEN.read_text("utf-8"))
    bodies = [json.loads(c["body"]) for v in golden.values() for c in v if c["sink"] == "webhook"]
    kinds = {f["kind"] for b in bodies for f in b["findings"]}
    assert kinds == {str(k) for k in FindingKind} | {"test"}
    events = {c["event"] for v in golden.values() for c in v}
    assert events == {"trigger", "resolve", "test"}
    assert {c["sink"] for v in golden.values() for c in v} == set(SINK_TYPES)
