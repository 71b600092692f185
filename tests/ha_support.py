"""For the high-availability tests: a PostgreSQL server of their own, replicas of the daemon in
child processes, and an audit of every committed write as the database saw it.

- ``PrivatePostgres``: initdb into a temporary directory, trust auth, 127.0.0.1 on a free port;
  restarting it disturbs no other test. Its binaries missing is a failure, never a skip.
- ``Replica``: ``python -m tests.daemon_process`` with a config of its own (its ``ha:`` section
  names it); its JSON log lines are kept (the API's URL is read from "api listening").
- ``AUDIT``: deferred constraint triggers on ``logs`` (update) and ``entries`` (insert) that
  run at COMMIT and record the writer's ``application_name`` (which holds its pid), the
  time, and the log's lease row as that transaction sees it: a batch committed by a process
  that does not hold the lease is there for the tests to find.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from monitor.storage.store import Store
from tests.api_support import READ_TOKEN, TOKENS
from tests.daemon_support import ARTIFACT, MALLORY, SINKS, write_config
from tests.simlog import Harness

ROOT = Path(__file__).resolve().parent.parent
PG_ROOT = Path("/usr/lib/postgresql")
AUTH = {"Authorization": f"Bearer {READ_TOKEN}"}
# what a replica's children may need longer than its HTTP policy's defaults allow
HTTP_TUNING = {"backoff_base_seconds": 0.05, "backoff_cap_seconds": 0.5, "timeout_seconds": 2.0}


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


# ----------------------------------------------------------------------------- replicas


def replica_config(
    path: Path,
    h: Harness,
    trust_dir: Path,
    url: str,
    *,
    replica_id: str,
    hook: str,
    lease_ttl: str = "2s",
    v1: dict[str, Any] | None = None,
    v2: dict[str, Any] | None = None,
) -> Path:
    """A replica's config: both logs from index 0 with index_all, the webhook at ``hook``."""
    logs = {"start": 0, "index_all": True, "batch_size": 100, "poll_interval": "1s"}
    # findings go out within a second, none held back by the rate limit
    sink = {
        **SINKS[0],
        "url": hook,
        "timeout": "2s",
        "group_window": "1s",
        "rate_limit_per_minute": 6000,
    }
    write_config(
        path,
        h.sim,
        trust_dir,
        url,
        v1={**logs, **(v1 or {})},
        v2={**logs, **(v2 or {})},
        sinks=[sink],
        server={"tokens": TOKENS},
    )
    doc = yaml.safe_load(path.read_text())
    doc["ha"] = {"replica_id": replica_id, "lease_ttl": lease_ttl}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@dataclass
class Replica:
    """One daemon process (a replica restarted in its place is another ``Replica``)."""

    replica_id: str
    config: Path
    http: dict[str, Any] = field(default_factory=lambda: dict(HTTP_TUNING))
    proc: asyncio.subprocess.Process | None = None
    lines: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    url: str | None = None
    started_at: float = 0.0
    _listening: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.daemon_process",
            str(self.config),
            "--retry-base",
            "0.2",
            "--http",
            json.dumps(self.http),
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            limit=1 << 22,
        )
        self.started_at = time.time()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            try:
                doc = json.loads(raw)
            except ValueError:
                doc = {"message": raw.decode(errors="replace").rstrip(), "level": "raw"}
            self.lines.append((time.time(), doc))
            if doc.get("message") == "api listening":
                self.url = doc["url"]
                self._listening.set()

    async def base(self, timeout: float = 30.0) -> str:
        """The API's URL once it listens."""
        await asyncio.wait_for(self._listening.wait(), timeout)
        assert self.url is not None
        return self.url

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def kill(self) -> None:
        if self.alive:
            self.signal(signal.SIGKILL)
        await self._finish()

    async def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM; the exit code (a replica that will not stop is killed: -9)."""
        if self.alive:
            self.signal(signal.SIGCONT)  # a stopped process would never see SIGTERM
            self.signal(signal.SIGTERM)
            assert self.proc is not None
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                self.signal(signal.SIGKILL)
        await self._finish()
        assert self.proc is not None
        assert self.proc.returncode is not None
        return self.proc.returncode

    async def _finish(self) -> None:
        if self.proc is not None:
            await self.proc.wait()
        if self._reader is not None:
            await self._reader

    def messages(self, message: str) -> list[dict[str, Any]]:
        return [doc for _, doc in self.lines if doc.get("message") == message]

    def tail(self, n: int = 30) -> str:
        return "\n".join(json.dumps(doc) for _, doc in self.lines[-n:])


async def api_get(
    session: aiohttp.ClientSession, replica: Replica, path: str, timeout: float = 2.0
) -> tuple[int, Any]:
    """(status, body: JSON or text); (0, error) when the replica does not answer."""
    try:
        base = await replica.base()
        async with session.get(
            f"{base}{path}", headers=AUTH, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as r:
            body = await r.text()
            ctype = r.headers.get("Content-Type", "")
            return r.status, json.loads(body) if "json" in ctype else body
    except (aiohttp.ClientError, TimeoutError) as e:
        return 0, repr(e)


def samples(exposition: str, name: str) -> dict[str, float]:
    """The values of metric ``name`` (a sample name: counters end in _total) by ``log``."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            if s.name == name:
                out[s.labels.get("log", "")] = s.value
    return out


