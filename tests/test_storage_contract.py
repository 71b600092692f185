"""The storage contract: the same suite against SQLite (a file) and PostgreSQL (a real
server; skipped locally when unreachable, but failing in CI)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import Select, text

from monitor.core.errors import MalformedInputError, QueryError, StorageError
from monitor.core.findings import FindingKind, FindingState, Severity
from monitor.entries.record import MalformedEntry, SigningRecord
from monitor.storage import (
    Batch,
    CheckpointData,
    FindingQuery,
    HistoryQuery,
    IndexRow,
    OutboxSpec,
    Store,
    StoredEntry,
)
from monitor.storage.models import INDEX_VALUE_CHARS
from monitor.storage.store import findings_select, history_select, index_all_select
from monitor.tlog.merkle import CompactRange, leaf_hash
from monitor.tlog.witness import Cosignature
from tests import storage_reads as reads
from tests.storage_support import (
    ENGINES,
    T0,
    PgDatabases,
    cert_record,
    finding_for,
    fp,
    key_record,
    pg_databases_fixture,
    require_postgres,
    run,
    sha,
    sqlite_url,
)

T = TypeVar("T")
LOG = "rekor.example"
TABLES = (
    "delivery_attempts, outbox, findings, entry_identities, entries, malformed_entries, "
    "index_all, checkpoints, logs"
)

pg_dbs = pytest.fixture(scope="session")(pg_databases_fixture)


@pytest.fixture(scope="session")
def pg_shared(pg_dbs: PgDatabases) -> str:
    """One migrated PostgreSQL database for the session; emptied before each test."""
    require_postgres()
    url = pg_dbs.create()

    async def migrate() -> None:
        await (await Store.open(url)).close()

    run(migrate)
    return url


@pytest.fixture(params=ENGINES)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    shared: str = request.getfixturevalue("pg_shared")

    async def truncate() -> None:
        s = await Store.open(shared, migrate=False)
        try:
            async with s.engine.begin() as conn:
                await conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
        finally:
            await s.close()

    run(truncate)
    yield shared


def with_store(url: str, fn: Callable[[Store], Awaitable[T]]) -> T:
    async def go() -> T:
        store = await Store.open(url)
        try:
            await store.register_log(LOG, "v1", "https://rekor.example")
            return await fn(store)
        finally:
            await store.close()

    return run(go)


def checkpoint(size: int, seed: str = "") -> CheckpointData:
    root = leaf_hash(f"{seed}{size}".encode())
    return CheckpointData("rekor.example - 1", size, root, f"rekor.example - 1\n{size}\n{seed}\n")


def full_batch(start: int = 0, n: int = 4, cursor: int | None = None) -> Batch:
    records = tuple(cert_record(LOG, i) for i in range(start, start + n))
    findings = tuple(finding_for(r) for r in records[:2])
    cr = CompactRange()
    cr.extend(leaf_hash(r.raw_body) for r in records)
    return Batch(
        log=LOG,
        cursor=cursor if cursor is not None else start + n + 1,
        checkpoint=checkpoint(start + n + 1),
        compact_range=cr.state() if start == 0 else None,
        records=records,
        findings=findings,
        evidence={findings[0].dedup_key: {"entry": records[0].index}},
        outbox=tuple(OutboxSpec(f.dedup_key, ("slack", "webhook")) for f in findings),
        malformed=(MalformedEntry(LOG, start + n, "not JSON", b"\xff\x00garbage"),),
        index_rows=tuple(IndexRow.from_record(r, 0) for r in records),
        at=T0,
    )


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


# ------------------------------------------------------------------------ history


def history_data() -> Batch:
    records: list[SigningRecord] = [
        cert_record(LOG, 1, sans=("alice@acme.com",), issuer="https://accounts.google.com"),
        cert_record(LOG, 2, subjects=(("ghcr.io/acme/app", "image-1"),)),
        cert_record(
            LOG,
            3,
            sans=("https://github.com/acme/lib/.github/workflows/ci.yml@refs/heads/main",),
            repo="https://github.com/acme/lib",
        ),
        cert_record(
            LOG,
            4,
            sans=(
                "https://github.com/acme/app/.github/workflows/a.yml@refs/heads/main",
                "https://github.com/acme/app/.github/workflows/b.yml@refs/heads/main",
            ),
            artifact="shared",
        ),
        key_record(LOG, 5, "leaked-key", time=1_760_000_005),
        cert_record(LOG, 6, sans=("bob@other.org",), issuer="https://accounts.google.com"),
        cert_record(LOG, 7, artifact="shared"),
    ]
    return Batch(LOG, 8, records=tuple(records), at=T0)


def keys(items: Any) -> list[int]:
    return [e.index for e in items]


def test_history_by_each_filter(url: str) -> None:
    acme_ci = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"

    async def body(s: Store) -> None:
        await s.register_log("other", "v2", "https://other.example")
        await s.store_batch(history_data())
        await s.store_batch(Batch("other", 2, records=(cert_record("other", 1),), at=T0))

        async def h(**kw: Any) -> list[int]:
            return keys((await s.history(HistoryQuery(**kw))).items)

        assert await h(san="alice@acme.com") == [1]
        assert await h(san=acme_ci) == [1, 2, 7]  # "other" 1, then rekor.example 2, 7
        assert await h(san="https://github.com/acme/*") == [1, 2, 3, 4, 7]
        assert await h(san="https://github.com/acme/app/*", log=LOG) == [2, 4, 7]
        assert await h(san="*", log=LOG) == [1, 2, 3, 4, 6, 7]
        assert await h(issuer="https://accounts.google.com") == [1, 6]
        assert await h(ext=("source-repository-uri", "https://github.com/acme/lib")) == [3]
        assert await h(ext=("source-repository-ref", "refs/heads/main"), log="other") == [1]
        assert await h(fingerprint=fp("leaked-key")) == [5]
        assert await h(fingerprint=fp(f"cert-{LOG}-3")) == [3]  # certificate fingerprint
        assert await h(fingerprint=fp(f"key-{LOG}-4")) == [4]  # the certificate's key
        assert await h(digest=str(sha("shared"))) == [4, 7]
        assert await h(digest=sha("shared").value.upper()) == [4, 7]  # bare hex
        assert await h(digest=str(sha("image-1"))) == [2]  # a subject's digest
        assert await h(subject="ghcr.io/acme/app") == [2]
        assert await h(log="other") == [1]
        assert await h(log=LOG, index_min=3, index_max=5) == [3, 4, 5]
        t = T0.fromtimestamp(1_760_000_003, T0.tzinfo)
        assert await h(since=t, until=t + timedelta(seconds=3)) == [3, 4, 5]
        assert await h(since=t, log=LOG, issuer="https://accounts.google.com") == [6]
        # several filters: ANDed
        assert await h(san="https://github.com/acme/*", digest=str(sha("shared"))) == [4, 7]
        assert await h(issuer="https://accounts.google.com", san="bob@other.org") == [6]
        assert await h(san="nobody@nowhere") == []

        e = await s.entry(LOG, 2)
        assert isinstance(e, StoredEntry)
        assert e.san == acme_ci
        assert e.issuer == "https://token.actions.githubusercontent.com"
        assert e.cert_fingerprint == fp(f"cert-{LOG}-2")
        assert e.record["subjects"][0]["name"] == "ghcr.io/acme/app"
        assert e.record["signers"][0]["sans"][0]["value"] == acme_ci
        assert e.raw_body == history_data().records[1].raw_body
        assert await s.entry(LOG, 99) is None

    with_store(url, body)


def test_history_paging_is_stable(url: str) -> None:
    async def body(s: Store) -> None:
        await s.register_log("b-log", "v1", "https://b.example")
        await s.store_batch(Batch(LOG, 20, records=tuple(cert_record(LOG, i) for i in range(20))))
        await s.store_batch(
            Batch("b-log", 5, records=tuple(cert_record("b-log", i) for i in range(5)))
        )
        for q in (
            HistoryQuery(limit=3),
            HistoryQuery(limit=3, issuer="https://token.actions.githubusercontent.com"),
            HistoryQuery(limit=4, san="https://github.com/*"),
            HistoryQuery(limit=2, index_min=2, index_max=17),
        ):
            full = [(e.log, e.index) for e in (await s.history(replace(q, limit=1000))).items]
            seen: list[tuple[str, int]] = []
            page = await s.history(q)
            grew = False
            while True:
                seen += [(e.log, e.index) for e in page.items]
                assert len(page.items) <= q.limit
                if page.next_cursor is None:
                    break
                if not grew:  # entries arriving between pages do not shift what follows
                    await s.store_batch(Batch(LOG, 31, records=(cert_record(LOG, 30),)))
                    grew = True
                page = await s.history(replace(q, cursor=page.next_cursor))
            expected = sorted(set(full) | {(LOG, 30)} if (LOG, 30) in seen else set(full))
            assert seen == expected
            assert len(seen) == len(set(seen))
        with pytest.raises(MalformedInputError, match="cursor"):
            await s.history(HistoryQuery(cursor="not a cursor"))
        with pytest.raises(MalformedInputError, match="page size"):
            await s.history(HistoryQuery(limit=0))

    with_store(url, body)


def test_hostile_values_are_stored_and_found(url: str) -> None:
    nul = "evil\x00@example.com"
    surrogate = "odd\ud800@example.com"
    long = "https://example.com/" + "x" * 5000

    async def body(s: Store) -> None:
        records = (
            cert_record(LOG, 1, sans=(nul,)),
            cert_record(LOG, 2, sans=(surrogate,)),
            cert_record(LOG, 3, sans=(long,), subjects=(("\x00name", "d"),)),
        )
        await s.store_batch(
            Batch(
                LOG,
                4,
                records=records,
                index_rows=tuple(IndexRow.from_record(r, 0) for r in records),
                malformed=(MalformedEntry(LOG, 9, "bad \x00 byte", b"\x00"),),
            )
        )
        assert keys((await s.history(HistoryQuery(san=nul))).items) == [1]
        assert keys((await s.history(HistoryQuery(san=surrogate))).items) == [2]
        assert keys((await s.history(HistoryQuery(san=long))).items) == [3]
        assert keys((await s.history(HistoryQuery(san=long[:300] + "*"))).items) == [3]
        assert keys((await s.history(HistoryQuery(san=long, all_entries=True))).items) == [3]
        assert keys((await s.history(HistoryQuery(san=nul, all_entries=True))).items) == [1]
        odd = HistoryQuery(san=surrogate, all_entries=True)
        assert keys((await s.history(odd)).items) == [2]
        e = await s.entry(LOG, 3)
        assert e is not None
        assert e.san == long  # display columns keep the whole value
        assert len(long) > INDEX_VALUE_CHARS
        m = await s.malformed(LOG, 9)
        assert m is not None
        assert m.raw_body == b"\x00"

    with_store(url, body)


def test_index_all_history_and_purge(url: str) -> None:
    async def body(s: Store) -> None:
        records = [cert_record(LOG, i, time=1_000 + i * 100) for i in range(10)]
        records.append(key_record(LOG, 10, "k", time=None))  # no integrated time: seen time
        rows = tuple(IndexRow.from_record(r, 5_000) for r in records)
        await s.store_batch(Batch(LOG, 11, index_rows=rows))
        page = await s.history(HistoryQuery(all_entries=True, fingerprint=fp("k")))
        assert keys(page.items) == [10]
        assert page.items[0].time == 5_000
        acme = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
        assert len((await s.history(HistoryQuery(all_entries=True, san=acme))).items) == 10
        q = HistoryQuery(all_entries=True, san="https://github.com/*", limit=4)
        assert keys((await s.history(q)).items) == [0, 1, 2, 3]
        digest = str(sha("artifact"))
        assert len((await s.history(HistoryQuery(all_entries=True, digest=digest))).items) == 10
        with pytest.raises(MalformedInputError):
            await s.history(HistoryQuery(all_entries=True, subject="x"))
        for whole_values_only in (
            HistoryQuery(digest=digest[:20] + "*"),
            HistoryQuery(fingerprint="a*"),
        ):
            with pytest.raises(MalformedInputError, match="whole value"):
                await s.history(replace(whole_values_only, all_entries=True))
        cutoff = T0.fromtimestamp(1_500, T0.tzinfo)
        assert await s.purge_index_all(cutoff) == 5  # times 1000..1400
        left = await s.history(HistoryQuery(all_entries=True, limit=100))
        assert keys(left.items) == [5, 6, 7, 8, 9, 10]
        assert await s.purge_index_all(cutoff) == 0

    with_store(url, body)


def test_each_log_gets_one_index_all_number(url: str) -> None:
    """Numbers are given once per log: a batch of a known log takes none (on PostgreSQL even
    a conflicting INSERT would use one up), a new log takes the next."""

    async def body(s: Store) -> None:
        await s.register_log("other", "v2", "https://other.example")
        for n in range(5):
            rows = (IndexRow(LOG, n, 100, "hashedrekord"),)
            await s.store_batch(Batch(LOG, n + 1, index_rows=rows))
        await s.store_batch(Batch("other", 1, index_rows=(IndexRow("other", 0, 100, "dsse"),)))
        async with s.engine.connect() as conn:
            sql = text("SELECT log, id FROM index_all_logs ORDER BY id")
            numbers = [tuple(r) for r in (await conn.execute(sql)).all()]
        assert numbers == [(LOG, 1), ("other", 2)]

    with_store(url, body)


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


# ---------------------------------------------------------------- every query indexed

SHAPES: dict[str, HistoryQuery] = {
    "all": HistoryQuery(),
    "log": HistoryQuery(log=LOG),
    "index range": HistoryQuery(log=LOG, index_min=10, index_max=20),
    "cursor": HistoryQuery(cursor="WyJyZWtvci5leGFtcGxlIiwgNV0"),
    "time range": HistoryQuery(since=T0, until=T0 + timedelta(hours=1)),
    "san exact": HistoryQuery(san="alice@acme.com"),
    "san prefix": HistoryQuery(san="https://github.com/acme/*"),
    "issuer": HistoryQuery(issuer="https://accounts.google.com"),
    "ext": HistoryQuery(ext=("source-repository-uri", "https://github.com/acme/app")),
    "fingerprint": HistoryQuery(fingerprint=fp("k")),
    "digest": HistoryQuery(digest=str(sha("x"))),
    "subject": HistoryQuery(subject="ghcr.io/acme/app"),
    "san + issuer": HistoryQuery(san="alice@acme.com", issuer="https://accounts.google.com"),
    "san + time": HistoryQuery(san="alice@acme.com", since=T0),
    "issuer + log + index": HistoryQuery(
        issuer="https://accounts.google.com", log=LOG, index_min=5, index_max=9
    ),
}
ALL_SHAPES: dict[str, HistoryQuery] = {
    "all: " + k: replace(q, all_entries=True) for k, q in SHAPES.items() if not (q.ext or q.subject)
}
FINDING_SHAPES: dict[str, FindingQuery] = {
    "findings: all": FindingQuery(),
    "findings: state": FindingQuery(states=(FindingState.OPEN,)),
    "findings: severity": FindingQuery(min_severity=Severity.HIGH),
    "findings: kind": FindingQuery(kinds=(FindingKind.WATCHED_USE,)),
    "findings: rule": FindingQuery(rule="r"),
    "findings: log": FindingQuery(log=LOG),
    "findings: time": FindingQuery(since=T0, until=T0 + timedelta(days=1)),
    "findings: cursor": FindingQuery(cursor="WzEwMF0"),
}
TABLE_NAMES = ("entries", "entry_identities", "index_all", "findings")


def _statement(q: HistoryQuery | FindingQuery, dialect: str) -> Select[Any]:
    if isinstance(q, FindingQuery):
        return findings_select(q, 101)
    if q.all_entries:
        return index_all_select(q, 101, chunked=dialect == "sqlite")
    return history_select(q, 101, chunked=dialect == "sqlite")


async def _plan(s: Store, q: HistoryQuery | FindingQuery) -> str:
    stmt = _statement(q, s.dialect)
    async with s.engine.connect() as conn:
        sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        if s.dialect == "postgresql":
            await conn.execute(text("SET enable_seqscan = off"))
            rows = (await conn.execute(text(f"EXPLAIN {sql}"))).all()
            return "\n".join(str(r[0]) for r in rows)
        rows = (await conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"))).all()
        return "\n".join(str(r[3]) for r in rows)


@pytest.mark.parametrize("shape", [*SHAPES, *ALL_SHAPES, *FINDING_SHAPES])
def test_every_query_shape_uses_an_index(url: str, shape: str) -> None:
    q = SHAPES.get(shape) or ALL_SHAPES.get(shape) or FINDING_SHAPES[shape]

    async def body(s: Store) -> None:
        await s.store_batch(history_data())
        plan = await _plan(s, q)
        if s.dialect == "postgresql":
            # with sequential scans priced out, a remaining one means no usable index
            assert "Seq Scan" not in plan, plan
            assert "Index" in plan, plan
        else:
            # an unfiltered page walks the primary key in order (findings: its rowid;
            # index_all: a WITHOUT ROWID table, i.e. its primary key); anything else
            # filtered must SEARCH an index, and never SCAN a table
            unfiltered = shape in ("all", "all: all", "findings: all")
            for line in plan.splitlines():
                m = re.match(r"SCAN (\w+)", line)
                if m and m.group(1) in TABLE_NAMES and not unfiltered:
                    assert "USING" in line, plan
            if not unfiltered:
                assert re.search(r"SEARCH \w+ USING", plan), plan

    with_store(url, body)
