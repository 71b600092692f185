"""The storage contract: the same suite against SQLite (a file) and PostgreSQL (a real
server; skipped locally when unreachable, but failing in CI). Here: logs, idempotency,
atomicity and state that never moves back (history: ``test_storage_contract_history``;
findings and the outbox: ``test_storage_contract_findings``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.core.errors import StorageError
from monitor.storage import Batch, CheckpointData, FindingQuery, HistoryQuery, OutboxSpec, Store
from monitor.tlog.merkle import CompactRange, leaf_hash
from monitor.tlog.witness import Cosignature
from tests import storage_reads as reads
from tests.contract_support import (
    LOG,
    checkpoint,
    contract_url,
    full_batch,
    shared_pg_database,
    with_store,
)
from tests.storage_support import (
    ENGINES,
    T0,
    cert_record,
    finding_for,
    pg_databases_fixture,
    run,
    sqlite_url,
)

pg_dbs = pytest.fixture(scope="session")(pg_databases_fixture)
pg_shared = pytest.fixture(scope="session")(shared_pg_database)
url = pytest.fixture(params=ENGINES)(contract_url)


async def snapshot(s: Store) -> dict[str, Any]:
    """Everything a caller can read, for before/after comparisons."""
    entries = await s.history(HistoryQuery(limit=1000))
    index = await s.history(HistoryQuery(limit=1000, all_entries=True))
    findings = await s.findings(FindingQuery(limit=1000))
    outbox = [o for f in findings.items for o in await reads.outbox_for(s, f.finding.dedup_key)]
    return {
        "counts": await reads.counts(s),
        "log": await s.log_state(LOG),
        "entries": entries.items,
        "index": index.items,
        "findings": [f.to_json() for f in findings.items],
        "outbox": outbox,
        "checkpoints": await s.checkpoints(LOG),
    }


# --------------------------------------------------------------------------- logs


def test_register_log_is_idempotent_and_updates_url(url: str) -> None:
    async def body(s: Store) -> None:
        await s.register_log(LOG, "v1", "https://rekor.example")
        state = await s.log_state(LOG)
        assert state is not None
        assert state.cursor == 0
        assert state.compact_range.size == 0
        await s.register_log(LOG, "v2", "https://new.example")
        state = await s.log_state(LOG)
        assert state is not None
        assert (state.api, state.url) == ("v2", "https://new.example")
        assert await s.log_state("nope") is None
        assert (await reads.counts(s))["logs"] == 1

    with_store(url, body)


def test_open_without_migrate_refuses_an_old_schema(tmp_path: Path) -> None:
    async def body() -> None:
        with pytest.raises(StorageError, match="db upgrade"):
            await Store.open(sqlite_url(tmp_path), migrate=False)

    run(body)


def test_an_unreachable_server_is_a_storage_error() -> None:
    async def body() -> None:
        with pytest.raises(StorageError, match="cannot open database"):
            await Store.open("postgresql://postgres@127.0.0.1:1/none")

    run(body)


# -------------------------------------------------------------------- idempotency


def test_same_batch_twice_changes_nothing(url: str) -> None:
    async def body(s: Store) -> None:
        batch = full_batch()
        first = await s.store_batch(batch)
        assert (first.entries, first.findings, first.outbox, first.malformed) == (4, 2, 4, 1)
        assert first.index_rows == 4
        before = await snapshot(s)
        again = await s.store_batch(replace(batch, at=T0 + timedelta(hours=1)))
        assert again == type(again)(0, 0, 0, 0, 0)
        after = await snapshot(s)
        assert after["counts"] == before["counts"]
        assert after["entries"] == before["entries"]
        assert after["findings"] == before["findings"]
        assert after["outbox"] == before["outbox"]
        assert after["checkpoints"] == before["checkpoints"]
        assert after["log"].cursor == before["log"].cursor
        assert after["log"].compact_range == before["log"].compact_range

    with_store(url, body)


def test_same_finding_twice_keeps_one_row(url: str) -> None:
    async def body(s: Store) -> None:
        r = cert_record(LOG, 7)
        f1 = finding_for(r, at=T0)
        f2 = replace(f1, detail="seen again", created_at=T0 + timedelta(days=1))
        await s.store_batch(Batch(LOG, 8, records=(r,), findings=(f1,)))
        await s.store_batch(Batch(LOG, 9, records=(r,), findings=(f2,)))
        page = await s.findings(FindingQuery())
        assert len(page.items) == 1
        stored = page.items[0].finding
        assert stored.detail == f1.detail
        assert stored.created_at == T0
        assert (await reads.counts(s))["entries"] == 1

    with_store(url, body)


# ---------------------------------------------------------------------- atomicity

STEPS = [
    "log",
    "checkpoint",
    "entries",
    "identities",
    "malformed",
    "findings",
    "outbox",
    "index_all",
]


@pytest.mark.parametrize("step", STEPS)
def test_a_batch_failing_halfway_leaves_nothing(url: str, step: str) -> None:
    class Crash(Exception):
        pass

    async def body(s: Store) -> None:
        await s.store_batch(full_batch(0, 2))
        before = await snapshot(s)

        def hook(name: str) -> None:
            if name == step:
                raise Crash(name)

        s.after_step = hook
        with pytest.raises(Crash):
            await s.store_batch(full_batch(10, 3))
        s.after_step = None
        after = await snapshot(s)
        assert after == before
        # and the same batch goes through once the failure is gone
        result = await s.store_batch(full_batch(10, 3))
        assert result.entries == 3

    with_store(url, body)


def test_unknown_log_fails_the_batch_and_writes_nothing(url: str) -> None:
    async def body(s: Store) -> None:
        before = await reads.counts(s)
        batch = replace(full_batch(), log="other", records=(), index_rows=(), malformed=())
        with pytest.raises(StorageError, match="unknown log"):
            await s.store_batch(batch)
        assert await reads.counts(s) == before

    with_store(url, body)


def test_outbox_for_an_unknown_finding_fails_the_batch(url: str) -> None:
    async def body(s: Store) -> None:
        before = await reads.counts(s)
        batch = Batch(LOG, 5, outbox=(OutboxSpec("nosuchkey", ("slack",)),))
        with pytest.raises(StorageError, match="unknown findings"):
            await s.store_batch(batch)
        assert await reads.counts(s) == before

    with_store(url, body)


def test_records_of_another_log_are_refused(url: str) -> None:
    async def body(s: Store) -> None:
        with pytest.raises(StorageError):
            await s.store_batch(Batch(LOG, 1, records=(cert_record("elsewhere", 0),)))

    with_store(url, body)


# ------------------------------------------------------------------ monotonic state


def test_cursor_checkpoint_and_compact_range_never_move_back(url: str) -> None:
    async def body(s: Store) -> None:
        big = CompactRange()
        big.extend(leaf_hash(bytes([i])) for i in range(11))
        small = CompactRange()
        small.extend(leaf_hash(bytes([i])) for i in range(3))
        await s.store_batch(Batch(LOG, 100, checkpoint=checkpoint(100), compact_range=big.state()))
        await s.store_batch(Batch(LOG, 50, checkpoint=checkpoint(50), compact_range=small.state()))
        state = await s.log_state(LOG)
        assert state is not None
        assert state.cursor == 100
        assert state.verified_size == 100
        assert state.verified_root == checkpoint(100).root
        assert state.verified_checkpoint == checkpoint(100).raw
        assert state.compact_range == big.state()
        assert CompactRange.from_state(state.compact_range).root() == big.root()
        # the older checkpoint is still kept as evidence
        sizes = sorted(c.size for c in await s.checkpoints(LOG))
        assert sizes == [50, 100]
        await s.store_batch(Batch(LOG, 101))
        state = await s.log_state(LOG)
        assert state is not None
        assert state.cursor == 101
        assert state.verified_size == 100

    with_store(url, body)


def test_checkpoints_are_evidence(url: str) -> None:
    async def body(s: Store) -> None:
        cp = checkpoint(10)
        assert await reads.record_checkpoint(s, LOG, cp, verified=False, at=T0)
        assert not await reads.record_checkpoint(s, LOG, cp, verified=False, at=T0)
        (only,) = await s.checkpoints(LOG)
        assert not only.verified
        assert only.raw == cp.raw
        assert only.seen_at == T0
        assert not await reads.record_checkpoint(s, LOG, cp, verified=True)
        (only,) = await s.checkpoints(LOG)
        assert only.verified
        # a second root for the same size: the log forked; both are kept
        forked = checkpoint(10, seed="fork")
        assert await reads.record_checkpoint(s, LOG, forked, verified=False)
        roots = {c.root for c in await s.checkpoints(LOG)}
        assert roots == {cp.root, forked.root}
        # the same tree signed under another origin (a Rekor v1 pod restarted under a new
        # name): both notes are kept, each proven on its own
        renamed = replace(cp, origin="pod-2 - 1", raw=cp.raw.replace(cp.origin, "pod-2 - 1"))
        assert await reads.record_checkpoint(s, LOG, renamed, verified=False)
        assert not await reads.record_checkpoint(s, LOG, renamed, verified=True)
        kept = {(c.origin, c.verified) for c in await s.checkpoints(LOG) if c.root == cp.root}
        assert kept == {(cp.origin, True), ("pod-2 - 1", True)}

    with_store(url, body)


def test_checkpoints_record_their_cosigners_and_keep_the_best_witnessed_note(url: str) -> None:
    def cosigned(n: int, bad: int = 0) -> CheckpointData:
        lines = [f"\u2014 w{i} sig{i}" for i in range(n + bad)]
        sigs = tuple(
            Cosignature(f"w{i}", f"{i:08x}", 1_700_000_000 + i, "verified") for i in range(n)
        ) + tuple(
            Cosignature(f"w{n + i}", "00000000", None, "invalid", "bad signature")
            for i in range(bad)
        )
        base = checkpoint(20)
        return replace(base, raw=base.raw + "\n".join(lines) + "\n", cosigners=sigs)

    async def body(s: Store) -> None:
        unchecked = checkpoint(10)  # no witnesses configured: nothing recorded
        assert await reads.record_checkpoint(s, LOG, unchecked, verified=True, at=T0)
        assert (await s.checkpoints(LOG))[0].cosigners is None
        one = cosigned(1, bad=1)
        assert await reads.record_checkpoint(s, LOG, one, verified=True, at=T0)
        (latest, _) = await s.checkpoints(LOG)
        assert latest.cosigners == one.cosigners  # the failed one is kept, with its reason
        assert latest.raw == one.raw
        # witnesses cosign late: the same checkpoint with more of them replaces the note...
        three = cosigned(3)
        assert not await reads.record_checkpoint(s, LOG, three, verified=True)
        (latest, _) = await s.checkpoints(LOG)
        assert (latest.raw, latest.cosigners) == (three.raw, three.cosigners)
        # ...and one with fewer does not
        assert not await reads.record_checkpoint(s, LOG, cosigned(2), verified=True)
        (latest, _) = await s.checkpoints(LOG)
        assert (latest.raw, latest.cosigners) == (three.raw, three.cosigners)

    with_store(url, body)
