"""Outbox events on both engines: a finding's trigger and, when it is resolved, a resolve row
for every sink that had the trigger, in the same transaction; pending rows in creation order."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.core.findings import FindingState
from monitor.storage import Store
from monitor.storage.batch import Batch, OutboxSpec
from tests import storage_reads as reads
from tests.storage_support import (
    ENGINES,
    cert_record,
    finding_for,
    fresh_url,
    pg_databases_fixture,
    run,
)

LOG = "rekor.example"
pg_dbs = pytest.fixture(scope="session")(pg_databases_fixture)


@pytest.fixture(params=ENGINES)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_url(request.param, tmp_path, lambda: request.getfixturevalue("pg_dbs"))


def test_resolving_queues_a_resolve_for_each_sink_that_had_the_trigger(url: str) -> None:
    async def body() -> None:
        s = await Store.open(url)
        try:
            await s.register_log(LOG, "v1", "https://rekor.example")
            records = [cert_record(LOG, i) for i in (1, 2)]
            findings = [finding_for(r) for r in records]
            outbox = (
                OutboxSpec(findings[0].dedup_key, ("soc", "pager")),
                OutboxSpec(findings[1].dedup_key, ("soc",)),
            )
            await s.store_batch(
                Batch(LOG, 3, records=tuple(records), findings=tuple(findings), outbox=outbox)
            )
            pending = await s.pending_outbox("soc")
            assert [(o.dedup_key, o.event) for o in pending] == [
                (findings[0].dedup_key, "trigger"),
                (findings[1].dedup_key, "trigger"),
            ]
            # a pending row not yet due still holds its place: order is creation order
            await s.record_attempt(
                pending[0].id,
                at=pending[0].created_at,
                error="500",
                duration=0.1,
                retry_at=pending[0].created_at + timedelta(hours=1),
            )
            assert [o.id for o in await s.pending_outbox("soc")] == [o.id for o in pending]

            stored = await s.finding_by_key(findings[0].dedup_key)
            assert stored is not None
            assert stored.finding.id is not None
            assert await s.resolve_finding(stored.finding.id, "monitor", "cleared")
            assert not await s.resolve_finding(stored.finding.id, "monitor", "again")  # once
            rows = await reads.outbox_for(s, findings[0].dedup_key)
            assert sorted((o.sink, o.event) for o in rows) == [
                ("pager", "resolve"),
                ("pager", "trigger"),
                ("soc", "resolve"),
                ("soc", "trigger"),
            ]
            resolve = next(o for o in rows if o.event == "resolve" and o.sink == "soc")
            assert resolve.payload["state"] == str(FindingState.RESOLVED)
            assert resolve.payload["comment"] == "cleared"
            assert [o.event for o in await s.pending_outbox("soc")] == [
                "trigger",
                "trigger",
                "resolve",
            ]
            assert await s.resolve_finding(10_000, "monitor") is False
        finally:
            await s.close()

    run(body)


def test_a_commit_that_queued_outbox_rows_is_told_once_it_has_committed(url: str) -> None:
    async def body() -> None:
        s = await Store.open(url)
        seen: list[list[str]] = []
        reads: list[asyncio.Future[None]] = []

        async def read() -> None:  # as a woken sink worker reads
            seen.append([o.event for o in await s.pending_outbox("soc")])

        s.queued = lambda: reads.append(asyncio.ensure_future(read()))
        try:
            await s.register_log(LOG, "v1", "https://rekor.example")
            records = [cert_record(LOG, i) for i in (1, 2)]
            found = [finding_for(r) for r in records]
            await s.store_batch(Batch(LOG, 2, records=(records[0],), findings=(found[0],)))
            assert reads == []  # no sink takes that finding: nothing queued
            spec = (OutboxSpec(found[1].dedup_key, ("soc",)),)
            batch = Batch(LOG, 3, records=(records[1],), findings=(found[1],), outbox=spec)
            await s.store_batch(batch)
            await asyncio.gather(*reads)
            assert seen == [["trigger"]]
            stored = await s.finding_by_key(found[1].dedup_key)
            assert stored is not None
            assert stored.finding.id is not None
            await s.acknowledge_finding(stored.finding.id, "someone")
            assert len(reads) == 1  # a change of state queues nothing
            assert await s.resolve_finding(stored.finding.id, "monitor")
            await asyncio.gather(*reads)
            assert seen == [["trigger"], ["trigger", "resolve"]]
        finally:
            await s.close()

    run(body)
