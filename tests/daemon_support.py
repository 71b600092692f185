"""Helpers for the daemon tests: a configuration file for a running simulator, databases of
either engine, and a snapshot of everything the monitor stores (to compare runs)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from sqlalchemy import select

from monitor.sim.run import RunningSim
from monitor.storage.base import (
    ENTRIES,
    FINDINGS,
    INDEX_ALL,
    INDEX_LOGS,
    LOGS,
    MALFORMED,
    OUTBOX,
)
from monitor.storage.store import Store
from tests.storage_support import PgDatabases, pg_databases_fixture, require_postgres

if TYPE_CHECKING:
    from monitor.daemon.service import Monitor

ENGINES = ("sqlite", "postgresql")
T0 = 1_700_000_000.0  # fake clocks start here (rows the store dates itself are later)

MALLORY = {"email": "mallory@evil.example"}
ARTIFACT = "cd" * 32

RULES: list[dict[str, Any]] = [
    {"name": "mallory", "match": {"san": "mallory@evil.example"}, "severity": "high"},
    {"name": "artifact", "match": {"digest": f"sha256:{ARTIFACT}"}, "severity": "medium"},
]
SINKS: list[dict[str, Any]] = [
    {
        "name": "soc",
        "type": "webhook",
        "url": "http://127.0.0.1:9/hook",
        "secret": "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0",
        "min_severity": "medium",
    },
]


def write_config(
    path: Path,
    sim: RunningSim,
    trust_dir: Path,
    db_url: str,
    *,
    v1: dict[str, Any] | None = None,
    v2: dict[str, Any] | None = None,
    rules: list[dict[str, Any]] | None = None,
    sinks: list[dict[str, Any]] | None = None,
    health: dict[str, Any] | None = None,
    server: dict[str, Any] | None = None,
) -> Path:
    """A monitor configuration for the simulator ``sim`` (its trust files in ``trust_dir``);
    ``v1``/``v2`` are overrides of each log's settings, or ``{"off": True}``."""
    fast = {"requests_per_second": 100, "burst": 50, "poll_interval": "1s", "timeout": "2s"}
    logs = []
    if not (v1 or {}).get("off"):
        logs.append({"name": "v1", "api": "v1", "url": sim.base_url, **fast, **(v1 or {})})
    if not (v2 or {}).get("off"):
        logs.append({"name": "v2", "api": "v2", "discover": True, **fast, **(v2 or {})})
    doc: dict[str, Any] = {
        "trust": {
            "trusted_root": str(trust_dir / "trusted_root.json"),
            "signing_config": str(trust_dir / "signing_config.json"),
        },
        "logs": logs,
        "database": {"url": db_url},
        "watch": RULES if rules is None else rules,
        "alerts": {"sinks": SINKS if sinks is None else sinks},
        # any free port: tests run side by side
        "server": {"listen": "127.0.0.1:0", **(server or {})},
    }
    if health:
        doc["health"] = health
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


pg_dbs = pytest.fixture(scope="session")(pg_databases_fixture)


def database_url(engine: str, tmp_path: Path, pg: Callable[[], PgDatabases], name: str) -> str:
    """A fresh database (PostgreSQL: required under CI, else skipped if absent): SQLite's is
    empty, PostgreSQL's already at the schema's head (a copy of a template migrated once per
    session; the storage tests migrate empty ones on both engines)."""
    if engine == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / f'{name}.db'}"
    require_postgres()
    return pg().create(migrated=True)


def engine_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """A factory of fresh databases of the engine of ``request.param``."""
    engine = request.param

    def make(name: str) -> str:
        return database_url(engine, tmp_path, lambda: request.getfixturevalue("pg_dbs"), name)

    yield make


async def snapshot(url: str) -> dict[str, Any]:
    """Everything a run leaves behind that must not depend on timing or crashes: entries
    (with their records), findings (by dedup key), outbox rows, malformed and index_all rows,
    and each log's cursor and compact range. (Checkpoints are left out: which polls happened
    varies.)"""
    store = await Store.open(url, migrate=False)
    try:
        async with store.engine.connect() as conn:

            async def rows(stmt: Any) -> list[tuple[Any, ...]]:
                return sorted(tuple(r) for r in (await conn.execute(stmt)).all())

            e, f, o, m, i = ENTRIES.c, FINDINGS.c, OUTBOX.c, MALFORMED.c, INDEX_ALL.c
            n = INDEX_LOGS.c
            out = {
                "entries": await rows(select(e.log, e.idx, e.kind, e.san, e.record)),
                "findings": await rows(
                    select(f.dedup_key, f.kind, f.type, f.rule, f.log, f.idx, f.state, f.detail)
                ),
                "outbox": await rows(select(o.dedup_key, o.sink)),
                "malformed": await rows(select(m.log, m.idx, m.reason)),
                # by log name: the number a log gets in index_all_logs depends on timing
                "index_all": await rows(
                    select(n.log, i.idx, i.kind, i.san, i.digest).join_from(
                        INDEX_ALL, INDEX_LOGS, n.id == i.log_id
                    )
                ),
            }
            g = LOGS.c
            out["logs"] = await rows(select(g.name, g.cursor, g.compact_size, g.compact_hashes))
    finally:
        await store.close()
    return out


async def until(check: Callable[[], bool], m: Monitor, timeout: float = 60.0) -> None:
    """Wake the tailers of a running ``m`` until ``check`` holds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            states = {
                n: (r.status.cursor, r.status.lie, r.status.last_error)
                for n, r in m.runners.items()
            }
            raise AssertionError(f"timed out; runners (cursor, lie, last error): {states}")
        for r in m.runners.values():
            if r.tailer is not None:
                r.tailer.wake()
        await asyncio.sleep(0.05)


class Clock:
    """Wall-clock seconds that move only when told to."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> float:
        self.t += seconds
        return self.t
