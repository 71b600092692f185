"""monitor.daemon.catchup over Rekor v2: one verified catch-up pass of a Rekor v2 log into a
real SQLite store, against the simulator over loopback: planted entries give exactly their
findings, once; every lie stops the pass with one integrity finding and no entry beyond what
was proven."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from monitor.core.findings import FindingKind, IntegrityType, Severity
from monitor.daemon import PassContext, PassResult, RekorV2Source, Start
from monitor.daemon import catch_up as one_pass
from monitor.logclient.budget import ByteBudget
from monitor.logclient.owed import Owed
from monitor.logclient.v2 import RekorV2Client
from monitor.rules.engine import RuleEngine
from monitor.rules.spec import RuleSpec, Selector
from monitor.sim.tree import MerkleStore
from monitor.storage import FindingQuery, StoredFinding
from monitor.storage.store import Store
from monitor.tlog.checkpoint import SignedCheckpoint
from monitor.tlog.merkle import leaf_hash
from monitor.tlog.tiles import split_tile
from tests import storage_reads as reads
from tests.proof_support import signed
from tests.simlog import Harness, harness, run

LOG = "v2-sim"


def rule(
    name: str, match: dict[str, Any], expect: dict[str, Any] | None = None, sev: str = "high"
) -> RuleSpec:
    return RuleSpec(
        name,
        Selector.parse(match),
        Selector.parse(expect) if expect is not None else None,
        Severity.parse(sev),
    )


RULES = RuleEngine.compile(
    [
        rule("mallory", {"san": "mallory@evil.example"}),
        rule(
            "acme-ref",
            {"extensions": {"source-repository-ref": "refs/heads/x"}},
            {"issuer": "https://nobody.example"},
        ),
        rule("artifact", {"digest": "sha256:" + "cd" * 32}, sev="medium"),
    ]
)


@asynccontextmanager
async def setup(tmp_path: Path, entries: int = 600) -> AsyncIterator[tuple[Harness, Store]]:
    async with harness(tmp_path, entries=entries) as h:
        store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}")
        try:
            yield h, store
        finally:
            await store.close()


async def catch_up(
    h: Harness, store: Store, start: Start = "resume", chunk: int = 1024
) -> PassResult:
    cas = h.trust.certificate_authorities
    ctx = PassContext(LOG, store, RULES, cas)
    return await one_pass(RekorV2Source(h.v2), ctx, start=start, chunk=chunk)


async def findings(store: Store) -> list[StoredFinding]:
    page = await store.findings(FindingQuery(log=LOG, limit=1000))
    return sorted(page.items, key=lambda f: (f.finding.index or -1, f.finding.kind))


async def cursor(store: Store) -> int:
    state = await store.log_state(LOG)
    assert state is not None
    assert state.compact_range.size == state.cursor
    return state.cursor


def test_planted_entries_give_their_findings_once(tmp_path: Path) -> None:
    async def body() -> None:
        async with setup(tmp_path) as (h, store):
            first = await catch_up(h, store, start=590)
            assert (first.entries, first.findings, first.cursor) == (10, 0, 600)
            assert first.failure is None
            for plan in (
                {"index": 601, "identity": {"email": "mallory@evil.example"}},
                {
                    "index": 602,
                    "identity": {"github": {"owner": "acme", "repo": "app", "ref": "refs/heads/x"}},
                },
                {"index": 604, "digest": "cd" * 32},
            ):
                await h.admin("plant", plan)
            await h.admin("append", {"v2": 300})

            got = await catch_up(h, store, chunk=100)  # several chunks, one partial bundle
            assert (got.entries, got.findings, got.cursor) == (300, 3, 900)
            assert got.failure is None
            stored = await findings(store)
            assert [(f.finding.index, f.finding.kind, f.finding.rule) for f in stored] == [
                (601, FindingKind.WATCHED_USE, "mallory"),
                (602, FindingKind.UNEXPECTED_SIGNER, "acme-ref"),
                (604, FindingKind.WATCHED_USE, "artifact"),
            ]
            counts = await reads.counts(store)
            assert counts["entries"] == 3  # the matched records, nothing else
            assert await cursor(store) == 900
            state = await store.log_state(LOG)
            assert state is not None
            assert state.verified_size == 900
            assert state.verified_root == (await h.v2.checkpoint()).root_hash

            again = await catch_up(h, store)
            assert (again.entries, again.findings, again.cursor) == (0, 0, 900)
            assert await reads.counts(store) == counts
            assert len(await findings(store)) == 3

    run(body)


def test_tip_processes_only_what_comes_after(tmp_path: Path) -> None:
    async def body() -> None:
        async with setup(tmp_path) as (h, store):
            await h.admin("plant", {"index": 605, "identity": {"email": "mallory@evil.example"}})
            await h.admin("append", {"v2": 10})
            tip = await catch_up(h, store, start="tip")
            assert (tip.entries, tip.findings, tip.cursor) == (0, 0, 610)
            assert await cursor(store) == 610

            await h.admin("plant", {"index": 615, "identity": {"email": "mallory@evil.example"}})
            await h.admin("append", {"v2": 10})
            got = await catch_up(h, store, start="tip")  # the stored state wins: resumes
            assert (got.entries, got.findings, got.cursor) == (10, 1, 620)
            assert [f.finding.index for f in await findings(store)] == [615]

    run(body)


def test_resume_without_state_starts_at_the_tip(tmp_path: Path) -> None:
    async def body() -> None:
        async with setup(tmp_path) as (h, store):
            got = await catch_up(h, store)
            assert (got.entries, got.cursor) == (0, 600)
            assert await cursor(store) == 600

    run(body)


def test_tampered_entry_stops_the_pass_at_it(tmp_path: Path) -> None:
    async def body() -> None:
        async with setup(tmp_path) as (h, store):
            await catch_up(h, store, start="tip")
            await h.admin("append", {"v2": 50})
            await h.admin("faults", {"tamper": [610]})
            for attempt in range(2):
                got = await catch_up(h, store)
                assert got.failure is not None
                assert got.failure.type is IntegrityType.ENTRY_NOT_IN_TREE
                # the proven entries before the tampered one are kept, nothing from it on
                assert (got.entries, got.cursor) == (10 if attempt == 0 else 0, 610)
                assert got.findings == (1 if attempt == 0 else 0)
                assert await cursor(store) == 610
            (stored,) = await findings(store)
            f = stored.finding
            assert (f.kind, f.type, f.severity, f.index) == (
                FindingKind.INTEGRITY_FAILURE,
                "entry_not_in_tree",
                Severity.CRITICAL,
                610,
            )
            assert stored.evidence is not None
            assert stored.evidence["index"] == 610

            # the checkpoint of 650 is stored: a smaller one is a lie, even above the cursor
            await h.admin("faults", {"tamper": [], "shrink_by": 10})
            got = await catch_up(h, store)
            assert got.failure is not None
            assert got.failure.type is IntegrityType.TREE_SHRUNK
            assert (got.entries, got.findings, got.cursor) == (0, 1, 610)

            await h.admin("faults", {"shrink_by": 0})  # the log mends: the pass moves on
            got = await catch_up(h, store)
            assert (got.entries, got.cursor, got.failure) == (40, 650, None)

    run(body)


def test_fork_after_growth_is_a_consistency_failure(tmp_path: Path) -> None:
    async def body() -> None:
        async with setup(tmp_path) as (h, store):
            await catch_up(h, store, start="tip")
            await h.admin("append", {"v2": 50})
            await h.admin("faults", {"fork_at": 10})
            for attempt in range(2):
                got = await catch_up(h, store)
                assert got.failure is not None
                assert got.failure.type is IntegrityType.CONSISTENCY_FAILURE
                assert (got.entries, got.findings) == (0, 1 if attempt == 0 else 0)
                assert await cursor(store) == 600
            (stored,) = await findings(store)
            assert stored.finding.type == "consistency_failure"
            assert stored.finding.severity is Severity.CRITICAL
            assert stored.evidence is not None
            assert stored.evidence["old"]["size"] == 600

    run(body)


class HandBuiltLog:
    """A Rekor v2 log held in memory (the client's read API over a ``MerkleStore``)."""

    def __init__(self, bodies: list[bytes]) -> None:
        self.bodies = bodies
        self.store = MerkleStore(leaf_hash(b) for b in bodies)
        self.log = SimpleNamespace(base_url="https://log.example/v2/test")
        self.budget = ByteBudget(1 << 20)
        self.owed = Owed()
        self.missing_after = 600.0

    async def checkpoint(self) -> SignedCheckpoint:
        return signed(self.store)

    @staticmethod
    def bundle_cap() -> int:
        return 1 << 16

    async def entry_bundle(self, index: int, width: int = 256) -> list[bytes]:
        return self.bodies[index * 256 : index * 256 + width]

    async def tile(self, level: int, index: int, width: int = 256) -> list[bytes]:
        return split_tile(self.store.tile(level, index, width), width)


def test_malformed_entries_are_stored_and_the_log_moves_on(tmp_path: Path) -> None:
    bodies = [
        b"not json",
        b'{"kind": "cose", "apiVersion": "9.9.9", "spec": {}}',  # unknown: no finding
        b'{"kind": "hashedrekord"}',
        b"\xff\xfe",
        b'{"kind": "cose", "apiVersion": "9.9.9", "spec": {}}',
    ]
    log = HandBuiltLog(bodies)

    async def body() -> None:
        store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}")
        try:
            client = cast(RekorV2Client, log)
            for attempt in range(2):
                got = await one_pass(
                    RekorV2Source(client), PassContext(LOG, store, RULES, []), start=0, chunk=2
                )
                assert (got.entries, got.cursor, got.failure) == (
                    5 if attempt == 0 else 0,
                    5,
                    None,
                )
                assert got.findings == (3 if attempt == 0 else 0)
            stored = await findings(store)
            assert [(f.finding.kind, f.finding.index) for f in stored] == [
                (FindingKind.MALFORMED_ENTRY, 0),
                (FindingKind.MALFORMED_ENTRY, 2),
                (FindingKind.MALFORMED_ENTRY, 3),
            ]
            counts = await reads.counts(store)
            assert (counts["malformed_entries"], counts["entries"]) == (3, 0)
        finally:
            await store.close()

    run(body)


