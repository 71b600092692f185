"""What each consumer of the database may do with it: one narrow protocol per consumer.

``Store`` satisfies every one of them (``tests/test_storage_parts.py`` checks it, statically
and at run time). A consumer takes the protocol it needs, not ``Store``: what it can touch is
then said in its signature, and a test can hand it a small fake. Who opens the database (the
daemon's service, the CLI) holds the ``Store`` and hands out the parts.

- ``CatchUpStore``: a catch-up pass (where a log or a backfill resumes, a batch stored);
- ``OutboxStore``: alert delivery (the outbox read, claimed, marked delivered or failed;
  whether a claim's holder is a live replica);
- ``HealthStore``: the monitor's own health (its findings, the outbox's age);
- ``ApiStore``: the HTTP API (history, findings and their triage, logs, readiness);
- ``RetentionStore``: the retention job (``index_all`` rows purged);
- ``LeaseStore``: the leadership of the logs over replicas (heartbeats and leases);
- ``ImageStore``: registry passes (digests, their signatures tied to log entries) stored,
  and read back for ``images list`` and the orphan check;
- ``HistoryReader``, ``FindingsReader``, ``DeadLetters``: the CLI's queries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from monitor.core.findings import Finding
    from monitor.entries.record import MalformedEntry
    from monitor.storage.backfills import BackfillState
    from monitor.storage.base import JSON
    from monitor.storage.batch import Batch, BatchResult, OutboxSpec
    from monitor.storage.coverage import Searched
    from monitor.storage.findings_store import FindingQuery, StoredFinding
    from monitor.storage.history import HistoryItem, StoredEntry
    from monitor.storage.history_query import HistoryQuery
    from monitor.storage.images import ImageScanRecord, StoredImageDigest, StoredImageLink
    from monitor.storage.leases import Lease, LeaseRow, LiveReplica
    from monitor.storage.lock import Holder
    from monitor.storage.logs_state import LogState, StoredCheckpoint
    from monitor.storage.outbox import Attempt, OutboxItem
    from monitor.storage.paging import Page


class CatchUpStore(Protocol):
    """A catch-up pass: where each log (or backfill) resumes, and each batch (entries,
    findings, outbox rows, checkpoint, compact range, cursor) stored in one transaction."""

    async def register_log(self, name: str, api: str, url: str) -> None: ...

    async def log_state(self, name: str) -> LogState | None: ...

    async def backfill_state(self, log: str, start: int, end: int) -> BackfillState | None: ...

    async def store_batch(
        self, batch: Batch, *, committing: Callable[[], None] | None = None
    ) -> BatchResult: ...


class RetentionStore(Protocol):
    """Retention: ``index_all`` rows older than a log's retention are purged."""

    async def purge_index_all(self, older_than: datetime, log: str | None = None) -> int: ...


class LeaseStore(Protocol):
    """Leadership over replicas: each replica's heartbeat, and the leases of the logs it
    renews, takes, releases, and reads (``monitor.storage.leases``)."""

    async def heartbeat(self, holder: str, replica: str, ttl: float) -> list[LiveReplica]: ...

    async def renew_leases(self, holder: str, ttl: float) -> list[Lease]: ...

    async def take_leases(
        self, logs: Sequence[str], holder: str, replica: str, ttl: float
    ) -> list[Lease]: ...

    async def release_leases(self, holder: str, logs: Sequence[str] | None = None) -> None: ...

    async def leave(self, holder: str) -> None: ...

    async def lease_rows(self) -> list[LeaseRow]: ...

    async def evict(self, holder: str) -> int: ...


class OutboxStore(Protocol):
    """Alert delivery: a sink's rows read in order, claimed, then marked delivered or
    failed; what a sink must be reminded of; how far behind it is."""

    @property
    def holder(self) -> Holder: ...

    @property
    def exclusive(self) -> bool: ...

    @property
    def replicated(self) -> bool: ...

    async def pending_outbox(
        self, sink: str, limit: int = 100, *, message_id: str | None = None
    ) -> list[OutboxItem]: ...

    async def claim_outbox(
        self,
        ids: Sequence[int],
        holder: str,
        *,
        now: datetime,
        until: datetime,
        take_over: bool = False,
        message_id: str | None = None,
        dead_holders_free: bool = False,
    ) -> bool: ...

    async def live_holder(self, holder: str, *, now: datetime | None = None) -> bool: ...

    async def mark_message_delivered(
        self, outbox_ids: Sequence[int], *, at: datetime, duration: float
    ) -> None: ...

    async def record_attempt(
        self,
        outbox_id: int,
        *,
        at: datetime,
        error: str,
        duration: float,
        retry_at: datetime | None,
    ) -> None: ...

    async def attempts(self, outbox_id: int) -> list[Attempt]: ...

    async def active_alerts(self, sink: str, limit: int = 1000) -> list[JSON]: ...

    async def outbox_backlog(self, sink: str) -> tuple[int, datetime | None]: ...


