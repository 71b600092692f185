"""What the alert sinks are told of, typed: findings as the outbox stores them and the events
(trigger, resolve, test) that carry them.

The outbox keeps each finding as JSON (``StoredFinding.to_json()``: the finding JSON of
``monitor.core.findings`` plus ``state_changed_by``, ``state_changed_at``, ``comment`` and
``evidence``). Delivery decodes a row once, where it reads it (``decode_row``), and hands the
sink formats frozen values only; ``AlertFinding.to_json`` gives the stored JSON back, field
for field and in order, for the formats that carry it whole. A row that does not decode is
refused with ``MalformedInputError`` naming the field, and delivery dead-letters it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal, TypeAlias, TypeVar, get_args

from monitor.config.models import SinkSettings
from monitor.core.errors import MalformedInputError
from monitor.core.findings import (
    FindingImage,
    FindingKind,
    FindingState,
    Severity,
    Unmet,
    dedup_key,
)
from monitor.storage.outbox import OutboxItem

JSONValue: TypeAlias = "str | int | float | bool | list[JSONValue] | dict[str, JSONValue] | None"
JSONObject: TypeAlias = dict[str, JSONValue]

Event = Literal["trigger", "resolve", "test"]
EVENTS: Final[tuple[str, ...]] = get_args(Event)
QueuedEvent = Literal["trigger", "resolve"]  # what the outbox holds; tests never go through it

TEST_KIND: Final = "test"
TEST_TITLE: Final = "TEST: tlog-monitor alert path check"
TEST_KEY_PREFIX: Final = "test-"

Kind = FindingKind | Literal["test"]
_KINDS: Final[Mapping[str, Kind]] = {**{str(k): k for k in FindingKind}, TEST_KIND: TEST_KIND}
_SEVERITIES: Final[Mapping[str, Severity]] = {str(s): s for s in Severity}
_STATES: Final[Mapping[str, FindingState]] = {str(s): s for s in FindingState}


@dataclass(frozen=True)
class AlertFinding:
    """A finding as a sink is told of it: the stored finding, with its state when queued."""

    id: int | None
    kind: Kind
    type: str | None
    severity: Severity
    rule: str | None
    log: str | None
    index: int | None
    dedup_key: str
    state: FindingState
    created_at: datetime
    matched: tuple[tuple[str, str], ...]  # (field, the value that matched)
    unmet: tuple[Unmet, ...]
    detail: str
    state_changed_by: str | None = None
    state_changed_at: datetime | None = None
    comment: str | None = None
    evidence: JSONObject | None = None
    image: FindingImage | None = None  # the image a registry finding is about

    def to_json(self) -> JSONObject:
        """The stored JSON, as ``StoredFinding.to_json()`` wrote it (``image`` null in rows
        queued before findings carried it)."""
        changed = self.state_changed_at
        return {
            "id": self.id,
            "kind": str(self.kind),
            "type": self.type,
            "severity": str(self.severity),
            "rule": self.rule,
            "log": self.log,
            "index": self.index,
            "dedup_key": self.dedup_key,
            "state": str(self.state),
            # a test finding is made at sending, not stored: its time is written as the
            # message's own (RFC 3339, Z); stored findings' as storage wrote them
            "created_at": (
                rfc3339(self.created_at) if self.kind == TEST_KIND else self.created_at.isoformat()
            ),
            "matched": [{"field": f, "value": v} for f, v in self.matched],
            "unmet": [
                {"field": u.field, "expected": list(u.expected), "actual": list(u.actual)}
                for u in self.unmet
            ],
            "detail": self.detail,
            "image": _image_json(self.image),
            "state_changed_by": self.state_changed_by,
            "state_changed_at": None if changed is None else changed.isoformat(),
            "comment": self.comment,
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class Alert:
    """One message's worth: an event about one finding or a group of them (findings of one
    rule that arrived together, sent as one message so that a storm does not flood the
    receiver). Test findings go in test events, and only they."""

    event: Event
    findings: tuple[AlertFinding, ...]

    def __post_init__(self) -> None:
        check_event(self.event)
        if not self.findings:
            raise ValueError("a message is about a non-empty sequence of findings")
        if any((f.kind == TEST_KIND) != (self.event == "test") for f in self.findings):
            raise ValueError("test findings go in test events, and only they")
        if len(set(self.dedup_keys)) != len(self.dedup_keys):
            raise ValueError("a message names a finding twice")

    @classmethod
    def of(cls, event: Event, findings: Sequence[AlertFinding]) -> Alert:
        return cls(event, tuple(findings))

    @property
    def dedup_keys(self) -> tuple[str, ...]:
        return tuple(f.dedup_key for f in self.findings)


def check_event(event: str) -> None:
    if event not in EVENTS:
        raise ValueError(f"unknown alert event {event!r}; one of {', '.join(EVENTS)}")


@dataclass(frozen=True)
class Queued:
    """An outbox row, decoded: the row (ids, attempts, claims) and what it announces."""

    item: OutboxItem
    event: QueuedEvent
    finding: AlertFinding


def decode_row(item: OutboxItem) -> Queued:
    """The outbox row's event and finding; ``MalformedInputError`` if either is not one."""
    if item.event not in ("trigger", "resolve"):
        raise MalformedInputError(f"event: unknown event {item.event[:30]!r}")
    event: QueuedEvent = "resolve" if item.event == "resolve" else "trigger"
    finding = decode_finding(item.payload)
    if finding.kind == TEST_KIND:
        raise MalformedInputError("kind: a test finding is sent at once, never queued")
    return Queued(item, event, finding)


