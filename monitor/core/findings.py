"""Findings: what the monitor tells people. One shape for every kind, so that the CLI, the
API, storage and every alert sink speak of them alike.

JSON fields (stable): id, kind, type, severity, rule, log, index, dedup_key, state,
created_at, matched, unmet, detail, image (the image a registry finding is about, or null).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any

from monitor.core.errors import ConfigError


class Severity(IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in cls)
            raise ConfigError(f"unknown severity {text!r}; one of {names}") from None

    def __str__(self) -> str:
        return self.name.lower()


class FindingKind(StrEnum):
    UNEXPECTED_SIGNER = "unexpected_signer"  # ours, signed by someone `expect` does not allow
    UNEXPECTED_KEY_USE = "unexpected_key_use"  # the same, for a bare key
    EXPECTED_USE = "expected_use"  # ours, signed as expected: recorded, not alerted by default
    WATCHED_USE = "watched_use"  # a rule without expect: every use is news
    INTEGRITY_FAILURE = "integrity_failure"  # the log lied (type says how)
    MALFORMED_ENTRY = "malformed_entry"  # the log served something unparseable
    HEALTH = "health"  # the monitor cannot do its job (type says why)
    # the log's checkpoints lack the witness quorum configured for it (type: the mode)
    UNWITNESSED_CHECKPOINT = "unwitnessed_checkpoint"
    # a watched tag points at a digest without what `require` asks, after the grace period
    UNSIGNED_IMAGE = "unsigned_image"
    INVALID_SIGNATURE = "invalid_signature"  # an image's signature is there but fails
    # a registry signature names a log entry our verified log holds with another body
    TLOG_MISMATCH = "tlog_mismatch"
    # an entry of a rule with `orphans:` that no watched registry explains after the grace
    ORPHAN_SIGNATURE = "orphan_signature"


class IntegrityType(StrEnum):
    BAD_CHECKPOINT_SIGNATURE = "bad_checkpoint_signature"
    CONSISTENCY_FAILURE = "consistency_failure"
    ENTRY_NOT_IN_TREE = "entry_not_in_tree"
    TREE_SHRUNK = "tree_shrunk"
    TREE_CHANGED = "tree_changed"  # a different root for a size already seen
    MISSING_ENTRIES = "missing_entries"
    SPLIT_VIEW = "split_view"  # another vantage point holds a view inconsistent with ours


SELF_CLEARING: frozenset[IntegrityType] = frozenset(
    {
        IntegrityType.BAD_CHECKPOINT_SIGNATURE,
        IntegrityType.ENTRY_NOT_IN_TREE,
        IntegrityType.MISSING_ENTRIES,
    }
)
"""Integrity failures that a later pass may resolve, once it proves new entries consistent
with everything verified: data served wrong or not at all (a note whose signature does not
verify, an entry that is not the tree's leaf, entries withheld), which a cache, a network or
an outage can cause and a correct answer later cures. The others (``consistency_failure``,
``tree_shrunk``, ``tree_changed``) rest on two tree heads the log signed that cannot both be
true: proof that the log misbehaved, which nothing it serves later undoes. Only a person
resolves them."""


class HealthType(StrEnum):
    LOG_UNREACHABLE = "log_unreachable"
    LOG_STALLED = "log_stalled"
    LAG = "lag"
    SINK_FAILING = "sink_failing"


class FindingState(StrEnum):
    OPEN = "open"  # the triage queue: a surprise nobody has looked at yet
    ACKNOWLEDGED = "acknowledged"
    RECORDED = "recorded"  # a record, not a task: an expected use is stored in this state
    RESOLVED = "resolved"


def initial_state(kind: FindingKind) -> FindingState:
    """The state a new finding of ``kind`` is stored in. An expected use (a signature a rule
    allows) is a record of a legitimate release, not a surprise: ``recorded``, never in the
    open queue; still listed by kind, and alerted only where a rule and a sink ask for it."""
    return FindingState.RECORDED if kind is FindingKind.EXPECTED_USE else FindingState.OPEN


@dataclass(frozen=True)
class Unmet:
    """One ``expect`` field the entry failed: what was expected, what was there."""

    field: str
    expected: tuple[str, ...]
    actual: tuple[str, ...]


@dataclass(frozen=True)
class FindingImage:
    """The container image a registry finding is about: a normalised repository, the
    watched tag that points at it (None: found by digest, or a platform manifest) and the
    manifest digest (None: the finding is about the repository or tag as a whole)."""

    repository: str
    tag: str | None = None
    digest: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"repository": self.repository, "tag": self.tag, "digest": self.digest}

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    severity: Severity
    dedup_key: str
    rule: str | None = None
    log: str | None = None
    index: int | None = None
    type: str | None = None  # for integrity_failure and health
    matched: tuple[tuple[str, str], ...] = ()  # (field, the value that matched)
    unmet: tuple[Unmet, ...] = ()
    detail: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC), compare=False)
    state: FindingState = FindingState.OPEN
    id: int | None = field(default=None, compare=False)
    image: FindingImage | None = None

    def to_json(self) -> dict[str, Any]:
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
            "created_at": self.created_at.isoformat(),
            "matched": [{"field": f, "value": v} for f, v in self.matched],
            "unmet": [
                {"field": u.field, "expected": list(u.expected), "actual": list(u.actual)}
                for u in self.unmet
            ],
            "detail": self.detail,
            "image": None if self.image is None else self.image.to_json(),
        }


def dedup_key(*parts: object) -> str:
    """A stable key: the same event always gives the same key, across restarts and hosts."""
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
