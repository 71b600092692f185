"""A batch: everything one step of a log's processing produced, and ``store_batch``,
which writes it in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.core.errors import StorageError
from monitor.core.findings import Finding
from monitor.entries.record import KeySigner, MalformedEntry, SigningRecord
from monitor.entries.serialize import result_json
from monitor.storage import partitions
from monitor.storage.backfills import BackfillsMixin, check_span
from monitor.storage.base import (
    ENTRIES,
    FINDINGS,
    IDENTITIES,
    INDEX_ALL,
    INDEX_LOGS,
    JSON,
    MALFORMED,
    OUTBOX,
    orm,
    timed,
    utcnow,
)
from monitor.storage.cleaning import clean_text
from monitor.storage.findings_store import finding_values, stored_finding
from monitor.storage.identities import identities
from monitor.storage.indexrow import INDEX_COLUMNS, IndexRow
from monitor.storage.leases import Lease, LeasesMixin
from monitor.storage.logs_state import CheckpointData, LogsMixin
from monitor.storage.models import FindingRow, Log
from monitor.tlog.merkle import CompactRangeState

IDENTITY_COLUMNS = ("log", "idx", "field", "value")


@dataclass(frozen=True)
class OutboxSpec:
    """Announce the finding ``dedup_key`` to each sink in ``sinks``."""

    dedup_key: str
    sinks: tuple[str, ...]


@dataclass(frozen=True)
class Batch:
    """Everything one step of a log's processing produced, stored in one transaction.

    ``cursor`` is the next index to process; ``checkpoint`` the verified checkpoint the
    batch was proven against (if any); ``compact_range`` the range to resume from.
    ``evidence`` maps a finding's dedup key to the evidence kept with it.

    ``new_tree``: the log (Rekor v1) rotated to a new tree, whose checkpoint and compact
    range start small again while the cursor (a global index) keeps growing: they replace
    the stored ones, unless the stored cursor is already past the batch's (an old batch
    stored again). Needs ``checkpoint`` and ``compact_range``.

    ``backfill``: the batch belongs to the backfill of [start, end), not to the log's
    tailing: cursor, checkpoint and compact range move that backfill's row forward and leave
    the log's own untouched (with ``new_tree``: the backfill crossed into a new tree).

    ``lease``: the batch commits only while this lease of the log still holds (several
    replicas: see ``monitor.storage.leases``); otherwise nothing of it is stored.
    """

    log: str
    cursor: int
    checkpoint: CheckpointData | None = None
    compact_range: CompactRangeState | None = None
    records: tuple[SigningRecord, ...] = ()
    findings: tuple[Finding, ...] = ()
    evidence: Mapping[str, JSON] = field(default_factory=dict)
    outbox: tuple[OutboxSpec, ...] = ()
    malformed: tuple[MalformedEntry, ...] = ()
    index_rows: tuple[IndexRow, ...] = ()
    at: datetime = field(default_factory=utcnow)
    new_tree: bool = False
    backfill: tuple[int, int] | None = None
    lease: Lease | None = None


@dataclass(frozen=True)
class BatchResult:
    """How many rows the batch added (0 everywhere when it was stored before)."""

    entries: int
    findings: int
    outbox: int
    malformed: int
    index_rows: int


def _first_signer_columns(
    r: SigningRecord,
) -> tuple[str | None, str | None, str | None, str | None]:
    """(first SAN, issuer, key fingerprint, certificate fingerprint) of the first signer."""
    if not r.signers:
        return None, None, None, None
    s = r.signers[0]
    if isinstance(s, KeySigner):
        return None, None, s.fingerprint, None
    san = s.sans[0].value if s.sans else None
    return san, s.issuer, s.key.fingerprint, s.fingerprint


class BatchMixin(LogsMixin, BackfillsMixin, LeasesMixin):
    """``Store``: ``store_batch`` (it records the checkpoint as ``LogsMixin`` does, and moves
    backfills as ``BackfillsMixin`` reads them)."""

    @timed("commit_batch")
    async def store_batch(
        self, batch: Batch, *, committing: Callable[[], None] | None = None
    ) -> BatchResult:
        """Store ``batch`` in one transaction; see ``monitor.storage.store`` for the
        guarantees. ``committing`` is called when what is left is the database's own work
        (identity and index_all rows, the COMMIT that writes and syncs the log), so that a
        caller can go on with CPU work meanwhile."""
        for r in batch.records:
            if r.log != batch.log:
                raise StorageError(f"record of log {r.log!r} in a batch of {batch.log!r}")
        cr = batch.compact_range
        if cr is not None and len(cr.hashes) != cr.size.bit_count():
            raise StorageError(f"compact range of size {cr.size} has {len(cr.hashes)} hashes")
        if batch.new_tree and (batch.checkpoint is None or cr is None):
            raise StorageError("a new tree replaces the checkpoint and compact range: give both")
        if batch.backfill is not None:
            check_span(batch.backfill, batch.cursor)
        at = batch.at
        if batch.lease is not None and batch.lease.log != batch.log:
            raise StorageError(f"lease of {batch.lease.log!r} for a batch of {batch.log!r}")
        async with self._write() as conn:
            if batch.lease is not None:
                await self._check_lease(conn, batch.lease)
            if batch.backfill is None:
                await self._advance_log(conn, batch)
            else:
                raw = None if batch.checkpoint is None else batch.checkpoint.raw
                await self._advance_backfill(
                    conn,
                    batch.log,
                    batch.backfill,
                    cursor=batch.cursor,
                    checkpoint=raw,
                    compact_range=cr,
                    new_tree=batch.new_tree,
                    at=at,
                )
            self._step("log")
            if batch.checkpoint is not None:
                await self._checkpoint(conn, batch.log, batch.checkpoint, True, at)
            self._step("checkpoint")
            entries = await self._insert_many(
                conn, ENTRIES, [self._entry_values(r, at) for r in batch.records]
            )
            self._step("entries")
            malformed = await self._insert_many(
                conn,
                MALFORMED,
                [
                    {
                        "log": m.log,
                        "idx": m.index,
                        "reason": m.reason,
                        "kind": m.kind,
                        "api_version": m.api_version,
                        "raw_body": m.raw_body,
                        "seen_at": at,
                    }
                    for m in batch.malformed
                ],
            )
            self._step("malformed")
            findings = await self._insert_many(
                conn,
                FINDINGS,
                [finding_values(f, batch.evidence.get(f.dedup_key)) for f in batch.findings],
            )
            self._step("findings")
            outbox = await self._add_outbox(conn, batch.outbox, at)
            self._step("outbox")
            # the rest takes no answer from the database, so the caller may go on meanwhile
            # with CPU work: the SQLite driver inserts and commits on its own thread without
            # taking the GIL (one statement a table, see _insert_stored), PostgreSQL in the
            # server
            ids = {
                log: await self._index_log_id(conn, log)
                for log in {x.log for x in batch.index_rows}
            }
            # tuples in column order, not dicts: these are most of a batch's rows
            index_values = [x.values(ids[x.log]) for x in batch.index_rows]
            if self._dialect == "postgresql":
                await partitions.ensure(conn, ((ids[x.log], x.index) for x in batch.index_rows))
            identity_values = [
                (r.log, r.index, f, v) for r in batch.records for f, v in sorted(identities(r))
            ]
            if committing is not None:
                committing()
            await self._insert_stored(conn, IDENTITIES, IDENTITY_COLUMNS, identity_values)
            self._step("identities")
            index_rows = await self._insert_stored(conn, INDEX_ALL, INDEX_COLUMNS, index_values)
            self._step("index_all")
        return BatchResult(entries, findings, outbox, malformed, index_rows)

    @timed("store_findings")
    async def store_findings(
        self,
        findings: Sequence[Finding],
        *,
        outbox: Sequence[OutboxSpec] = (),
        evidence: Mapping[str, JSON] | None = None,
        at: datetime | None = None,
    ) -> int:
        """Store findings that belong to no batch of entries (the monitor's own health), with
        their outbox rows, in one transaction; how many were new (idempotent on dedup key)."""
        when = at or utcnow()
        ev = evidence or {}
        async with self._write() as conn:
            added = await self._insert_many(
                conn, FINDINGS, [finding_values(f, ev.get(f.dedup_key)) for f in findings]
            )
            await self._add_outbox(conn, outbox, when)
        return added

    async def _advance_log(self, conn: AsyncConnection, batch: Batch) -> None:
        """Move the cursor, verified checkpoint and compact range forward, never back; for a
        new tree, replace the checkpoint and compact range unless the stored cursor is past
        the batch's (decided in this UPDATE, which reads the row as it was before it)."""
        values: dict[str, Any] = {
            "cursor": case((Log.cursor < batch.cursor, batch.cursor), else_=Log.cursor),
            "updated_at": batch.at,
        }
        not_behind = Log.cursor <= batch.cursor
        cp = batch.checkpoint
        if cp is not None:
            newer = (
                not_behind if batch.new_tree else func.coalesce(Log.verified_size, -1) <= cp.size
            )
            values["verified_size"] = case((newer, cp.size), else_=Log.verified_size)
            values["verified_root"] = case((newer, cp.root), else_=Log.verified_root)
            values["verified_checkpoint"] = case(
                (newer, clean_text(cp.raw)), else_=Log.verified_checkpoint
            )
            # the first verified batch of a log is the seed of its start point: where
            # tailing began (a failure stored before it carries no checkpoint, and a tip
            # that moves while seeding is retried must not count)
            unseeded = and_(Log.first_index.is_(None), Log.verified_size.is_(None))
            values["first_index"] = case((unseeded, batch.cursor), else_=Log.first_index)
            values["first_at"] = case((unseeded, batch.at), else_=Log.first_at)
        cr = batch.compact_range
        if cr is not None:
            newer = not_behind if batch.new_tree else Log.compact_size <= cr.size
            values["compact_size"] = case((newer, cr.size), else_=Log.compact_size)
            values["compact_hashes"] = case((newer, b"".join(cr.hashes)), else_=Log.compact_hashes)
        result = await conn.execute(update(Log).where(Log.name == batch.log).values(**values))
        if result.rowcount != 1:
            raise StorageError(f"unknown log {batch.log!r}: register it first")

    @staticmethod
    def _entry_values(r: SigningRecord, at: datetime) -> JSON:
        san, issuer, key, cert = _first_signer_columns(r)
        return {
            "log": r.log,
            "idx": r.index,
            "integrated_time": r.integrated_time,
            "time": r.integrated_time if r.integrated_time is not None else int(at.timestamp()),
            "kind": r.kind,
            "api_version": r.api_version,
            "san": san,
            "issuer": issuer,
            "key_fingerprint": key,
            "cert_fingerprint": cert,
            "record": result_json(r),
            "raw_body": r.raw_body,
            "stored_at": at,
        }

    async def _index_log_id(self, conn: AsyncConnection, log: str) -> int:
        """The number of ``log`` in ``index_all_logs``, given it if it has none. Looked up in
        the transaction each time (once a batch): a number cached from a transaction that
        rolled back could be given to another log. Inserted only when missing: on
        PostgreSQL every INSERT, even one that conflicts, takes a number from the sequence."""
        number = select(INDEX_LOGS.c.id).where(INDEX_LOGS.c.log == log)
        found = (await conn.execute(number)).scalar_one_or_none()
        if found is None:
            await conn.execute(self._insert(INDEX_LOGS), [{"log": log}])
            found = (await conn.execute(number)).scalar_one()
        return int(found)

    async def _add_outbox(
        self, conn: AsyncConnection, specs: Iterable[OutboxSpec], at: datetime
    ) -> int:
        specs = list(specs)
        if not specs:
            return 0
        keys = sorted({s.dedup_key for s in specs})
        rows = await orm(conn, select(FindingRow).where(FindingRow.dedup_key.in_(keys)))
        payloads = {r.dedup_key: stored_finding(r).to_json() for r in rows}
        missing = [k for k in keys if k not in payloads]
        if missing:
            raise StorageError(f"outbox rows for unknown findings: {', '.join(missing)}")
        self._queuing = True
        return await self._insert_many(
            conn,
            OUTBOX,
            [
                {
                    "dedup_key": s.dedup_key,
                    "sink": sink,
                    "payload": payloads[s.dedup_key],
                    "created_at": at,
                    "next_attempt_at": at,
                    "attempts": 0,
                }
                for s in specs
                for sink in dict.fromkeys(s.sinks)
            ],
        )
