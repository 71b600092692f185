"""The storage contract, findings and the outbox: filters, paging and state changes, evidence
round trips, outbox rows with their findings, delivery retries, dead letters and replay
(SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from monitor.core.errors import QueryError, StorageError
from monitor.core.findings import FindingKind, FindingState, Severity
from monitor.storage import Batch, FindingQuery, OutboxSpec, Store
from tests import storage_reads as reads
from tests.contract_support import LOG, contract_url, full_batch, shared_pg_database, with_store
from tests.storage_support import ENGINES, T0, cert_record, finding_for, pg_databases_fixture

pg_dbs = pytest.fixture(scope="session")(pg_databases_fixture)
pg_shared = pytest.fixture(scope="session")(shared_pg_database)
url = pytest.fixture(params=ENGINES)(contract_url)


# ----------------------------------------------------------------------- findings


def test_findings_filters_paging_and_state_changes(url: str) -> None:
    async def body(s: Store) -> None:
        records = [cert_record(LOG, i) for i in range(12)]
        findings = [
            finding_for(
                r,
                severity=Severity(i % 5),
                rule="rule-a" if i % 2 else "rule-b",
                kind=FindingKind.WATCHED_USE if i % 3 else FindingKind.UNEXPECTED_SIGNER,
                at=T0 + timedelta(minutes=i),
            )
            for i, r in enumerate(records)
        ]
        await s.store_batch(Batch(LOG, 12, records=tuple(records), findings=tuple(findings)))

        async def f(**kw: Any) -> list[int | None]:
            return [x.finding.index for x in (await s.findings(FindingQuery(**kw))).items]

        assert await f() == list(range(11, -1, -1))  # newest first
        assert await f(min_severity=Severity.CRITICAL) == [9, 4]
        assert await f(rule="rule-a") == [11, 9, 7, 5, 3, 1]
        assert await f(kinds=(FindingKind.UNEXPECTED_SIGNER,)) == [9, 6, 3, 0]
        assert await f(log=LOG, since=T0 + timedelta(minutes=10)) == [11, 10]
        assert await f(until=T0 + timedelta(minutes=2)) == [1, 0]
        assert await f(log="other") == []

        seen: list[int | None] = []
        page = await s.findings(FindingQuery(limit=5))
        page_cursor_newest = page.next_cursor
        while True:
            seen += [x.finding.index for x in page.items]
            if page.next_cursor is None:
                break
            page = await s.findings(FindingQuery(limit=5, cursor=page.next_cursor))
        assert seen == list(range(11, -1, -1))

        # the queue: the most severe first, the oldest first within a severity, paged
        # through page boundaries that fall inside a severity
        queue = sorted(range(12), key=lambda i: (-(i % 5), i))
        assert await f(order="severity") == queue
        seen = []
        page = await s.findings(FindingQuery(limit=5, order="severity"))
        while True:
            seen += [x.finding.index for x in page.items]
            if page.next_cursor is None:
                break
            page = await s.findings(
                FindingQuery(limit=5, order="severity", cursor=page.next_cursor)
            )
        assert seen == queue
        assert await f(order="severity", rule="rule-a") == [i for i in queue if i % 2]
        with pytest.raises(QueryError):  # a cursor of the other order
            await s.findings(FindingQuery(order="severity", cursor=page_cursor_newest))

        target = (await s.findings(FindingQuery(limit=1))).items[0]
        assert target.finding.id is not None
        at = T0 + timedelta(days=2)
        assert await s.acknowledge_finding(target.finding.id, "alice", "looking", at=at)
        changed = await s.finding(target.finding.id)
        assert changed is not None
        assert changed.finding.state is FindingState.ACKNOWLEDGED
        assert (changed.state_changed_by, changed.state_changed_at) == ("alice", at)
        assert changed.comment == "looking"
        assert changed.to_json()["state_changed_by"] == "alice"
        assert await f(states=(FindingState.ACKNOWLEDGED,)) == [target.finding.index]
        assert len(await f(states=(FindingState.OPEN,))) == 11
        assert not await s.acknowledge_finding(10_000, "bob")
        # storing the finding again does not reopen it
        await s.store_batch(Batch(LOG, 12, findings=(findings[11],)))
        assert (await s.finding(target.finding.id)) == changed

    with_store(url, body)


def test_evidence_and_finding_fields_round_trip(url: str) -> None:
    async def body(s: Store) -> None:
        batch = full_batch()
        await s.store_batch(batch)
        key = batch.findings[0].dedup_key
        stored = await s.finding_by_key(key)
        assert stored is not None
        assert stored.evidence == {"entry": 0}
        original = batch.findings[0]
        assert stored.finding == original  # every compared field survives
        assert stored.finding.created_at == original.created_at
        assert stored.finding.to_json() | {"id": None} == original.to_json()

    with_store(url, body)


# ------------------------------------------------------------------------- outbox


def test_outbox_rows_come_with_their_findings(url: str) -> None:
    async def body(s: Store) -> None:
        batch = full_batch()
        await s.store_batch(batch)
        for f in batch.findings:
            rows = await reads.outbox_for(s, f.dedup_key)
            assert sorted(r.sink for r in rows) == ["slack", "webhook"]
            # what the console shows on the finding's page (over the unique key's index)
            assert await s.deliveries(f.dedup_key) == rows
            assert await s.deliveries(f.dedup_key, limit=1) == rows[:1]
            stored = await s.finding_by_key(f.dedup_key)
            assert stored is not None
            for row in rows:
                assert row.payload == stored.to_json()
                assert row.payload["id"] == stored.finding.id
        # a crash after the findings, before the outbox: neither is there

        def crash(step: str) -> None:
            if step == "outbox":
                raise RuntimeError(step)

        s.after_step = crash
        r = cert_record(LOG, 50)
        f = finding_for(r)
        outbox = (OutboxSpec(f.dedup_key, ("slack",)),)
        with pytest.raises(RuntimeError):
            await s.store_batch(Batch(LOG, 51, records=(r,), findings=(f,), outbox=outbox))
        s.after_step = None
        assert await s.finding_by_key(f.dedup_key) is None
        assert await reads.outbox_for(s, f.dedup_key) == []

    with_store(url, body)


def test_delivery_retries_dead_letters_and_replay(url: str) -> None:
    async def body(s: Store) -> None:
        await s.store_batch(full_batch())
        due = await reads.due_outbox(s, "slack", T0)
        assert len(due) == 2
        assert await reads.due_outbox(s, "slack", T0 - timedelta(seconds=1)) == []
        assert await reads.due_outbox(s, "pager", T0) == []
        first, second = due

        await s.mark_delivered(first.id, at=T0, duration=0.2)
        await s.record_attempt(
            second.id, at=T0, error="HTTP 500", duration=1.5, retry_at=T0 + timedelta(minutes=1)
        )
        assert await reads.due_outbox(s, "slack", T0 + timedelta(seconds=30)) == []
        (retry,) = await reads.due_outbox(s, "slack", T0 + timedelta(minutes=1))
        assert (retry.id, retry.attempts, retry.last_error) == (second.id, 1, "HTTP 500")

        await s.record_attempt(
            second.id, at=T0 + timedelta(minutes=1), error="HTTP 503", duration=1.0, retry_at=None
        )
        assert await reads.due_outbox(s, "slack", T0 + timedelta(days=1)) == []
        (dead,) = await s.dead_letters()
        assert (dead.id, dead.attempts, dead.last_error) == (second.id, 2, "HTTP 503")
        assert await s.dead_letters(sink="webhook") == []
        attempts = await s.attempts(second.id)
        assert [(a.status, a.error) for a in attempts] == [
            ("failed", "HTTP 500"),
            ("dead", "HTTP 503"),
        ]
        assert [a.status for a in await s.attempts(first.id)] == ["delivered"]
        delivered = await reads.outbox_item(s, first.id)
        assert delivered is not None
        assert delivered.delivered_at == T0

        now = T0 + timedelta(days=2)
        assert await s.replay(second.id, now=now)
        assert not await s.replay(second.id, now=now)  # no longer dead
        assert not await s.replay(first.id, now=now)  # delivered: not a dead letter
        assert await s.dead_letters() == []
        (back,) = await reads.due_outbox(s, "slack", now)
        assert (back.id, back.attempts, back.dead_at) == (second.id, 0, None)
        with pytest.raises(StorageError):
            await s.mark_delivered(99_999, at=now, duration=0.0)

    with_store(url, body)
