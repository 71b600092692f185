"""One monitor per database: an exclusive lock held for the life of the process.

Two daemons on one database would each tail the logs and deliver every alert: doubled alerts
and racing cursors. So a process that writes (``run``, ``once``, ``backfill``) first takes the
database's lock, and a second one refuses to start, naming the holder (host, pid, since).

- SQLite: ``flock`` on a lock file beside the database (``<db>.lock``), which also holds the
  holder's description. The kernel releases it when the process dies, however it dies.
- PostgreSQL: a session-level advisory lock on a connection of its own, named after the
  holder through ``application_name`` so that a refusal can say who holds it. The server
  releases it when that connection ends. Replicas (``ha:``) take the same lock *shared*:
  they run beside each other (each log led by one of them, ``monitor.storage.leases``),
  and a single monitor, which takes it exclusively, refuses to start beside them and they
  beside it.

Read-only commands (``findings``, ``history``) take no lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.core.errors import StorageError

# pg_try_advisory_lock's key: a constant of this application ("tlogmon" in ASCII)
ADVISORY_KEY = int.from_bytes(b"tlogmon", "big")
_APP_PREFIX = "tlog-monitor "


class DatabaseInUseError(StorageError):
    """Another monitor process holds the database."""


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    since: str  # ISO 8601, UTC

    @classmethod
    def this_process(cls, host: str | None = None) -> Holder:
        """This process; ``host``: the name it goes by (a replica's id), default the host's."""
        return cls(
            host or socket.gethostname(),
            os.getpid(),
            datetime.now(UTC).isoformat(timespec="seconds"),
        )

    @property
    def name(self) -> str:
        """A short, unique name of the holder (also its outbox claims and write probe)."""
        return f"{self.host}:{self.pid}:{self.since}"

    def describe(self) -> str:
        return f"host {self.host}, pid {self.pid}, since {self.since}"

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "pid": self.pid, "since": self.since}

    def application_name(self) -> str:
        """``tlog-monitor <pid> <since> <host>``, how its PostgreSQL sessions name themselves
        (``pg_stat_activity``): PostgreSQL keeps 63 bytes of it, so the host, the longest
        part, goes last."""
        name = f"{_APP_PREFIX}{self.pid} {self.since} {self.host}"
        return name.encode()[:63].decode(errors="ignore")


class DatabaseLock:
    """Take with ``await DatabaseLock.acquire(engine, url)``; ``await lock.release()`` at the
    end (the process's death releases it too)."""

    def __init__(
        self, holder: Holder, file: int | None = None, conn: AsyncConnection | None = None
    ) -> None:
        self.holder = holder
        self._file = file
        self._conn = conn
        self._shared = False

    @classmethod
    async def acquire(
        cls, engine: AsyncEngine, url: URL, holder: Holder | None = None, *, shared: bool = False
    ) -> DatabaseLock:
        """The lock (``shared``: a replica's, beside other replicas), or
        ``DatabaseInUseError`` naming who holds it."""
        me = holder or Holder.this_process()
        if engine.dialect.name == "sqlite":
            if shared:
                raise StorageError("several replicas need PostgreSQL: SQLite is for one monitor")
            return cls(me, file=_lock_file(url, me))
        conn = await _advisory_lock(engine, me, shared)
        lock = cls(me, conn=conn)
        lock._shared = shared
        return lock

    async def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            os.close(self._file)
            self._file = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            unlock = "pg_advisory_unlock_shared" if self._shared else "pg_advisory_unlock"
            try:
                await conn.execute(text(f"SELECT {unlock}(:k)"), {"k": ADVISORY_KEY})
            finally:
                await conn.close()


def lock_path(url: URL) -> Path:
    return Path(f"{url.database}.lock")


def _lock_file(url: URL, me: Holder) -> int:
    path = lock_path(url)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise StorageError(f"cannot open the lock file {path}: {e.strerror or e}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = _read_holder(fd)
        os.close(fd)
        raise DatabaseInUseError(
            f"the database {url.database} is in use by another tlog-monitor ({other}; lock "
            f"file {path}): one monitor per database on SQLite; for more than one replica, use "
            "PostgreSQL with an ha: section"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(me.to_json()).encode() + b"\n", 0)
    return fd


def _read_holder(fd: int) -> str:
    try:
        doc = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return Holder(str(doc["host"]), int(doc["pid"]), str(doc["since"])).describe()
    except (ValueError, KeyError, TypeError):
        return "holder unknown"


async def _advisory_lock(engine: AsyncEngine, me: Holder, shared: bool) -> AsyncConnection:
    take = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
    try:
        conn = await engine.connect()
        await conn.execute(
            text("SELECT set_config('application_name', :name, false)"),
            {"name": me.application_name()},
        )
        got = (await conn.execute(text(f"SELECT {take}(:k)"), {"k": ADVISORY_KEY})).scalar_one()
        await conn.commit()  # the lock is the session's: it outlives the transaction
    except Exception as e:  # a connection that fails here is a database error
        raise StorageError(f"cannot take the database lock: {e}") from e
    if got:
        return conn
    try:
        other = await _advisory_holder(conn)
    finally:
        await conn.close()
    if shared:
        raise DatabaseInUseError(
            f"the database is in use by a tlog-monitor without ha: ({other}): replicas "
            "cannot run beside it; stop it, or give it the same ha: section"
        )
    raise DatabaseInUseError(
        f"the database is in use by another tlog-monitor ({other}): one monitor per database "
        "(replicas that run beside each other need an ha: section, each of them)"
    )


async def _advisory_holder(conn: AsyncConnection) -> str:
    row = (
        await conn.execute(
            text(
                "SELECT a.application_name, a.client_addr::text FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted "
                # advisory locks are per database: a monitor of another database on the
                # same server holds a lock of the same key, and is not the one in the way
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND ((l.classid::bigint << 32) | l.objid::bigint) = :k"
            ),
            {"k": ADVISORY_KEY},
        )
    ).first()
    if row is None:
        return "holder unknown"
    name, addr = row
    if isinstance(name, str) and name.startswith(_APP_PREFIX):
        parts = name[len(_APP_PREFIX) :].split(" ", 2)
        if len(parts) == 3 and parts[0].isdigit():
            pid, since, host = parts
            return Holder(host, int(pid), since).describe()
    return f"a connection from {addr or 'a local socket'}"