class ImageStore(Protocol):
    """Container images: each registry pass stored in one transaction, the digests found,
    the signatures tied to a log entry, when a repository was last read whole, and the
    entries of a rule that no registry signature explains (orphans)."""

    async def record_image_scan(self, scan: ImageScanRecord) -> None: ...

    async def image_digests(
        self, repository: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page[StoredImageDigest]: ...

    async def image_links_for(self, log: str, index: int) -> list[StoredImageLink]: ...

    async def last_complete_scan(self, repository: str) -> datetime | None: ...

    async def unlinked_entries(
        self, rule: str, stored_before: datetime, limit: int = 1000
    ) -> list[tuple[str, int]]: ...


class LogNames(Protocol):
    """The logs the database knows: a query naming another is refused with the closest."""

    async def log_names(self) -> list[str]: ...


class HistoryReader(LogNames, Protocol):
    """History: stored entries and ``index_all`` rows, and what a search covered."""

    async def history(self, query: HistoryQuery) -> Page[HistoryItem]: ...

    async def entry(self, log: str, index: int) -> StoredEntry | None: ...

    async def malformed(self, log: str, index: int) -> MalformedEntry | None: ...

    async def searched(self, log: str | None = None) -> list[Searched]: ...

    async def searched_index_all(self, log: str | None = None) -> list[Searched]: ...

    async def index_all_log_names(self) -> list[str]: ...


class FindingsReader(LogNames, Protocol):
    """Findings, one page or one by id, and the rules they name."""

    async def findings(self, query: FindingQuery) -> Page[StoredFinding]: ...

    async def finding(self, finding_id: int) -> StoredFinding | None: ...

    async def has_finding_rule(self, rule: str) -> bool: ...

    async def finding_rules(self) -> list[str]: ...


class FindingsTriage(FindingsReader, Protocol):
    """Findings read, acknowledged and resolved (a resolve queues its messages)."""

    async def acknowledge_finding(
        self, finding_id: int, who: str, comment: str | None = None, *, at: datetime | None = None
    ) -> bool: ...

    async def resolve_finding(
        self, finding_id: int, who: str, comment: str | None = None, *, at: datetime | None = None
    ) -> bool: ...


class LogsReader(LogNames, Protocol):
    """Each log's stored state and the checkpoints seen."""

    async def log_state(self, name: str) -> LogState | None: ...

    async def log_states(self) -> list[LogState]: ...

    async def checkpoints(self, log: str, limit: int = 100) -> list[StoredCheckpoint]: ...

    async def checkpoint_page(
        self, log: str, limit: int = 100, cursor: str | None = None
    ) -> Page[StoredCheckpoint]: ...


class Readiness(Protocol):
    """The readiness check: the database answers and takes writes; open integrity failures."""

    @property
    def holder(self) -> Holder: ...

    async def ping(self) -> None: ...

    async def probe_write(self, holder: str, at: datetime | None = None) -> None: ...

    async def findings(self, query: FindingQuery) -> Page[StoredFinding]: ...


class Deliveries(Protocol):
    """What was sent about one finding: its outbox rows and each row's attempts."""

    async def deliveries(self, dedup_key: str, limit: int = 100) -> list[OutboxItem]: ...

    async def attempts(self, outbox_id: int) -> list[Attempt]: ...


class ApiStore(HistoryReader, FindingsTriage, LogsReader, Readiness, Deliveries, Protocol):
    """The HTTP API and the console: every read they serve, and the triage of findings."""


class HealthStore(Protocol):
    """The monitor's own health: the findings of its conditions (stored with their outbox
    rows, read back by key, resolved when a condition clears) and how long alerts wait."""

    async def findings(self, query: FindingQuery) -> Page[StoredFinding]: ...

    async def finding_by_key(self, dedup_key: str) -> StoredFinding | None: ...

    async def store_findings(
        self,
        findings: Sequence[Finding],
        *,
        outbox: Sequence[OutboxSpec] = (),
        evidence: Mapping[str, JSON] | None = None,
        at: datetime | None = None,
    ) -> int: ...

    async def resolve_finding(
        self, finding_id: int, who: str, comment: str | None = None, *, at: datetime | None = None
    ) -> bool: ...

    async def oldest_undelivered(self, sink: str) -> datetime | None: ...


class DeadLetters(Protocol):
    """``tlog-monitor alerts dead`` and ``replay``: the rows delivery gave up on, queued again."""

    async def outbox_sinks(self) -> list[str]: ...

    async def dead_letters(self, sink: str | None = None, limit: int = 100) -> list[OutboxItem]: ...

    async def replay(self, outbox_id: int, *, now: datetime | None = None) -> bool: ...
