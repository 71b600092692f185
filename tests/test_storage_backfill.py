"""Shard rotation (``Batch.new_tree``) and resumable backfills (``Batch.backfill``), against
SQLite and PostgreSQL (skipped locally when unreachable, but failing in CI)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.core.errors import StorageError
from monitor.entries.record import MalformedEntry
from monitor.storage import (
    BackfillState,
    Batch,
    CheckpointData,
    FindingQuery,
    HistoryQuery,
    IndexRow,
    LogState,
    OutboxSpec,
    Store,
)
from monitor.storage import engine as engines
from monitor.tlog.merkle import CompactRange, CompactRangeState, leaf_hash
from tests import storage_reads as reads
from tests.contract_support import LOG, with_store
from tests.storage_support import (
    ENGINES,
    T0,
    cert_record,
    finding_for,
    fresh_url,
    pg_databases_fixture,
    run,
)

OTHER = "other.example"

pg_dbs = pytest.fixture(scope="session")(pg_databases_fixture)


@pytest.fixture(params=ENGINES)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_url(request.param, tmp_path, lambda: request.getfixturevalue("pg_dbs"))


def checkpoint(size: int, tree: str = "tree-1") -> CheckpointData:
    root = leaf_hash(f"{tree}/{size}".encode())
    origin = f"rekor.example - {tree}"
    return CheckpointData(origin, size, root, f"{origin}\n{size}\n{root.hex()}\n")


def compact(size: int, tree: str = "tree-1", first: int = 0) -> CompactRangeState:
    cr = CompactRange(first)
    cr.extend(leaf_hash(f"{tree}/{i}".encode()) for i in range(first, first + size))
    return cr.state()


def moved(state: LogState | BackfillState | None) -> Any:
    """``state`` without its time stamp: what a batch must not change."""
    assert state is not None
    return replace(state, updated_at=T0)


# ------------------------------------------------------------------ new tree (shards)


def test_a_new_tree_replaces_a_larger_checkpoint_and_compact_range(url: str) -> None:
    async def body(s: Store) -> None:
        await s.store_batch(
            Batch(LOG, 1000, checkpoint=checkpoint(1000), compact_range=compact(1000))
        )
        # the log rotated: global indices go on, the new tree starts empty ...
        empty = CompactRangeState(0, ())
        rotated = Batch(
            LOG, 1000, checkpoint=checkpoint(0, "tree-2"), compact_range=empty, new_tree=True
        )
        await s.store_batch(rotated)
        state = await s.log_state(LOG)
        assert state is not None
        assert (state.cursor, state.verified_size) == (1000, 0)
        assert state.verified_root == checkpoint(0, "tree-2").root
        assert state.verified_checkpoint == checkpoint(0, "tree-2").raw
        assert state.compact_range == empty
        # ... and grows from there
        grown = replace(
            rotated, cursor=1005, checkpoint=checkpoint(5, "tree-2"), compact_range=compact(5)
        )
        await s.store_batch(grown)
        state = await s.log_state(LOG)
        assert state is not None
        assert (state.cursor, state.verified_size) == (1005, 5)
        assert state.verified_checkpoint == checkpoint(5, "tree-2").raw
        assert state.compact_range == compact(5)
        # an ordinary batch moves the new tree forward, never back, as before
        await s.store_batch(
            Batch(LOG, 1010, checkpoint=checkpoint(10, "tree-2"), compact_range=compact(10))
        )
        await s.store_batch(
            Batch(LOG, 1010, checkpoint=checkpoint(3, "tree-2"), compact_range=compact(3))
        )
        state = await s.log_state(LOG)
        assert state is not None
        assert (state.cursor, state.verified_size) == (1010, 10)
        assert state.compact_range == compact(10)
        # every checkpoint is kept as evidence, of both trees
        sizes = sorted((c.origin, c.size) for c in await s.checkpoints(LOG))
        assert sizes == [
            ("rekor.example - tree-1", 1000),
            ("rekor.example - tree-2", 0),
            ("rekor.example - tree-2", 3),
            ("rekor.example - tree-2", 5),
            ("rekor.example - tree-2", 10),
        ]

    with_store(url, body)


def test_a_new_tree_behind_the_cursor_changes_nothing(url: str) -> None:
    async def body(s: Store) -> None:
        await s.store_batch(
            Batch(LOG, 2000, checkpoint=checkpoint(2000), compact_range=compact(2000))
        )
        before = await s.log_state(LOG)
        records = (cert_record(LOG, 1500),)
        old = Batch(
            LOG,
            1501,
            checkpoint=checkpoint(1, "tree-2"),
            compact_range=compact(1, "tree-2"),
            records=records,
            index_rows=tuple(IndexRow.from_record(r, 0) for r in records),
            new_tree=True,
        )
        result = await s.store_batch(old)
        assert moved(await s.log_state(LOG)) == moved(before)
        # the rest of the batch is stored as usual
        assert (result.entries, result.index_rows) == (1, 1)
        assert await s.entry(LOG, 1500) is not None

    with_store(url, body)


@pytest.mark.parametrize("missing", ["checkpoint", "compact_range"])
def test_a_new_tree_needs_its_checkpoint_and_compact_range(url: str, missing: str) -> None:
    async def body(s: Store) -> None:
        batch = Batch(
            LOG,
            10,
            checkpoint=checkpoint(10),
            compact_range=compact(10),
            records=(cert_record(LOG, 9),),
            new_tree=True,
        )
        if missing == "checkpoint":
            batch = replace(batch, checkpoint=None)
        else:
            batch = replace(batch, compact_range=None)
        before = await reads.counts(s)
        with pytest.raises(StorageError, match="new tree"):
            await s.store_batch(batch)
        assert await reads.counts(s) == before

    with_store(url, body)


def test_a_backfill_crossing_into_a_new_tree_replaces_its_compact_range(url: str) -> None:
    async def body(s: Store) -> None:
        await s.store_batch(Batch(LOG, 150, checkpoint(150), compact(150), backfill=(100, 300)))
        log_before = await s.log_state(LOG)
        # the old tree ended at 200; the new tree starts empty at global index 200
        await s.store_batch(Batch(LOG, 200, checkpoint(200), compact(200), backfill=(100, 300)))
        await s.store_batch(
            Batch(LOG, 200, checkpoint(7), compact(0), new_tree=True, backfill=(100, 300))
        )
        bf = await s.backfill_state(LOG, 100, 300)
        assert bf is not None
        assert (bf.cursor, bf.compact_range, bf.checkpoint) == (200, compact(0), checkpoint(7).raw)
        # a replayed new-tree batch from behind the cursor changes nothing
        await s.store_batch(Batch(LOG, 210, checkpoint(7), compact(10), backfill=(100, 300)))
        await s.store_batch(
            Batch(LOG, 200, checkpoint(7), compact(0), new_tree=True, backfill=(100, 300))
        )
        bf = await s.backfill_state(LOG, 100, 300)
        assert bf is not None
        assert (bf.cursor, bf.compact_range.size) == (210, 10)
        assert await s.log_state(LOG) == log_before

    with_store(url, body)


# -------------------------------------------------------------------------- backfills


def backfill_batch(start: int, cursor: int, span: tuple[int, int] = (100, 200)) -> Batch:
    """Entries [start, cursor) of the backfill ``span``, proven against checkpoint 5000,
    with the compact range of the whole log up to ``cursor``."""
    records = tuple(cert_record(LOG, i) for i in range(start, cursor))
    findings = tuple(finding_for(r) for r in records[:1])
    return Batch(
        LOG,
        cursor,
        checkpoint=checkpoint(5000),
        compact_range=compact(cursor),
        records=records,
        findings=findings,
        outbox=tuple(OutboxSpec(f.dedup_key, ("slack",)) for f in findings),
        malformed=(MalformedEntry(LOG, cursor - 1, "not JSON", b"\xff"),),
        index_rows=tuple(IndexRow.from_record(r, 0) for r in records),
        at=T0,
        backfill=span,
    )


def test_backfill_batches_create_and_advance_their_row(url: str) -> None:
    async def body(s: Store) -> None:
        await s.register_log(OTHER, "v1", "https://other.example")
        tail = Batch(LOG, 6000, checkpoint=checkpoint(6000), compact_range=compact(6000), at=T0)
        await s.store_batch(tail)
        log_before = await s.log_state(LOG)
        assert await s.backfill_state(LOG, 100, 200) is None

        await s.store_batch(replace(backfill_batch(100, 150), at=T0 + timedelta(hours=1)))
        state = await s.backfill_state(LOG, 100, 200)
        assert state == BackfillState(
            log=LOG,
            start=100,
            end=200,
            cursor=150,
            checkpoint=checkpoint(5000).raw,
            compact_range=compact(150),
            updated_at=T0 + timedelta(hours=1),
        )
        assert not state.done
        # the log's own cursor, checkpoint and compact range (and time stamp) are untouched
        assert await s.log_state(LOG) == log_before
        # the checkpoint is evidence as always
        stored = {(c.size, c.verified) for c in await s.checkpoints(LOG)}
        assert stored == {(6000, True), (5000, True)}

        await s.store_batch(backfill_batch(150, 200))
        state = await s.backfill_state(LOG, 100, 200)
        assert state is not None
        assert (state.cursor, state.compact_range) == (200, compact(200))
        assert state.done
        assert await s.log_state(LOG) == log_before

        # a bare batch (no checkpoint, no compact range) starts a row of its own
        await s.store_batch(Batch(OTHER, 7, at=T0, backfill=(5, 10)))
        await s.store_batch(Batch(LOG, 0, at=T0, backfill=(0, 50)))
        bare = await s.backfill_state(OTHER, 5, 10)
        assert bare is not None
        assert (bare.cursor, bare.checkpoint, bare.compact_range) == (
            7,
            None,
            CompactRangeState(0, ()),
        )
        everything = [(b.log, b.start, b.end) for b in await reads.backfills(s)]
        assert everything == [(OTHER, 5, 10), (LOG, 0, 50), (LOG, 100, 200)]
        assert [(b.start, b.end) for b in await reads.backfills(s, LOG)] == [(0, 50), (100, 200)]
        assert await reads.backfills(s, "nope") == []
        assert (await reads.counts(s))["backfills"] == 3
        other = await s.log_state(OTHER)
        assert other is not None
        assert other.cursor == 0

    with_store(url, body)


def test_the_backfill_cursor_never_moves_back(url: str) -> None:
    async def body(s: Store) -> None:
        ahead = backfill_batch(100, 180)
        await s.store_batch(ahead)
        before = await s.backfill_state(LOG, 100, 200)
        assert before is not None
        assert before.cursor == 180
        # an older batch stored again (after a crash, say): nothing moves back
        older = replace(
            backfill_batch(100, 150), checkpoint=checkpoint(4000), at=T0 + timedelta(hours=1)
        )
        await s.store_batch(older)
        assert moved(await s.backfill_state(LOG, 100, 200)) == moved(before)
        # a cursor that is not behind takes the batch's checkpoint (a resumed backfill proven
        # against a newer one)
        await s.store_batch(replace(ahead, records=(), checkpoint=checkpoint(7000)))
        state = await s.backfill_state(LOG, 100, 200)
        assert state is not None
        assert (state.cursor, state.checkpoint) == (180, checkpoint(7000).raw)
        assert state.compact_range == compact(180)

    with_store(url, body)


def test_backfilled_entries_are_stored_as_usual_and_only_once(url: str) -> None:
    async def body(s: Store) -> None:
        batch = backfill_batch(100, 110)
        first = await s.store_batch(batch)
        assert (first.entries, first.findings, first.outbox, first.malformed) == (10, 1, 1, 1)
        assert first.index_rows == 10
        page = await s.history(HistoryQuery(log=LOG, limit=100))
        assert [e.index for e in page.items] == list(range(100, 110))
        indexed = await s.history(HistoryQuery(log=LOG, all_entries=True, limit=100))
        assert [e.index for e in indexed.items] == list(range(100, 110))
        e = await s.entry(LOG, 105)
        assert e is not None
        assert e.raw_body == batch.records[5].raw_body
        assert await s.malformed(LOG, 109) is not None
        (finding,) = (await s.findings(FindingQuery())).items
        assert finding.finding.index == 100
        assert [o.sink for o in await reads.outbox_for(s, finding.finding.dedup_key)] == ["slack"]

        counts = await reads.counts(s)
        state = await s.backfill_state(LOG, 100, 200)
        again = await s.store_batch(replace(batch, at=T0 + timedelta(days=1)))
        assert again == type(again)(0, 0, 0, 0, 0)
        assert await reads.counts(s) == counts
        assert moved(await s.backfill_state(LOG, 100, 200)) == moved(state)

    with_store(url, body)


def test_a_backfill_batch_failing_halfway_leaves_nothing(url: str) -> None:
    class Crash(Exception):
        pass

    async def body(s: Store) -> None:
        def crash(step: str) -> None:
            if step == "entries":
                raise Crash(step)

        before = await reads.counts(s)
        s.after_step = crash
        with pytest.raises(Crash):
            await s.store_batch(backfill_batch(100, 120))
        s.after_step = None
        assert await reads.counts(s) == before
        assert await s.backfill_state(LOG, 100, 200) is None
        # resumed: the same batch goes through
        await s.store_batch(backfill_batch(100, 120))
        state = await s.backfill_state(LOG, 100, 200)
        assert state is not None
        assert state.cursor == 120

    with_store(url, body)


@pytest.mark.parametrize(
    ("log", "span", "cursor", "error"),
    [
        ("nope", (0, 10), 5, "unknown log"),
        (LOG, (10, 5), 10, "not a range"),
        (LOG, (-1, 5), 0, "not a range"),
        (LOG, (10, 20), 9, "before the range"),
    ],
)
def test_impossible_backfills_are_refused(
    url: str, log: str, span: tuple[int, int], cursor: int, error: str
) -> None:
    async def body(s: Store) -> None:
        before = await reads.counts(s)
        batch = Batch(log, cursor, checkpoint=checkpoint(20), at=T0, backfill=span)
        with pytest.raises(StorageError, match=error):
            await s.store_batch(batch)
        assert await reads.counts(s) == before

    with_store(url, body)


# -------------------------------------------------------------------------- migration


def test_the_backfills_migration_upgrades_and_downgrades(url: str) -> None:
    async def tables(eng: AsyncEngine) -> set[str]:
        async with eng.connect() as conn:
            return await conn.run_sync(lambda c: set(inspect(c).get_table_names()))

    async def body() -> None:
        eng = engines.make_engine(url)
        try:
            await engines.upgrade(eng, "0001")
            assert await engines.revision_of(eng) == "0001"
            assert "backfills" not in await tables(eng)
        finally:
            await eng.dispose()
        # a database at 0001 with a log in it: the store brings it to the head
        s = await Store.open(url)
        try:
            assert await engines.revision_of(s.engine) == engines.head_revision()
            await s.register_log(LOG, "v1", "https://rekor.example")
            await s.store_batch(Batch(LOG, 5, at=T0, backfill=(0, 10)))
        finally:
            await s.close()
        eng = engines.make_engine(url)
        try:
            await engines.downgrade(eng, "0001")
            assert await engines.revision_of(eng) == "0001"
            assert "backfills" not in await tables(eng)
            assert "logs" in await tables(eng)
            await engines.upgrade(eng)
        finally:
            await eng.dispose()
        s = await Store.open(url, migrate=False)
        try:
            assert await reads.backfills(s) == []
            state = await s.log_state(LOG)
            assert state is not None  # the logs of 0001 survived the round trip
        finally:
            await s.close()

    run(body)
