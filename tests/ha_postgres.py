"""For the high-availability tests: a PostgreSQL server of their own, and an audit of every
committed write as the database saw it.

- ``PrivatePostgres``: initdb into a temporary directory, trust auth, 127.0.0.1 on a free port;
  restarting it disturbs no other test. Its binaries missing is a failure, never a skip.
- ``AUDIT``: deferred constraint triggers on ``logs`` (update) and ``entries`` (insert) that
  run at COMMIT and record the writer's ``application_name`` (which holds its pid), the
  time, and the log's lease row as that transaction sees it: a batch committed by a process
  that does not hold the lease is there for the tests to find.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from monitor.storage.store import Store

PG_ROOT = Path("/usr/lib/postgresql")


# ----------------------------------------------------------------------------- the server


def pg_bin_dir() -> Path:
    """The newest installed server's binaries (a failure, not a skip, when there are none:
    these tests need a server they may restart)."""
    found = sorted(
        (p for p in PG_ROOT.glob("*/bin") if (p / "initdb").exists() and (p / "pg_ctl").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not found:
        pytest.fail(
            f"no PostgreSQL server binaries (initdb, pg_ctl) under {PG_ROOT}/<version>/bin: "
            "the HA tests run a private server that they restart",
            pytrace=False,
        )
    return found[-1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class PrivatePostgres:
    """A server for one test module. Run as root (as in the CI container), its commands run
    as ``postgres``: the server refuses root."""

    def __init__(self) -> None:
        self.bin = pg_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="tlog-ha-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, tool: str, *args: str, timeout: float = 60.0) -> None:
        argv = [str(self.bin / tool), *args]
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            tail = self.log.read_text()[-3000:] if self.log.exists() else ""
            raise AssertionError(f"{tool} {' '.join(args)} failed:\n{done.stderr}\n{tail}")

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        # a scratch server: durability is not what is tested, and restarts stay quick
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
            "max_connections": "200",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        with (self.data / "postgresql.conf").open("a") as f:
            f.writelines(f"{k} = {v}\n" for k, v in settings.items())

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def restart(self) -> None:
        """Fast: open sessions are ended, what they had not committed rolled back."""
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", "fast", "-w", "restart"
        )

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    async def create_database(self, name: str) -> str:
        """A database at the schema's head, with the audit triggers installed."""
        admin = create_async_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as conn:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            await admin.dispose()
        url = self.url(name)
        await (await Store.open(url)).close()
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                for statement in AUDIT:
                    await conn.execute(text(statement))
        finally:
            await engine.dispose()
        return url


# Deferred: they run at COMMIT, so ``at`` is when the write became visible (a process stopped
# between its UPDATE and its COMMIT is dated by its COMMIT), and the lease row read is the one
# the batch's fencing check locked (FOR SHARE) if it did.
AUDIT = (
    """CREATE TABLE ha_audit (
        id bigserial PRIMARY KEY,
        tbl text NOT NULL,
        log text NOT NULL,
        idx bigint,
        cursor_before bigint,
        cursor_after bigint,
        app text NOT NULL,
        at timestamptz NOT NULL,
        lease_holder text,
        lease_epoch bigint
    )""",
    """CREATE FUNCTION ha_audit_log() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO ha_audit (tbl, log, cursor_before, cursor_after, app, at, lease_holder,
                              lease_epoch)
        SELECT 'logs', NEW.name, OLD.cursor, NEW.cursor, current_setting('application_name'),
               clock_timestamp(), l.holder, l.epoch
        FROM (SELECT 1) AS one LEFT JOIN log_leases l ON l.log = NEW.name;
        RETURN NULL;
    END $$""",
    """CREATE FUNCTION ha_audit_entry() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO ha_audit (tbl, log, idx, app, at, lease_holder, lease_epoch)
        SELECT 'entries', NEW.log, NEW.idx, current_setting('application_name'),
               clock_timestamp(), l.holder, l.epoch
        FROM (SELECT 1) AS one LEFT JOIN log_leases l ON l.log = NEW.log;
        RETURN NULL;
    END $$""",
    """CREATE CONSTRAINT TRIGGER ha_audit_logs AFTER UPDATE ON logs
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ha_audit_log()""",
    """CREATE CONSTRAINT TRIGGER ha_audit_entries AFTER INSERT ON entries
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ha_audit_entry()""",
)


def app_pid(application_name: str) -> int | None:
    """The pid in ``tlog-monitor <pid> <since> <replica_id>``."""
    parts = application_name.split()
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


def holder_pid(holder: str | None) -> int | None:
    """The pid in ``<replica_id>:<pid>:<since>``."""
    parts = (holder or "").split(":")
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


class Db:
    """The test's own connection to the replicas' database; it outlives a server restart
    (``retry``: how long to keep trying while the server is down)."""

    def __init__(self, url: str) -> None:
        self.engine: AsyncEngine = create_async_engine(url, pool_pre_ping=True)

    async def rows(self, sql: str, retry: float = 30.0, **params: Any) -> list[Any]:
        deadline = time.monotonic() + retry
        while True:
            try:
                async with self.engine.connect() as conn:
                    return list((await conn.execute(text(sql), params)).all())
            except (DBAPIError, OSError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)

    async def leases(self) -> dict[str, Any]:
        """Each log's lease row, with ``live`` (not expired by the server's clock)."""
        rows = await self.rows(
            "SELECT log, holder, replica, epoch, expires_at > now() AS live FROM log_leases"
        )
        return {r.log: r for r in rows}

    async def cursors(self) -> dict[str, int]:
        return {r.name: int(r.cursor) for r in await self.rows("SELECT name, cursor FROM logs")}

    async def audit(self, after: float = 0.0) -> list[Any]:
        return await self.rows(
            "SELECT tbl, log, idx, cursor_before, cursor_after, app,"
            " extract(epoch FROM at)::float8 AS at, lease_holder, lease_epoch"
            " FROM ha_audit WHERE at > to_timestamp(:after) ORDER BY id",
            after=after,
        )

    async def close(self) -> None:
        await self.engine.dispose()
