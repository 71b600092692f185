"""Witness cosignatures on a log's checkpoints (issue: a split view that one vantage point
cannot see): each checkpoint the log signs is checked against the log's witness policy
before the monitor accepts it.

- ``require``: a checkpoint short of the quorum is not accepted: the pass stops where it is,
  nothing moves, and the monitor waits for a witnessed checkpoint;
- ``warn``: it is accepted;
- ``off``: cosignatures are only recorded (metrics).

Either way, once the log's checkpoints have been short of the quorum for
``unwitnessed_after`` (an episode, from the first unwitnessed checkpoint seen), one
``unwitnessed_checkpoint`` finding is raised for the episode (high under ``require``, medium
under ``warn``), keyed by that first checkpoint; a witnessed checkpoint ends the episode and
resolves it. The clock restarts with the process: witnesses cosign a little after the log
signs, and a restart must not turn that delay into a finding.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from monitor.core.errors import NoteError
from monitor.core.findings import Finding, FindingKind, Severity, dedup_key
from monitor.core.metrics import PREFIX, SizeAge, SizeAgeCollector
from monitor.storage.ports import HealthStore
from monitor.tlog.checkpoint import SignedCheckpoint
from monitor.tlog.policy import Policy
from monitor.tlog.witness import Cosignature, verify_note_cosignatures

__all__ = ["Verdict", "WitnessCollector", "WitnessGate"]

Mode = Literal["require", "warn", "off"]


@dataclass(frozen=True)
class Verdict:
    """What a checkpoint's cosignatures came to: ``accept`` it or not, the finding to
    raise (once an episode has lasted), the episode's key to resolve (it ended)."""

    accept: bool
    cosignatures: tuple[Cosignature, ...]
    missing: str | None  # what the quorum lacks, in words; None when met
    finding: Finding | None = None
    resolve: str | None = None


@dataclass
class Witnessed:
    """A witness's latest verified cosignature of the log: the size, and when it cosigned."""

    size: int
    time: int


@dataclass
class WitnessGate:
    log: str
    policy: Policy
    mode: Mode
    unwitnessed_after: float  # seconds
    clock: Callable[[], float] = time.time
    witnessed: dict[str, Witnessed] = field(default_factory=dict)
    _since: float | None = None  # the episode: when the first unwitnessed checkpoint was seen
    _first: str | None = None  # its key (the episode's finding's dedup key)
    _raised: bool = False
    _ended: list[str] = field(default_factory=list)  # episodes whose finding is to resolve
    _last: tuple[str, tuple[Cosignature, ...]] | None = None  # the last note checked

    def cosignatures(self, cp: SignedCheckpoint) -> tuple[Cosignature, ...]:
        """The policy's witnesses' cosignatures on ``cp``, as stored with it."""
        if self._last is not None and self._last[0] == cp.raw:
            return self._last[1]
        found = tuple(
            verify_note_cosignatures(cp.raw, self.policy.witness_keys, now=int(self.clock()))
        )
        self._last = (cp.raw, found)
        return found

    def check(self, cp: SignedCheckpoint) -> Verdict:
        now = self.clock()
        cosignatures = self.cosignatures(cp)
        for c in cosignatures:
            if c.status == "verified" and c.time is not None:
                known = self.witnessed.get(c.witness)
                if known is None or (cp.size, c.time) >= (known.size, known.time):
                    self.witnessed[c.witness] = Witnessed(cp.size, c.time)
        missing = self.policy.missing(self.policy.cosigned_by(cosignatures))
        if missing is None:
            ended = self._first if self._raised else None
            if ended is not None:
                self._ended.append(ended)
            self._since, self._first, self._raised = None, None, False
            return Verdict(True, cosignatures, None, resolve=ended)
        if self._since is None:
            self._since = now
            self._first = dedup_key(
                FindingKind.UNWITNESSED_CHECKPOINT, self.log, cp.size, cp.root_hash.hex()
            )
        finding = None
        if self.mode != "off" and now - self._since >= self.unwitnessed_after:
            finding = self._finding(cp, missing)
            self._raised = True
        return Verdict(self.mode != "require", cosignatures, missing, finding)

    def cosigners(self, note: str) -> list[dict[str, object]]:
        """The cosignatures of the policy's witnesses on a stored checkpoint note, as the API
        shows them (checked again on every read: the note is the evidence, kept whole)."""
        try:
            found = verify_note_cosignatures(note, self.policy.witness_keys)
        except NoteError:
            return []
        return [dataclasses.asdict(c) for c in found]

    async def settle(self, store: HealthStore) -> None:
        """Resolve the findings of the episodes that ended (a witnessed checkpoint came)."""
        while self._ended:
            key = self._ended[0]
            stored = await store.finding_by_key(key)
            if stored is not None and stored.finding.id is not None:
                note = "the log's checkpoints carry the witness quorum again"
                await store.resolve_finding(stored.finding.id, "monitor", note)
            self._ended.pop(0)

    def _finding(self, cp: SignedCheckpoint, missing: str) -> Finding:
        assert self._first is not None
        assert self._since is not None
        waited = round(self.clock() - self._since)
        held = "not accepted: the monitor waits" if self.mode == "require" else "accepted"
        return Finding(
            kind=FindingKind.UNWITNESSED_CHECKPOINT,
            severity=Severity.HIGH if self.mode == "require" else Severity.MEDIUM,
            dedup_key=self._first,
            log=self.log,
            type=self.mode,
            detail=(
                f"the log's checkpoints have lacked the witness quorum for {waited}s "
                f"(latest: size {cp.size}); {missing}. Unwitnessed checkpoints are {held}."
            ),
        )


class WitnessCollector(SizeAgeCollector):
    """``tlog_monitor_witness_cosigned_size`` and ``..._age_seconds`` per log and witness,
    read at scrape time (the age grows between checkpoints)."""

    LABELS = ("log", "witness")
    SIZE = (
        f"{PREFIX}_witness_cosigned_size",
        "The largest checkpoint of the log this witness was seen to cosign.",
    )
    AGE = (
        f"{PREFIX}_witness_cosigned_age_seconds",
        "Seconds since this witness's latest cosignature of the log (its timestamp).",
    )

    def __init__(
        self, gates: Callable[[], Iterable[WitnessGate]], clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(clock)
        self.gates = gates

    def points(self, now: float) -> Iterable[SizeAge]:
        for gate in list(self.gates()):
            for witness, seen in sorted(gate.witnessed.items()):
                yield (gate.log, witness), seen.size, now - seen.time