def test_finding(sink: SinkSettings, *, now: datetime) -> AlertFinding:
    """A finding that is obviously a test: kind ``test``, severity ``info``, a dedup key
    starting ``test-`` (new for every test, so no receiver drops a second one)."""
    at = rfc3339(now)
    return AlertFinding(
        id=None,
        kind=TEST_KIND,
        type=None,
        severity=Severity.INFO,
        rule=None,
        log=None,
        index=None,
        dedup_key=TEST_KEY_PREFIX + dedup_key("tlog-monitor.test", sink.name, at),
        state=FindingState.OPEN,
        created_at=now,
        matched=(),
        unmet=(),
        detail=(
            f"{TEST_TITLE}: sent by `tlog-monitor alerts test --sink {sink.name}` to check "
            "that alerts reach this destination. No action is needed."
        ),
    )


test_finding.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("times must be timezone-aware")


def rfc3339(at: datetime) -> str:
    aware(at)
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- decoding ----------------------------------------------------------------------------


def decode_finding(doc: object) -> AlertFinding:
    """A stored finding's JSON as a value; ``MalformedInputError`` naming the bad field."""
    obj = _object(doc, "finding")
    return AlertFinding(
        id=_opt_int(obj, "id"),
        kind=_enum(obj, "kind", _KINDS),
        type=_opt_str(obj, "type"),
        severity=_enum(obj, "severity", _SEVERITIES),
        rule=_opt_str(obj, "rule"),
        log=_opt_str(obj, "log"),
        index=_opt_int(obj, "index"),
        dedup_key=_key(obj),
        state=_enum(obj, "state", _STATES),
        created_at=_time(_str(obj, "created_at"), "created_at"),
        matched=tuple(
            (_str(m, "field", path), _str(m, "value", path)) for path, m in _objects(obj, "matched")
        ),
        unmet=tuple(
            Unmet(_str(u, "field", path), _strs(u, "expected", path), _strs(u, "actual", path))
            for path, u in _objects(obj, "unmet")
        ),
        detail=_str(obj, "detail"),
        state_changed_by=_opt_str(obj, "state_changed_by"),
        state_changed_at=_opt_time(obj, "state_changed_at"),
        comment=_opt_str(obj, "comment"),
        evidence=None if _get(obj, "evidence") is None else _json_object(obj["evidence"]),
        image=_image(obj.get("image")),
    )


def _image_json(image: FindingImage | None) -> JSONValue:
    if image is None:
        return None
    return {"repository": image.repository, "tag": image.tag, "digest": image.digest}


def _image(value: object) -> FindingImage | None:
    """``image``: absent or null (rows queued before findings carried it, findings about no
    image), or an object with a repository and an optional tag and digest."""
    if value is None:
        return None
    obj = _object(value, "image")
    tag, digest = obj.get("tag"), obj.get("digest")
    if tag is not None and not isinstance(tag, str):
        raise _fail("image.tag", "expected a string or null")
    if digest is not None and not isinstance(digest, str):
        raise _fail("image.digest", "expected a string or null")
    return FindingImage(_str(obj, "repository", "image"), tag, digest)


def _fail(path: str, message: str) -> MalformedInputError:
    return MalformedInputError(f"{path}: {message}")


def _object(value: object, path: str) -> Mapping[str, object]:
    if not isinstance(value, dict):  # decoded JSON: its keys are strings
        raise _fail(path, "expected an object")
    return value


def _get(obj: Mapping[str, object], key: str, path: str = "") -> object:
    if key not in obj:
        raise _fail(f"{path}.{key}" if path else key, "missing")
    return obj[key]


def _str(obj: Mapping[str, object], key: str, path: str = "") -> str:
    value = _get(obj, key, path)
    if not isinstance(value, str):
        raise _fail(f"{path}.{key}" if path else key, "expected a string")
    return value


def _opt_str(obj: Mapping[str, object], key: str) -> str | None:
    value = _get(obj, key)
    if value is not None and not isinstance(value, str):
        raise _fail(key, "expected a string or null")
    return value


def _opt_int(obj: Mapping[str, object], key: str) -> int | None:
    value = _get(obj, key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise _fail(key, "expected an integer or null")
    return value


def _key(obj: Mapping[str, object]) -> str:
    key = _str(obj, "dedup_key")
    if not key:
        raise _fail("dedup_key", "empty")
    return key


_T = TypeVar("_T")


def _enum(obj: Mapping[str, object], key: str, values: Mapping[str, _T]) -> _T:
    value = _get(obj, key)
    if not isinstance(value, str) or value not in values:
        raise _fail(key, f"not one of {', '.join(values)}")
    return values[value]


def _time(text: str, path: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise _fail(path, "not an ISO 8601 time") from None


def _opt_time(obj: Mapping[str, object], key: str) -> datetime | None:
    text = _opt_str(obj, key)
    return None if text is None else _time(text, key)


def _objects(obj: Mapping[str, object], key: str) -> list[tuple[str, Mapping[str, object]]]:
    value = _get(obj, key)
    if not isinstance(value, list):
        raise _fail(key, "expected a list")
    return [(f"{key}[{i}]", _object(v, f"{key}[{i}]")) for i, v in enumerate(value)]


def _strs(obj: Mapping[str, object], key: str, path: str) -> tuple[str, ...]:
    value = _get(obj, key, path)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(f"{path}.{key}", "expected a list of strings")
    return tuple(value)


def _json_object(value: object) -> JSONObject:
    """``evidence``: any JSON object, kept as it is (its shape depends on the finding)."""
    obj = _object(value, "evidence")
    return {k: _json(v) for k, v in obj.items()}


def _json(value: object) -> JSONValue:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return _json_object(value)
    raise _fail("evidence", f"not JSON: {type(value).__name__}")