# ----------------------------------------------------------------------------- the logs


@dataclass(frozen=True)
class Plants:
    """Planted entries by index (both logs share them): the rule each one matches."""

    rules: dict[int, str]

    def below(self, size: int) -> dict[int, str]:
        return {i: r for i, r in self.rules.items() if i < size}


async def plant_every(h: Harness, start: int, end: int, step: int) -> Plants:
    """A planted entry every ``step`` indexes of [start, end): mostly MALLORY, every fourth an
    ARTIFACT digest."""
    rules = {}
    for n, index in enumerate(range(start, end, step)):
        if n % 4 == 3:
            await h.admin("plant", {"index": index, "digest": ARTIFACT})
            rules[index] = "artifact"
        else:
            await h.admin("plant", {"index": index, "identity": MALLORY})
            rules[index] = "mallory"
    return Plants(rules)


async def sim_sizes(h: Harness) -> dict[str, int]:
    state = await h.admin("state")
    return {"v1": int(state["v1"]["size"]), "v2": int(state["v2"][0]["size"])}


@asynccontextmanager
async def growing(h: Harness, per_step: int = 10, every: float = 0.25) -> AsyncIterator[None]:
    """Both logs grow by ``per_step`` entries every ``every`` seconds until the block ends."""

    async def grow() -> None:
        while True:
            await h.admin("append", {"v1": per_step, "v2": per_step})
            await asyncio.sleep(every)

    task = asyncio.create_task(grow())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass
class Fleet:
    """The replicas r1, r2, ... on one database: ``current`` by replica id, ``every`` process
    ever started (their log lines stay readable after they end)."""

    configs: dict[str, Path]
    http: dict[str, Any] = field(default_factory=lambda: dict(HTTP_TUNING))
    current: dict[str, Replica] = field(default_factory=dict)
    every: list[Replica] = field(default_factory=list)

    async def start(self, replica_id: str) -> Replica:
        r = Replica(replica_id, self.configs[replica_id], dict(self.http))
        await r.start()
        self.current[replica_id] = r
        self.every.append(r)
        return r

    def live(self) -> list[Replica]:
        return [r for r in self.current.values() if r.alive]

    def by_pid(self, pid: int | None) -> Replica | None:
        return next((r for r in self.every if r.proc is not None and r.pid == pid), None)

    async def terminate_all(self) -> dict[str, int]:
        """SIGTERM to every current replica at once; their exit codes (one that died on its
        own has its own code: never 0 for the daemon, which runs until told to stop)."""
        now = list(self.current.values())
        codes = await asyncio.gather(*(r.terminate() for r in now))
        return {f"{r.replica_id}/{r.pid}": c for r, c in zip(now, codes, strict=True)}

    async def kill_all(self) -> None:
        for r in self.every:
            await r.kill()

    def tails(self, n: int = 15) -> str:
        return "\n".join(
            f"--- {r.replica_id} pid {r.pid} (exit code {r.proc and r.proc.returncode})\n"
            f"{r.tail(n)}"
            for r in self.current.values()
        )
