"""Storage benchmark: fill a database with N entries of the log (default 1,000,000; every
one in ``index_all``, a share of them matched and stored whole), then time every history
query shape (p50, p99), the insert path of the daemon (``Store.store_batch``), and the bytes
each stored entry and each index_all row cost.

``--sizes 100000,1000000,10000000`` measures at each size in one run, growing the same
database from one to the next, so that the ratio of a rate at 10M to the rate at 100k comes
from one run.

``--partitions 10,200,1000`` (PostgreSQL) spreads the rows over that many partitions'
ranges instead, ``--per-partition`` rows each, and also measures what the count of
partitions costs (``bench.partition_costs``): planning, the partition check of each batch,
retention.

Run: .venv/bin/python -m bench.bench_storage [--entries N | --sizes N,M,... |
--partitions N,M,...] [--matched-share 0.05] [--engines sqlite,postgresql]
PostgreSQL: a server on 127.0.0.1:5432 (trust auth, user postgres, or --pg URL); the
benchmark creates its own database and drops it at the end.
"""

# ruff: noqa: S311  (seeded, reproducible test data: nothing here is secret)

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench import partition_costs
from bench.storage_fill import LOG, T_START, Filler, make_record, make_world
from monitor.core.findings import Finding, FindingKind, Severity, dedup_key
from monitor.entries.record import CertificateSigner, Digest, KeySigner, SigningRecord
from monitor.storage import Batch, HistoryQuery, IndexRow, OutboxSpec, Store

PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


# ------------------------------------------------------------------------------ queries


def shapes(
    rng: random.Random, sample: list[SigningRecord], share: float
) -> dict[str, Callable[[], HistoryQuery]]:
    """Query makers by shape; ``share``: the matched share of the log (an index range of
    matched entries spans 100 / share indexes, a page of about 100 of them)."""
    span = round(100 / share)

    def rec() -> SigningRecord:
        return rng.choice(sample)

    def cert() -> CertificateSigner:
        while True:
            s = rec().signers[0]
            if isinstance(s, CertificateSigner):
                return s

    def keyfp() -> str:
        while True:
            s = rec().signers[0]
            if isinstance(s, KeySigner):
                return s.fingerprint

    def image() -> str:
        while True:
            r = rec()
            if r.subjects:
                return r.subjects[0].name

    def digest() -> Digest:
        while True:
            r = rec()
            if r.artifact_digests:
                return r.artifact_digests[0]

    def minute() -> HistoryQuery:
        t = datetime.fromtimestamp(rec().integrated_time or T_START, UTC)
        return HistoryQuery(since=t, until=t + timedelta(minutes=1))

    def index_range() -> HistoryQuery:
        i = rec().index
        return HistoryQuery(log=LOG, index_min=i, index_max=i + span - 1)

    def san_issuer() -> HistoryQuery:
        c = cert()
        return HistoryQuery(san=c.sans[0].value, issuer=c.issuer)

    def repo() -> str:
        while True:
            v = cert().extension("source-repository-uri")
            if v:
                return v

    return {
        "san exact": lambda: HistoryQuery(san=cert().sans[0].value),
        "san prefix (one repo)": lambda: HistoryQuery(san=repo() + "/*"),
        "san prefix (one org)": lambda: HistoryQuery(san=repo().rsplit("/", 1)[0] + "/*"),
        "issuer (first page)": lambda: HistoryQuery(issuer="https://gitlab.com"),
        "ext source-repository-uri": lambda: HistoryQuery(ext=("source-repository-uri", repo())),
        "fingerprint (key)": lambda: HistoryQuery(fingerprint=keyfp()),
        "fingerprint (certificate)": lambda: HistoryQuery(fingerprint=cert().fingerprint),
        "digest": lambda: HistoryQuery(digest=str(digest())),
        "subject": lambda: HistoryQuery(subject=image()),
        "log + index range (100 matched)": index_range,
        "time range (1 minute)": minute,
        "san + issuer": san_issuer,
        "all: san exact": lambda: HistoryQuery(san=cert().sans[0].value, all_entries=True),
        "all: san prefix (one repo)": lambda: HistoryQuery(san=repo() + "/*", all_entries=True),
        "all: san prefix (one org)": lambda: HistoryQuery(
            san=repo().rsplit("/", 1)[0] + "/*", all_entries=True
        ),
        "all: key fingerprint": lambda: HistoryQuery(fingerprint=keyfp(), all_entries=True),
        "all: time range (1 minute)": lambda: replace(minute(), all_entries=True),
        "all: log + index range": lambda: replace(index_range(), all_entries=True),
    }


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


