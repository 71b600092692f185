"""What the number of ``index_all`` partitions costs on PostgreSQL (``bench_storage
--partitions``): the planning and execution time of each ``all_entries`` query shape (from
``EXPLAIN (ANALYZE)``), the locks one such query holds, the check ``store_batch`` makes for
its partitions, and retention's catalog walk and drops."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects import postgresql

from monitor.storage import HistoryQuery, Store, partitions
from monitor.storage.history_query import history_statement

EXPLAIN = "EXPLAIN (ANALYZE, SUMMARY, FORMAT JSON) "


def _sql(q: HistoryQuery) -> str:
    """The statement ``Store.history`` runs for ``q``."""
    stmt = history_statement(q, q.limit + 1, "postgresql")
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


async def plans(
    store: Store, makers: dict[str, Callable[[], HistoryQuery]], rounds: int
) -> dict[str, dict[str, float]]:
    """Median planning and execution ms of each ``all_entries`` shape, and how many
    partitions its plan keeps (subplans the executor did not prune at startup)."""
    out: dict[str, dict[str, float]] = {}
    async with store.engine.connect() as conn:
        for name, make in makers.items():
            if not make().all_entries:
                continue
            plan_ms: list[float] = []
            exec_ms: list[float] = []
            for _ in range(rounds):
                doc = (await conn.exec_driver_sql(EXPLAIN + _sql(make()))).scalar_one()[0]
                plan_ms.append(doc["Planning Time"])
                exec_ms.append(doc["Execution Time"])
            await conn.rollback()
            out[name] = {
                "planning_ms": statistics.median(plan_ms),
                "execution_ms": statistics.median(exec_ms),
            }
            r = out[name]
            print(f"  {name:30} planning {r['planning_ms']:7.2f} ms  exec {r['execution_ms']:7.2f}")
        # locks one query holds to its transaction's end (planning locks every partition it
        # cannot prune, and each of their indexes): the lock table is shared by all sessions
        # and sized by max_locks_per_transaction * max_connections
        san = next(m for n, m in makers.items() if n == "all: san exact")
        await conn.exec_driver_sql(_sql(san()))
        mine = "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid()"
        out["all: san exact"]["locks"] = (await conn.execute(text(mine))).scalar_one()
        await conn.rollback()
        print(f"  locks held by one 'all: san exact': {out['all: san exact']['locks']}")
    return out


async def ensure_cost(store: Store, tip: int, rounds: int = 200) -> dict[str, float]:
    """The check every batch makes for its partitions (all exist): median ms for a batch of
    1,000 keys at the tip, and the count of partitions."""
    keys = [(1, tip + i) for i in range(1000)]
    times: list[float] = []
    async with store.engine.connect() as conn:
        for _ in range(rounds):
            t0 = time.perf_counter()
            await partitions.ensure(conn, keys)
            times.append((time.perf_counter() - t0) * 1000)
        await conn.rollback()
        t0 = time.perf_counter()
        count = len(await partitions.partitions(conn))
        listing = (time.perf_counter() - t0) * 1000
        await conn.rollback()
    out = {"ensure_ms": statistics.median(times), "list_ms": listing, "partitions": count}
    print(f"  partitions {count}: ensure {out['ensure_ms']:.2f} ms, listing {listing:.2f} ms")
    return out


async def retention(store: Store, log: str, share: float = 0.1) -> dict[str, Any]:
    """``purge_index_all`` twice: with a cutoff older than every row (it drops nothing but
    looks at every partition), then one that drops the oldest ``share`` of the partitions."""
    async with store.engine.connect() as conn:
        parts = await partitions.partitions(conn)
        nth = parts[max(1, int(len(parts) * share))][2]
        start = (await conn.execute(text(f"SELECT min(time) FROM {nth}"))).scalar_one()  # noqa: S608
        first = (await conn.execute(text("SELECT min(time) FROM index_all"))).scalar_one()
        await conn.rollback()
    t0 = time.perf_counter()
    none = await store.purge_index_all(datetime.fromtimestamp(first, UTC), log)
    idle_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    gone = await store.purge_index_all(datetime.fromtimestamp(start, UTC), log)
    drop_ms = (time.perf_counter() - t0) * 1000
    async with store.engine.connect() as conn:
        left = len(await partitions.partitions(conn))
    out = {
        "partitions_before": len(parts),
        "partitions_after": left,
        "rows_purged": gone,
        "nothing_to_purge_ms": idle_ms,
        "purge_ms": drop_ms,
    }
    assert none == 0, none
    print(f"  retention: {out}")
    return out
