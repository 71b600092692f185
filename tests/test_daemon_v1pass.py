"""monitor.daemon.catchup over Rekor v1: verified catch-up passes of a sharded Rekor v1 log
into a real SQLite store, against the simulator over loopback: every tree walked in order
(rotation included), planted entries found exactly once, every lie stopped at with one
integrity finding, and backfills proven and resumable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from monitor.core.findings import FindingKind, IntegrityType
from monitor.daemon import PassContext, PassResult, RekorV1Source, Start
from monitor.daemon import catch_up as one_pass
from monitor.storage import FindingQuery, StoredFinding
from monitor.storage.store import Store
from monitor.tlog.merkle import leaf_hash
from tests import storage_reads as reads
from tests.simlog import Harness, harness, run
from tests.test_daemon_pass import RULES

LOG = "v1-sim"
MALLORY = {"email": "mallory@evil.example"}


@asynccontextmanager
async def setup(tmp_path: Path, entries: int = 600) -> AsyncIterator[tuple[Harness, Store]]:
    async with harness(tmp_path, entries=entries, shards=2) as h:
        store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}")
        try:
            yield h, store
        finally:
            await store.close()


def context(h: Harness, store: Store, backfill: tuple[int, int] | None = None) -> PassContext:
    cas = h.trust.certificate_authorities
    return PassContext(LOG, store, RULES, cas, index_all=True, backfill=backfill)


async def catch_up(
    h: Harness,
    store: Store,
    start: Start = "resume",
    chunk: int = 100,
    backfill: tuple[int, int] | None = None,
) -> PassResult:
    source = RekorV1Source(h.v1)
    return await one_pass(source, context(h, store, backfill), start=start, chunk=chunk)


async def findings(store: Store) -> list[StoredFinding]:
    page = await store.findings(FindingQuery(log=LOG, limit=1000))
    return sorted(page.items, key=lambda f: (f.finding.index or -1, f.finding.kind))


async def cursor(store: Store) -> int:
    state = await store.log_state(LOG)
    assert state is not None
    return state.cursor


def test_walks_every_tree_and_finds_planted_entries_once(tmp_path: Path) -> None:
    async def body() -> None:
        async with setup(tmp_path) as (h, store):
            # 300 entries in the frozen tree, 300 in the active one
            first = await catch_up(h, store, start=250)
            assert (first.entries, first.cursor, first.log_size, first.failure) == (
                350,
                600,
                600,
                None,
            )
            await h.admin("plant", {"index": 610, "identity": MALLORY})
            await h.admin("plant", {"index": 650, "digest": "cd" * 32})
            await h.admin("append", {"v1": 100})
            got = await catch_up(h, store, chunk=7)  # chunks that end mid-tree, proven by proofs
            assert (got.entries, got.findings, got.cursor, got.failure) == (100, 2, 700, None)
            assert [(f.finding.index, f.finding.rule) for f in await findings(store)] == [
                (610, "mallory"),
                (650, "artifact"),
            ]
            counts = await reads.counts(store)
            assert counts["index_all"] == 450  # every entry processed, matched or not
            again = await catch_up(h, store)
            assert (again.entries, again.findings, again.cursor) == (0, 0, 700)
            assert await reads.counts(store) == counts
            state = await store.log_state(LOG)
            assert state is not None
            assert state.verified_size == 400  # tree-local: the active tree's size

    run(body)


def test_follows_a_rotation_without_restart(tmp_path: Path) -> None:
    async def body() -> None:
        async with setup(tmp_path) as (h, store):
            tip = await catch_up(h, store, start="tip")
            assert (tip.entries, tip.cursor) == (0, 600)
            await h.admin("plant", {"index": 640, "identity": MALLORY})
            await h.admin("plant", {"index": 655, "identity": MALLORY})
            await h.admin("append", {"v1": 50})  # the old tree ends at global 650
            await h.admin("rotate", {})
            await h.admin("append", {"v1": 30})  # the new tree holds 650..680
            got = await catch_up(h, store, chunk=16)
            assert (got.entries, got.findings, got.cursor, got.failure) == (80, 2, 680, None)
            assert [f.finding.index for f in await findings(store)] == [640, 655]
            state = await store.log_state(LOG)
            assert state is not None
            assert (state.cursor, state.compact_range.size, state.verified_size) == (680, 30, 30)
            info = await h.v1.log_info()
            assert state.verified_root == info.active.root_hash

            await h.admin("append", {"v1": 5})
            more = await catch_up(h, store)
            assert (more.entries, more.cursor) == (5, 685)

    run(body)


async def only_integrity(store: Store) -> StoredFinding:
    (f,) = [f for f in await findings(store) if f.finding.kind is FindingKind.INTEGRITY_FAILURE]
    return f


def test_bad_signature_is_a_finding_and_moves_nothing(tmp_path: Path) -> None:
    async def body() -> None:
        async with setup(tmp_path) as (h, store):
            await catch_up(h, store, start="tip")
            await h.admin("append", {"v1": 20})
            await h.admin("faults", {"bad_signature": True})
            for _ in range(2):
                got = await catch_up(h, store)
                assert got.failure is not None
                assert got.failure.type is IntegrityType.BAD_CHECKPOINT_SIGNATURE
                assert (got.entries, got.cursor) == (0, 600)
            f = await only_integrity(store)
            assert f.evidence is not None
            assert "checkpoint" in f.evidence
            assert f.evidence["check"] == "checkpoint-signature"
            await h.admin("faults", {"bad_signature": False})
            got = await catch_up(h, store)
            assert (got.entries, got.cursor, got.failure) == (20, 620, None)

    run(body)


def test_tampered_entry_is_named_and_entries_before_it_kept(tmp_path: Path) -> None:
    async def body() -> None:
        async with setup(tmp_path) as (h, store):
            await catch_up(h, store, start="tip")
            await h.admin("append", {"v1": 50})
            await h.admin("faults", {"tamper": [615]})
            got = await catch_up(h, store, chunk=32)
            assert got.failure is not None
            assert got.failure.type is IntegrityType.ENTRY_NOT_IN_TREE
            assert (got.entries, got.cursor) == (15, 615)
            f = await only_integrity(store)
            assert f.finding.index == 615  # global, though evidence indexes are tree-local
            assert f.evidence is not None
            assert f.evidence["index"] == 315
            served = (await h.v1.entries([615]))[615].body
            assert f.evidence["leaf_hash"] == leaf_hash(served).hex()
            await h.admin("faults", {"tamper": []})
            got = await catch_up(h, store, chunk=32)
            assert (got.entries, got.cursor, got.failure) == (35, 650, None)

    run(body)


def test_shrink_fork_and_withheld_entries(tmp_path: Path) -> None:
    async def body() -> None:
        async with setup(tmp_path) as (h, store):
            await catch_up(h, store, start="tip")
            await h.admin("append", {"v1": 20})
            await h.admin("faults", {"shrink_by": 30})
            got = await catch_up(h, store)
            assert got.failure is not None
            assert got.failure.type is IntegrityType.TREE_SHRUNK
            assert got.cursor == 600
            await h.admin("faults", {"shrink_by": 0, "fork_at": 590})
            got = await catch_up(h, store)
            assert got.failure is not None
            assert got.failure.type is IntegrityType.CONSISTENCY_FAILURE
            assert got.cursor == 600
            await h.admin("faults", {"fork_at": None, "omit_always": [610]})
            got = await catch_up(h, store)
            assert got.failure is not None
            assert got.failure.type is IntegrityType.MISSING_ENTRIES
            # the entries before the withheld one are proven (by the inclusion proof of the
            # last of them) and kept; nothing from it on
            assert (got.entries, got.cursor) == (10, 610)
            kinds = sorted(
                f.finding.type or "" for f in await findings(store) if f.finding.type is not None
            )
            assert kinds == ["consistency_failure", "missing_entries", "tree_shrunk"]
            await h.admin("faults", {"omit_always": []})
            got = await catch_up(h, store)
            assert (got.entries, got.cursor, got.failure) == (10, 620, None)

    run(body)


def test_backfill_across_trees_is_proven_and_resumable(tmp_path: Path) -> None:
    async def body() -> None:
        async with setup(tmp_path) as (h, store):
            await catch_up(h, store, start="tip")
            span = (270, 340)
            await h.admin("faults", {"tamper": [320]})
            got = await catch_up(h, store, backfill=span, chunk=16)
            assert got.failure is not None
            assert (got.entries, got.cursor) == (50, 320)
            bf = await store.backfill_state(LOG, *span)
            assert bf is not None
            assert (bf.cursor, bf.compact_range.size) == (320, 20)  # the new tree, from 300
            await h.admin("faults", {"tamper": []})
            got = await catch_up(h, store, backfill=span, chunk=16)
            assert (got.entries, got.cursor, got.failure) == (20, 340, None)
            bf = await store.backfill_state(LOG, *span)
            assert bf is not None
            assert bf.done
            assert await cursor(store) == 600  # the log's own cursor is not the backfill's
            assert (await reads.counts(store))["index_all"] == 70

    run(body)
