"""The storage contract, history: each filter, stable paging, hostile values, index_all rows
and their purge, and every query shape answered from an index (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Select, text

from monitor.core.errors import MalformedInputError
from monitor.core.findings import FindingKind, FindingState, Severity
from monitor.entries.record import MalformedEntry, SigningRecord
from monitor.storage import (
    Batch,
    FindingQuery,
    HistoryQuery,
    IndexRow,
    Store,
    StoredEntry,
)
from monitor.storage.models import INDEX_VALUE_CHARS
from monitor.storage.store import findings_select, history_statement
from tests.contract_support import LOG, contract_url, shared_pg_database, with_store
from tests.storage_support import (
    ENGINES,
    T0,
    cert_record,
    fp,
    key_record,
    pg_databases_fixture,
    sha,
)

pg_dbs = pytest.fixture(scope="session")(pg_databases_fixture)
pg_shared = pytest.fixture(scope="session")(shared_pg_database)
url = pytest.fixture(params=ENGINES)(contract_url)


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
    return history_statement(q, 101, dialect)


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
        batch = history_data()
        # index_all rows too: on PostgreSQL a query over no partition plans no index at all
        rows = tuple(IndexRow.from_record(r, 0) for r in batch.records)
        await s.store_batch(replace(batch, index_rows=rows))
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
