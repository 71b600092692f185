"""What the storage contract's tests share: the store under test on each engine (a SQLite
file, or one PostgreSQL database a module, emptied before each test), a store with the
log registered, and a batch with a bit of everything."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import text

from monitor.entries.record import MalformedEntry
from monitor.storage import Batch, CheckpointData, IndexRow, OutboxSpec, Store
from monitor.tlog.merkle import CompactRange, leaf_hash
from tests.storage_support import (
    T0,
    PgDatabases,
    cert_record,
    finding_for,
    require_postgres,
    run,
    sqlite_url,
)

T = TypeVar("T")
LOG = "rekor.example"
TABLES = (
    "delivery_attempts, outbox, findings, entry_identities, entries, malformed_entries, "
    "index_all, checkpoints, logs"
)


def shared_pg_database(pg_dbs: PgDatabases) -> str:
    """One migrated PostgreSQL database for the session of each test module that declares the
    fixture (``pg_shared``); ``contract_url`` empties it before each test."""
    require_postgres()
    url = pg_dbs.create()

    async def migrate() -> None:
        await (await Store.open(url)).close()

    run(migrate)
    return url


def contract_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store for each engine: a SQLite file, or the shared PostgreSQL database emptied."""
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
