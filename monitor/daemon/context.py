"""What a catch-up pass is given besides the log it reads, and what it gives back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from monitor.alerts.routing import Routing
from monitor.core.metrics import DaemonMetrics
from monitor.daemon.parsepool import ParsePool
from monitor.daemon.witnessing import WitnessGate
from monitor.rules.engine import RuleEngine
from monitor.storage.leases import Lease
from monitor.storage.ports import CatchUpStore
from monitor.tlog.proofs import IntegrityFailure
from monitor.trust import CertificateAuthority

__all__ = ["PassContext", "PassResult", "Start", "check_arguments"]

Start = Literal["tip", "resume"] | int


@dataclass(frozen=True)
class PassContext:
    """Where and how a pass of one log stores what it proves.

    ``name`` is the log's name in the store. With ``backfill=(start, end)`` batches advance
    that backfill's own cursor, not the log's. ``planned`` is told how many entries the pass
    will read, once it knows; ``progress`` of every stored batch (entries in it). ``lease``:
    the lease this replica leads the log under (several replicas), which every batch must
    still hold to commit. ``witnesses``: the log's witness policy, which its checkpoints are
    checked against before they are accepted."""

    name: str
    store: CatchUpStore
    engine: RuleEngine
    cas: Sequence[CertificateAuthority]
    routing: Routing = field(default_factory=Routing)
    index_all: bool = False
    backfill: tuple[int, int] | None = None
    metrics: DaemonMetrics | None = None
    progress: Callable[[int], None] | None = None
    planned: Callable[[int], None] | None = None
    lease: Lease | None = None
    witnesses: WitnessGate | None = None
    hold: int | None = None  # a split view holds the log at this cursor (``vantage``)
    parser: ParsePool | None = None  # parse workers (else each chunk is parsed in place)

    @property
    def first_cursor(self) -> int:
        """The cursor before anything was stored: a backfill's first index, else 0."""
        return 0 if self.backfill is None else self.backfill[0]


@dataclass(frozen=True)
class PassResult:
    """What one pass did: entries proven and processed, findings newly stored (integrity
    findings included), the cursor it ended at (a global index), the size of the log's
    latest checkpoint, and the lie that stopped it."""

    entries: int
    findings: int
    cursor: int
    log_size: int
    failure: IntegrityFailure | None = None


def check_arguments(start: Start, chunk: int) -> None:
    """What a catch-up refuses before it begins: a chunk below one entry, a negative start
    index (mistakes of the caller, not of the log)."""
    if chunk < 1:
        raise ValueError(f"chunk must be positive, not {chunk}")
    if isinstance(start, int) and start < 0:
        raise ValueError(f"start index {start} is negative")