async def time_queries(
    store: Store, sample: list[SigningRecord], seed: int, rounds: int, share: float
) -> dict[str, dict[str, float]]:
    rng = random.Random(seed)
    out: dict[str, dict[str, float]] = {}
    for name, make in shapes(rng, sample, share).items():
        times: list[float] = []
        rows: list[int] = []
        for k in range(rounds + 5):
            q = make()
            t0 = time.perf_counter()
            page = await store.history(q)
            dt = time.perf_counter() - t0
            if k >= 5:  # warm-up
                times.append(dt * 1000)
                rows.append(len(page.items))
        out[name] = {
            "p50_ms": _pct(times, 50),
            "p99_ms": _pct(times, 99),
            "mean_rows": statistics.mean(rows),
        }
        r = out[name]
        print(
            f"  {name:30} p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms"
            f"  rows {r['mean_rows']:.0f}"
        )
    return out


# ------------------------------------------------------------------------ insert path


async def time_batches(
    store: Store, start: int, batches: int, size: int, seed: int
) -> dict[str, float]:
    """The daemon's write path: store_batch with ``size`` matched records (1% findings, each
    with an outbox row), index_all rows for each, cursor and checkpoint-free."""
    rng = random.Random(seed)
    world = make_world(rng)
    t0 = time.perf_counter()
    gen = 0.0
    for b in range(batches):
        g0 = time.perf_counter()
        base = start + b * size
        recs = tuple(make_record(rng, world, base + i) for i in range(size))
        findings = tuple(
            Finding(
                FindingKind.WATCHED_USE,
                Severity.MEDIUM,
                dedup_key("bench", r.index),
                "bench",
                r.log,
                r.index,
            )
            for r in recs[::100]
        )
        batch = Batch(
            LOG,
            base + size,
            records=recs,
            findings=findings,
            outbox=tuple(OutboxSpec(f.dedup_key, ("webhook",)) for f in findings),
            index_rows=tuple(IndexRow.from_record(r, 0) for r in recs),
        )
        gen += time.perf_counter() - g0
        await store.store_batch(batch)
    store_s = time.perf_counter() - t0 - gen
    matched = batches * size / store_s

    # index_all only (what every entry of the log costs when index_all is on)
    t0 = time.perf_counter()
    gen = 0.0
    base0 = start + batches * size
    for b in range(batches):
        g0 = time.perf_counter()
        base = base0 + b * size
        rows = tuple(
            IndexRow.from_record(make_record(rng, world, base + i), 0) for i in range(size)
        )
        gen += time.perf_counter() - g0
        await store.store_batch(Batch(LOG, base + size, index_rows=rows))
    index_s = time.perf_counter() - t0 - gen
    return {
        "matched_entries_per_second": matched,
        "index_all_rows_per_second": batches * size / index_s,
        "batch_size": size,
    }


# ------------------------------------------------------------------------------ sizes


async def sizes(store: Store, matched: int, index_rows: int) -> dict[str, float]:
    async with store.engine.connect() as conn:
        if store.dialect == "postgresql":
            # a partitioned table's own size is 0: its partitions hold the rows
            q = (
                "SELECT t, COALESCE((SELECT SUM(pg_total_relation_size(relid)) "
                "FROM pg_partition_tree(t::regclass)), pg_total_relation_size(t::regclass)) "
                "FROM unnest(ARRAY['entries', 'entry_identities', 'index_all']) AS t"
            )
            per = {r[0]: int(r[1] or 0) for r in (await conn.execute(text(q))).all()}
        else:
            q = (
                "SELECT tbl_name, name FROM sqlite_master WHERE tbl_name IN "
                "('entries', 'entry_identities', 'index_all')"
            )
            owners = {r[1]: r[0] for r in (await conn.execute(text(q))).all()}
            per = {}
            stat = "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"
            for name, size in (await conn.execute(text(stat))).all():
                owner = owners.get(name)
                if owner is None and name.startswith("sqlite_autoindex_"):
                    owner = name.removeprefix("sqlite_autoindex_").rsplit("_", 1)[0]
                if owner in ("entries", "entry_identities", "index_all"):
                    per[owner] = per.get(owner, 0) + int(size)
    m = max(matched, 1)
    return {
        "stored_entry_bytes": (per.get("entries", 0) + per.get("entry_identities", 0)) / m,
        "of_which_identities_bytes": per.get("entry_identities", 0) / m,
        "index_all_row_bytes": per.get("index_all", 0) / max(index_rows, 1),
    }


# ------------------------------------------------------------------------------- driver


async def _admin(server: str, sql: str) -> None:
    eng = create_async_engine(server, isolation_level="AUTOCOMMIT")
    try:
        async with eng.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await eng.dispose()


