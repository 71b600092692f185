"""One monitor per database, and every alert posted by one process only (SQLite and
PostgreSQL): the database lock refuses a second monitor and names the first; outbox claims let
only one process post a row, and a dead holder's claim expires; the readiness check's write
probe fails on a database that takes reads but refuses writes."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from monitor.core.errors import StorageError
from monitor.storage.batch import OutboxSpec
from monitor.storage.lock import DatabaseInUseError, Holder, _advisory_holder
from monitor.storage.store import Store
from tests.storage_support import (
    ENGINES,
    T0,
    PgDatabases,
    _admin,
    cert_record,
    finding_for,
    fresh_url,
    pg_databases_fixture,
    require_postgres,
    run,
)

pg_dbs = pytest.fixture(scope="session")(pg_databases_fixture)
EXE = Path(sys.executable).parent / "tlog-monitor"


@pytest.fixture(params=ENGINES)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_url(request.param, tmp_path, lambda: request.getfixturevalue("pg_dbs"))


def test_a_second_monitor_is_refused_and_told_who_holds_the_database(url: str) -> None:
    async def body() -> None:
        first = await Store.open(url, exclusive=True)
        try:
            with pytest.raises(DatabaseInUseError) as e:
                await Store.open(url, exclusive=True)
            message = str(e.value)
            me = first.holder
            assert f"host {me.host}, pid {me.pid}, since {me.since}" in message
            assert "one monitor per database" in message
            # more than one needs PostgreSQL and ha:, and the refusal says so
            assert "PostgreSQL" in message if url.startswith("sqlite") else "ha:" in message
            # readers need no lock
            reader = await Store.open(url, migrate=False)
            await reader.close()
        finally:
            await first.close()
        # released with the store: the next monitor takes it
        second = await Store.open(url, exclusive=True)
        await second.close()

    run(body)


def test_a_refusal_names_the_holder_of_this_database_not_of_a_neighbour(
    pg_dbs: PgDatabases,
) -> None:
    """Advisory locks are per database: a monitor of another database on the same server
    holds a lock of the same key, and a refusal names the holder of its own database."""
    require_postgres()
    ours, neighbours = pg_dbs.create(), pg_dbs.create()
    code = (
        "import asyncio, sys\n"
        "from monitor.storage.store import Store\n"
        "async def main():\n"
        f"    store = await Store.open({neighbours!r}, exclusive=True)\n"
        "    print('locked', flush=True)\n"
        "    sys.stdin.read()\n"
        "    await store.close()\n"
        "asyncio.run(main())\n"
    )
    # the neighbour takes its lock first, so a lookup across databases would find it first
    neighbour = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert neighbour.stdout is not None
        assert neighbour.stdout.readline() == "locked\n"

        async def body() -> None:
            # nobody holds ours: the lookup must not answer with the neighbour
            engine = create_async_engine(ours)
            try:
                async with engine.connect() as conn:
                    assert await _advisory_holder(conn) == "holder unknown"
            finally:
                await engine.dispose()
            first = await Store.open(ours, exclusive=True)
            try:
                with pytest.raises(DatabaseInUseError) as e:
                    await Store.open(ours, exclusive=True)
                me = first.holder
                assert f"host {me.host}, pid {me.pid}, since {me.since}" in str(e.value)
                assert f"pid {neighbour.pid}," not in str(e.value)
            finally:
                await first.close()

        run(body)
    finally:
        neighbour.communicate("", timeout=30)


def test_the_lock_dies_with_its_process(tmp_path: Path) -> None:
    """A holder killed without closing anything leaves no stale lock behind."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"
    code = (
        "import asyncio, os, sys\n"
        "from monitor.storage.store import Store\n"
        "async def main():\n"
        f"    await Store.open({url!r}, exclusive=True)\n"
        "    print('locked', flush=True)\n"
        "    os.kill(os.getpid(), 9)\n"
        "asyncio.run(main())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.stdout == "locked\n", proc.stderr
    assert proc.returncode == -9

    async def body() -> None:
        store = await Store.open(url, exclusive=True)
        await store.close()

    run(body)


def test_the_sqlite_files_are_private(tmp_path: Path) -> None:
    db = tmp_path / "new" / "dir" / "monitor.db"
    tmp_path.chmod(0o755)  # a directory the user made: left as it is

    async def body() -> None:
        store = await Store.open(f"sqlite+aiosqlite:///{db}", exclusive=True)
        await store.register_log("x", "v1", "https://x.example")
        await store.close()

    old = os.umask(0o022)
    try:
        run(body)
    finally:
        os.umask(old)
    for path in (db, db.with_name("monitor.db.lock")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for directory in (db.parent, db.parent.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755


def test_once_beside_a_running_daemon_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "monitor.db"
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(
        "logs:\n  - {name: rekor, api: v1, url: 'https://rekor.sigstore.dev'}\n"
        f"database:\n  url: sqlite+aiosqlite:///{db}\n"
    )

    async def body() -> None:
        holder = await Store.open(f"sqlite+aiosqlite:///{db}", exclusive=True)
        try:
            proc = await asyncio.create_subprocess_exec(
                EXE, "once", "--config", str(cfg),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            _, err = await proc.communicate()
            assert proc.returncode == 2, err
            text_err = err.decode()
            assert "is in use by another tlog-monitor" in text_err
            assert f"pid {holder.holder.pid}" in text_err
            assert "Traceback" not in text_err
        finally:
            await holder.close()

    run(body)


# --- outbox claims --------------------------------------------------------------------------


async def _rows(store: Store, n: int, at: datetime = T0) -> list[int]:
    findings = [finding_for(cert_record("claims.example", i)) for i in range(n)]
    await store.register_log("claims.example", "v1", "https://claims.example")
    await store.store_findings(
        findings, outbox=[OutboxSpec(f.dedup_key, ("soc",)) for f in findings], at=at
    )
    return [i.id for i in await store.pending_outbox("soc")]


def test_a_row_is_posted_by_its_claimant_only(url: str) -> None:
    async def body() -> None:
        store = await Store.open(url)
        try:
            ids = await _rows(store, 3)
            a, b = "host-a:1:t", "host-b:2:t"
            until = T0 + timedelta(minutes=1)
            assert await store.claim_outbox(ids[:2], a, now=T0, until=until)
            # b cannot have any of a's rows, nor a group that holds one of them
            assert not await store.claim_outbox(ids[1:], b, now=T0, until=until)
            assert await store.claim_outbox(ids[2:], b, now=T0, until=until)  # all or none
            assert await store.claim_outbox(ids[:2], a, now=T0, until=until)  # a's own again
            # the holder of the database's lock takes a dead process's claims at once
            assert await store.claim_outbox(ids[2:], a, now=T0, until=until, take_over=True)
            assert await store.claim_outbox(ids[2:], b, now=T0, until=until, take_over=True)
            pending = {i.id: i for i in await store.pending_outbox("soc")}
            assert pending[ids[0]].claimed_by_other(b, T0)
            assert not pending[ids[0]].claimed_by_other(a, T0)
            # a dies: its claim expires, and b may post the row
            later = until + timedelta(seconds=1)
            assert not pending[ids[0]].claimed_by_other(b, later)
            assert await store.claim_outbox(ids[:1], b, now=later, until=later + timedelta(1))
            # an outcome recorded ends the claim; a delivered row is never claimed again
            await store.mark_delivered(ids[0], at=later, duration=0.1)
            await store.record_attempt(ids[1], at=T0, error="HTTP 503", duration=0.1, retry_at=T0)
            row = {i.id: i for i in await store.pending_outbox("soc")}[ids[1]]
            assert (row.claimed_by, row.claimed_until) == (None, None)
            assert not await store.claim_outbox(ids[:1], a, now=later, until=later)
        finally:
            await store.close()

    run(body)


# --- the write probe ------------------------------------------------------------------------


def test_the_write_probe_fails_where_reads_still_work(tmp_path: Path, pg_dbs: object) -> None:
    """A database that refuses writes (here: made read-only, as a full disk makes it) still
    answers a read; the probe is what tells."""
    url = fresh_url("postgresql", tmp_path, lambda: pg_dbs)  # type: ignore[arg-type,return-value]
    name = url.rsplit("/", 1)[1]

    async def body() -> None:
        store = await Store.open(url)
        try:
            await store.probe_write("me")
            await _admin(
                f'ALTER DATABASE "{name}" SET default_transaction_read_only = true',
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{name}' AND pid <> pg_backend_pid()",
            )
            await asyncio.sleep(1.1)  # past the probe's once-a-second limit
            await store.ping()  # reads: fine
            with pytest.raises(StorageError, match="read-only"):
                await store.probe_write("me")
        finally:
            await store.close()
            await _admin(f'ALTER DATABASE "{name}" SET default_transaction_read_only = false')

    run(body)


def test_holder_names_are_short_and_unique() -> None:
    me = Holder.this_process()
    assert me.pid == os.getpid()
    assert me.name == f"{me.host}:{me.pid}:{me.since}"
    assert len(me.name) < 255


def test_two_processes_delivering_one_outbox_post_every_alert_once(url: str) -> None:
    """What the lock prevents for whole monitors, claims guarantee for delivery: two stores
    (two processes, two holders) draining one sink's outbox at once post each row once."""
    import aiohttp

    from monitor.alerts.deliver import SinkWorker
    from monitor.config.models import AlertSettings, SinkSettings
    from tests.alert_receivers import HOOK, Receiver, finding_keys

    secret = "whsec_" + "c2Vjb25kLWNvcHktdGVzdHMtc2lnbmluZy1rZXktMzI="

    async def body() -> None:
        receiver = Receiver(secret=secret)
        await receiver.start()
        stores = [await Store.open(url), await Store.open(url, migrate=False)]
        stores[1].holder = Holder("other-host", 4242, stores[0].holder.since)
        try:
            await _rows(stores[0], 40, datetime.now(UTC))
            sink = SinkSettings.model_validate(
                {"name": "soc", "type": "webhook", "url": receiver.url(HOOK), "secret": secret,
                 "group_window": "0s", "rate_limit_per_minute": 6000}
            )  # fmt: skip
            async with aiohttp.ClientSession() as session:
                workers = [
                    SinkWorker(sink, s, session, AlertSettings.model_validate({})) for s in stores
                ]
                for _ in range(200):
                    await asyncio.gather(*(w.step(group_wait=False) for w in workers))
                    if not await stores[0].pending_outbox("soc"):
                        break
            keys = finding_keys(receiver.requests)
            assert len(keys) == 40
            assert len(set(keys)) == 40  # none twice
        finally:
            for s in stores:
                await s.close()
            await receiver.stop()

    run(body)
