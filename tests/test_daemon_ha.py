"""Two replicas (``ha:``) in one process on one PostgreSQL database, tailing the simulator's
logs: each log led by exactly one of them, both ready, both naming the same leader in the API
and in the metrics; a replica that stops hands its logs to the other, which catches them up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import text

from monitor.core.errors import LeaseLostError
from monitor.daemon.context import PassResult
from monitor.daemon.service import Monitor
from tests.api_support import READ_TOKEN, TOKENS
from tests.daemon_support import MALLORY, pg_dbs, write_config
from tests.simlog import harness, run
from tests.storage_support import PgDatabases, require_postgres

__all__ = ["pg_dbs"]

TTL = "1s"
AUTH = {"Authorization": f"Bearer {READ_TOKEN}"}


@asynccontextmanager
async def replica(cfg: Path) -> AsyncIterator[tuple[Monitor, str]]:
    """A running replica and the base URL of its API."""
    async with Monitor.open(str(cfg), registry=CollectorRegistry(), retry_base=0.05) as m:
        stop = asyncio.Event()
        task = asyncio.create_task(m.run(stop))
        while m.api is None or m.api.url is None:
            await asyncio.sleep(0.02)
        try:
            yield m, m.api.url
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


async def until(check: Callable[[], Any], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


def leaders_in_metrics(*monitors: Monitor) -> dict[str, list[str]]:
    """Per log, the replicas whose metrics say they lead it."""
    out: dict[str, list[str]] = {}
    for m in monitors:
        for line in generate_latest(m.registry).decode().splitlines():
            if line.startswith("tlog_monitor_log_leader{") and line.endswith(" 1.0"):
                labels = dict(
                    part.split("=", 1)
                    for part in line[line.index("{") + 1 : line.index("}")].split(",")
                )
                out.setdefault(labels["log"].strip('"'), []).append(labels["replica"].strip('"'))
    return out


@pytest.mark.slow
def test_two_replicas_share_the_logs_and_one_takes_all_when_the_other_stops(
    tmp_path: Path, pg_dbs: PgDatabases
) -> None:
    require_postgres()
    url = pg_dbs.create(migrated=True)

    async def body() -> None:
        async with harness(tmp_path, entries=200, shards=2) as h, aiohttp.ClientSession() as http:
            await h.admin("plant", {"index": 203, "identity": MALLORY})
            await h.admin("append", {"v1": 50, "v2": 50})
            configs = []
            for name in ("r1", "r2"):
                cfg = write_config(
                    tmp_path / f"{name}.yaml",
                    h.sim,
                    tmp_path,
                    url,
                    v1={"start": 0},
                    v2={"start": 0},
                    server={"tokens": TOKENS},
                )
                doc = yaml.safe_load(cfg.read_text())
                doc["ha"] = {"replica_id": name, "lease_ttl": TTL}
                cfg.write_text(yaml.safe_dump(doc))
                configs.append(cfg)

            async def get(base: str, path: str) -> tuple[int, Any]:
                async with http.get(base + path, headers=AUTH) as r:
                    return r.status, await r.json()

            async with replica(configs[0]) as (m1, base1):
                async with replica(configs[1]) as (m2, base2):
                    names = sorted(m1.runners)

                    async def shared() -> bool:
                        led = leaders_in_metrics(m1, m2)
                        return sorted(led) == names and all(len(r) == 1 for r in led.values())

                    await until(shared)

                    async def both_ready() -> bool:
                        return [(await get(b, "/readyz"))[0] for b in (base1, base2)] == [200, 200]

                    await until(both_ready)
                    await asyncio.sleep(2.5)  # r2 has lived a whole lease: hand-overs are done
                    for _ in range(5):  # a view of both replicas between two leadership reads
                        led = leaders_in_metrics(m1, m2)
                        views = [
                            ((await get(b, "/readyz"))[1], (await get(b, "/api/v1/logs"))[1])
                            for b in (base1, base2)
                        ]
                        if leaders_in_metrics(m1, m2) == led:
                            break
                    assert sorted(led) == names
                    assert all(len(r) == 1 for r in led.values())
                    for ready, logs in views:
                        me = ready["replica"]
                        assert ready["leads"] == sorted(n for n, r in led.items() if r == [me])
                        for name, why in ready["logs"].items():
                            assert why == ("ok" if led[name] == [me] else f"led by {led[name][0]}")
                        assert "items" in logs, logs
                        shown = {item["name"]: item["leader"]["replica"] for item in logs["items"]}
                        assert shown == {n: r[0] for n, r in led.items()}
                    # the planted entry was found once, whoever led its logs
                    async with m1.store.engine.connect() as conn:
                        found = (await conn.execute(text("SELECT count(*) FROM findings"))).scalar()
                    assert found == 2  # one in the v1 log, one in the v2 shard it was planted in
                # r2 stopped cleanly: r1 leads everything at once and catches up what grows
                await h.admin("append", {"v1": 40, "v2": 40})

                async def r1_leads_all() -> bool:
                    return leaders_in_metrics(m1) == {n: ["r1"] for n in names}

                await until(r1_leads_all, 5.0)
                await until(lambda: _caught_up(m1, 290))
                status, ready = await get(base1, "/readyz")
                assert status == 200
                assert sorted(ready["leads"]) == names
                # `once` as another replica leaves every log to its leader, and says who
                async with Monitor.open(str(configs[1]), registry=CollectorRegistry()) as once:
                    results = await once.once()
                assert sorted(results) == names
                for r in results.values():
                    assert isinstance(r, LeaseLostError)
                    assert "led by replica r1" in str(r)
            # with no replica running, `once` takes every lease, passes, and ends them
            async with Monitor.open(str(configs[1]), registry=CollectorRegistry()) as once:
                results = await once.once()
                assert all(isinstance(r, PassResult) for r in results.values()), results
                assert await once.lead.leaders() == {}

    run(body)


async def _caught_up(m: Monitor, size: int) -> bool:
    """Every log at its latest checkpoint, the v1 log at least ``size`` entries in."""
    statuses = [r.status for r in m.runners.values()]
    done = all(s.cursor is not None and s.cursor == s.log_size for s in statuses)
    return done and (m.runners["v1"].status.cursor or 0) >= size