async def measure(
    store: Store, filler: Filler, args: argparse.Namespace, engine: str
) -> dict[str, Any]:
    """Every figure at the size the database has now, in a process whose collector is set
    as the daemon's (``monitor.cli.daemon``: what lives on is frozen, the young generation
    collected every 50,000 allocations), where the daemon's API answers history queries."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    result: dict[str, Any] = {"entries": filler.index_rows, "matched": filler.matched}
    result["sizes"] = await sizes(store, filler.matched, filler.index_rows)
    print(f"{engine}: sizes {result['sizes']}")
    print(f"{engine}: queries ({args.rounds} each)")
    result["queries"] = await time_queries(
        store, filler.sample, args.seed, args.rounds, args.matched_share
    )
    if args.spread and store.dialect == "postgresql":
        print(f"{engine}: partitions (EXPLAIN ANALYZE, {args.plan_rounds} each)")
        makers = shapes(random.Random(args.seed), filler.sample, args.matched_share)
        result["plans"] = await partition_costs.plans(store, makers, args.plan_rounds)
        result["ensure"] = await partition_costs.ensure_cost(store, filler.next_index)
    print(f"{engine}: insert path")
    start = filler.next_index
    result["insert"] = await time_batches(
        store, start, args.batches, args.batch_size, args.seed + filler.index_rows
    )
    stored = args.batches * args.batch_size
    filler.took(stored, 2 * stored, start + 2 * stored)
    print(f"{engine}: {result['insert']}")
    return result


async def bench_engine(engine: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    dbname = f"tlog_bench_{secrets.token_hex(4)}"
    if engine == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    else:
        await _admin(args.pg, f'CREATE DATABASE "{dbname}"')
        url = args.pg.rsplit("/", 1)[0] + f"/{dbname}"
    steps: list[dict[str, Any]] = []
    try:
        store = await Store.open(url)
        try:
            await store.register_log(LOG, "v1", "https://rekor.sigstore.dev")
            filler = Filler(store, args.matched_share, args.seed, args.spread)
            for size in args.sizes:
                print(f"{engine}: filling to {size:,} entries ({args.matched_share:.0%} matched)")
                fill = await filler.grow(size)
                print(f"{engine}: {fill}")
                step = await measure(store, filler, args, engine)
                step["fill"] = fill
                steps.append(step)
            if args.spread and engine == "postgresql":  # last: it drops partitions
                steps[-1]["retention"] = await partition_costs.retention(store, LOG)
        finally:
            await store.close()
    finally:
        if engine == "postgresql":
            await _admin(args.pg, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    result = dict(steps[-1])
    if len(steps) > 1:
        result["steps"] = steps
        result["growth"] = growth(steps)
    return result


def growth(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure at the largest size against the smallest: insert rates as a share of
    the first (1.0: no loss), query p99s in ms at both."""
    first, last = steps[0], steps[-1]
    out: dict[str, Any] = {"from": first["entries"], "to": last["entries"]}
    for k in ("matched_entries_per_second", "index_all_rows_per_second"):
        out[k] = last["insert"][k] / first["insert"][k]
    out["p99_ms"] = {
        q: (first["queries"][q]["p99_ms"], last["queries"][q]["p99_ms"]) for q in last["queries"]
    }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--entries", type=int, default=1_000_000, help="entries of the log")
    p.add_argument(
        "--sizes", help="measure at each of these sizes (comma-separated), growing one database"
    )
    p.add_argument(
        "--matched-share",
        type=float,
        default=0.05,
        help="share of the log's entries that matched a watch and are stored whole",
    )
    p.add_argument(
        "--partitions",
        help="PostgreSQL: measure with index_all rows spread over each of these counts of "
        "partitions (comma-separated; --per-partition rows each) instead of --sizes",
    )
    p.add_argument("--per-partition", type=int, default=2000, help="rows a partition")
    p.add_argument("--plan-rounds", type=int, default=20, help="EXPLAIN ANALYZE per shape")
    p.add_argument("--engines", default="sqlite,postgresql")
    p.add_argument("--rounds", type=int, default=200, help="queries per shape")
    p.add_argument("--batches", type=int, default=20, help="store_batch calls to time")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--seed", type=int, default=6)
    p.add_argument("--pg", default=PG_SERVER, help="PostgreSQL server (admin database URL)")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    p.add_argument("--tmp", type=Path, help="where the SQLite file goes (default: a temp dir)")
    args = p.parse_args(argv)
    args.sizes = sorted(int(x) for x in args.sizes.split(",")) if args.sizes else [args.entries]
    args.spread = None
    if args.partitions:  # every partition's range holds --per-partition rows
        args.spread = args.per_partition
        args.sizes = sorted(int(x) * args.per_partition for x in args.partitions.split(","))
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=args.tmp) as d:
        for engine in args.engines.split(","):
            results[engine] = asyncio.run(bench_engine(engine.strip(), args, Path(d)))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