def test_bad_checkpoint_signature_is_a_finding_with_the_served_note(tmp_path: Path) -> None:
    async def body() -> None:
        async with setup(tmp_path) as (h, store):
            await catch_up(h, store, start="tip")
            await h.admin("append", {"v2": 30})
            await h.admin("faults", {"bad_signature": True})
            for _ in range(2):
                got = await catch_up(h, store)
                assert got.failure is not None
                assert got.failure.type is IntegrityType.BAD_CHECKPOINT_SIGNATURE
                assert (got.entries, got.cursor) == (0, 600)
            (stored,) = await findings(store)
            assert stored.finding.type == "bad_checkpoint_signature"
            assert stored.evidence is not None
            served = str(stored.evidence["checkpoint"])
            assert "\n630\n" in served  # the note as served, kept as evidence
            await h.admin("faults", {"bad_signature": False})
            got = await catch_up(h, store)
            assert (got.entries, got.cursor, got.failure) == (30, 630, None)

    run(body)


def test_a_batch_failing_after_the_pass_moved_on_fails_the_pass_and_keeps_none_of_it(
    tmp_path: Path,
) -> None:
    """A batch's last rows and its COMMIT go on while the pass parses the next chunk: a
    failure there still stops the pass, and that batch leaves nothing behind."""

    class Crash(Exception):
        pass

    async def body() -> None:
        async with setup(tmp_path) as (h, store):
            await catch_up(h, store, start=590)
            await h.admin("plant", {"index": 650, "identity": {"email": "mallory@evil.example"}})
            await h.admin("plant", {"index": 750, "digest": "cd" * 32})
            await h.admin("append", {"v2": 300})
            seen: list[str] = []

            def crash(step: str) -> None:
                seen.append(step)
                if step == "identities" and seen.count(step) == 2:  # the second batch's
                    raise Crash(step)

            store.after_step = crash
            with pytest.raises(Crash):
                await catch_up(h, store, chunk=100)
            store.after_step = None
            assert await cursor(store) == 700  # the first batch, not the failed one
            assert [f.finding.index for f in await findings(store)] == [650]

            got = await catch_up(h, store, chunk=100)
            assert (got.cursor, got.findings) == (900, 1)
            assert [f.finding.index for f in await findings(store)] == [650, 750]

    run(body)
