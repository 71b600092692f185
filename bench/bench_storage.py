"""Storage benchmark: fill a database with N stored entries (default 1,000,000, bulk
inserts), then time every history query shape (p50, p99), the insert path of the daemon
(``Store.store_batch``), and the bytes each stored entry and each index_all row cost.

Run: .venv/bin/python -m bench.bench_storage [--entries N] [--engines sqlite,postgresql]
PostgreSQL: a server on 127.0.0.1:5432 (trust auth, user postgres, or --pg URL); the
benchmark creates its own database and drops it at the end.
"""

# ruff: noqa: S311  (seeded, reproducible test data: nothing here is secret)

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from monitor.core.findings import Finding, FindingKind, Severity, dedup_key
from monitor.entries.record import (
    CertExtension,
    CertificateSigner,
    Digest,
    KeySigner,
    SanType,
    SigningRecord,
    Subject,
    SubjectAltName,
)
from monitor.storage import Batch, HistoryQuery, IndexRow, OutboxSpec, Store
from monitor.storage.base import INDEX_LOGS
from monitor.storage.store import ENTRIES, IDENTITIES, INDEX_ALL, identities
from monitor.storage.store import Store as _Store

PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
LOG = "rekor.sigstore.dev"
T_START = 1_760_000_000
SECONDS_PER_ENTRY = 0.05  # about 20 entries a second, like the public log
ISSUERS = [
    ("https://token.actions.githubusercontent.com", 0.75),
    ("https://accounts.google.com", 0.10),
    ("https://gitlab.com", 0.05),
    ("https://oauth2.sigstore.dev/auth", 0.10),
]
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def _hex(rng: random.Random, n: int = 32) -> str:
    return rng.randbytes(n).hex()


@dataclass
class World:
    """A deterministic population of repositories, identities, keys and images."""

    orgs: list[str]
    repos: list[str]
    keys: list[str]
    images: list[str]
    emails: list[str]


def make_world(rng: random.Random) -> World:
    orgs = [f"org{i:04d}" for i in range(1000)]
    repos = [f"https://github.com/{rng.choice(orgs)}/repo{i:05d}" for i in range(20_000)]
    keys = ["sha256:" + _hex(rng) for _ in range(20_000)]
    images = [f"ghcr.io/{rng.choice(orgs)}/image{i:05d}" for i in range(5_000)]
    emails = [f"user{i:06d}@example{i % 97}.com" for i in range(50_000)]
    return World(orgs, repos, keys, images, emails)


def make_record(rng: random.Random, w: World, index: int) -> SigningRecord:
    t = T_START + int(index * SECONDS_PER_ENTRY)
    digest = Digest("sha256", _hex(rng))
    body = json.dumps({"kind": "hashedrekord", "n": index, "sig": _hex(rng, 72)}).encode()
    if rng.random() < 0.10:  # a bare key
        return SigningRecord(
            LOG,
            index,
            "hashedrekord",
            "0.0.1",
            t,
            signers=(KeySigner("ecdsa", rng.choice(w.keys), 256, "P-256"),),
            artifact_digests=(digest,),
            raw_body=body,
        )
    issuer = rng.choices([i for i, _ in ISSUERS], [p for _, p in ISSUERS])[0]
    exts: tuple[CertExtension, ...] = ()
    if "githubusercontent" in issuer:
        repo = rng.choice(w.repos)
        san = f"{repo}/.github/workflows/release.yml@refs/heads/main"
        exts = (
            CertExtension("1.3.6.1.4.1.57264.1.8", "issuer-v2", issuer),
            CertExtension("1.3.6.1.4.1.57264.1.9", "build-signer-uri", san),
            CertExtension("1.3.6.1.4.1.57264.1.12", "source-repository-uri", repo),
            CertExtension("1.3.6.1.4.1.57264.1.14", "source-repository-ref", "refs/heads/main"),
            CertExtension(
                "1.3.6.1.4.1.57264.1.16", "source-repository-owner-uri", repo.rsplit("/", 1)[0]
            ),
            CertExtension("1.3.6.1.4.1.57264.1.11", "runner-environment", "github-hosted"),
        )
    else:
        san = rng.choice(w.emails)
    key = KeySigner("ecdsa", "sha256:" + _hex(rng), 256, "P-256")
    cert = CertificateSigner(
        sans=(SubjectAltName(SanType.URI if "://" in san else SanType.EMAIL, san),),
        issuer=issuer,
        extensions=exts,
        serial=_hex(rng, 20),
        not_before=EPOCH,
        not_after=EPOCH + timedelta(minutes=10),
        issuer_dn="O=sigstore.dev, CN=sigstore-intermediate",
        subject_dn="",
        fingerprint="sha256:" + _hex(rng),
        key=key,
    )
    subjects: tuple[Subject, ...] = ()
    kind = "hashedrekord"
    if rng.random() < 0.3:
        kind = "dsse"
        subjects = (Subject(rng.choice(w.images), (Digest("sha256", _hex(rng)),)),)
    return SigningRecord(
        LOG,
        index,
        kind,
        "0.0.1",
        t,
        signers=(cert,),
        artifact_digests=() if subjects else (digest,),
        payload_hash=digest if subjects else None,
        subjects=subjects,
        raw_body=body,
    )


# ------------------------------------------------------------------------------ filling


def _rows(records: Sequence[SigningRecord], at: datetime) -> tuple[list[Any], list[Any], list[Any]]:
    entries = [_Store._entry_values(r, at) for r in records]
    idents = [
        {"log": r.log, "idx": r.index, "field": f, "value": v}
        for r in records
        for f, v in identities(r)
    ]
    index = [IndexRow.from_record(r, r.integrated_time or 0).row(1) for r in records]  # LOG
    return entries, idents, index


async def _copy(conn: AsyncConnection, table: str, rows: list[dict[str, Any]]) -> None:
    raw = await conn.get_raw_connection()
    pg: Any = raw.driver_connection
    cols = list(rows[0])
    records = [
        tuple(json.dumps(v) if isinstance(v, dict) else v for v in (r[c] for c in cols))
        for r in rows
    ]
    await pg.copy_records_to_table(table, records=records, columns=cols)


async def fill(
    store: Store, n: int, seed: int, sample: list[SigningRecord], chunk: int = 20_000
) -> dict[str, float]:
    """Bulk-load ``n`` matched entries (with identities) and ``n`` index_all rows; keep a
    random sample of the records in ``sample`` (query targets)."""
    rng = random.Random(seed)
    world = make_world(rng)
    at = datetime.now(UTC)
    t0 = time.perf_counter()
    gen = 0.0
    async with store.engine.connect() as plain:
        conn = await plain.execution_options(tlog_write=True)
        async with conn.begin():  # the log's number in index_all (the rows below say 1)
            await conn.execute(insert(INDEX_LOGS), [{"id": 1, "log": LOG}])
        for start in range(0, n, chunk):
            g0 = time.perf_counter()
            recs = [make_record(rng, world, i) for i in range(start, min(n, start + chunk))]
            sample += [r for r in recs if r.index % 997 == 0]
            entries, idents, index = _rows(recs, at)
            gen += time.perf_counter() - g0
            async with conn.begin():
                if store.dialect == "postgresql":
                    await _copy(conn, "entries", entries)
                    await _copy(conn, "entry_identities", idents)
                    await _copy(conn, "index_all", index)
                else:
                    await conn.execute(insert(ENTRIES), entries)
                    await conn.execute(insert(IDENTITIES), idents)
                    await conn.execute(insert(INDEX_ALL), index)
            print(f"  filled {min(n, start + chunk):,}", end="\r", flush=True)
        async with conn.begin():
            await conn.execute(text("ANALYZE"))
    total = time.perf_counter() - t0
    print()
    return {"fill_seconds": total, "generate_seconds": gen, "rows_per_second": n / (total - gen)}


# ------------------------------------------------------------------------------ queries


def shapes(
    rng: random.Random, sample: list[SigningRecord]
) -> dict[str, Callable[[], HistoryQuery]]:
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
        return HistoryQuery(log=LOG, index_min=i, index_max=i + 99)

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
        "log + index range (100)": index_range,
        "time range (1 minute)": minute,
        "san + issuer": san_issuer,
        "all: san exact": lambda: HistoryQuery(san=cert().sans[0].value, all_entries=True),
        "all: san prefix (one repo)": lambda: HistoryQuery(san=repo() + "/*", all_entries=True),
        "all: key fingerprint": lambda: HistoryQuery(fingerprint=keyfp(), all_entries=True),
        "all: time range (1 minute)": lambda: replace(minute(), all_entries=True),
    }


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


async def time_queries(
    store: Store, sample: list[SigningRecord], seed: int, rounds: int
) -> dict[str, dict[str, float]]:
    rng = random.Random(seed)
    out: dict[str, dict[str, float]] = {}
    for name, make in shapes(rng, sample).items():
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


async def sizes(store: Store, n: int) -> dict[str, float]:
    async with store.engine.connect() as conn:
        if store.dialect == "postgresql":
            q = (
                "SELECT relname, pg_total_relation_size(oid) FROM pg_class "
                "WHERE relname IN ('entries', 'entry_identities', 'index_all')"
            )
            per = {r[0]: int(r[1]) for r in (await conn.execute(text(q))).all()}
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
    return {
        "stored_entry_bytes": (per.get("entries", 0) + per.get("entry_identities", 0)) / n,
        "of_which_identities_bytes": per.get("entry_identities", 0) / n,
        "index_all_row_bytes": per.get("index_all", 0) / n,
    }


# ------------------------------------------------------------------------------- driver


async def _admin(server: str, sql: str) -> None:
    eng = create_async_engine(server, isolation_level="AUTOCOMMIT")
    try:
        async with eng.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await eng.dispose()


async def bench_engine(engine: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    dbname = f"tlog_bench_{secrets.token_hex(4)}"
    if engine == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    else:
        await _admin(args.pg, f'CREATE DATABASE "{dbname}"')
        url = args.pg.rsplit("/", 1)[0] + f"/{dbname}"
    try:
        store = await Store.open(url)
        try:
            await store.register_log(LOG, "v1", "https://rekor.sigstore.dev")
            print(f"{engine}: filling {args.entries:,} entries")
            result: dict[str, Any] = {"entries": args.entries}
            sample: list[SigningRecord] = []
            result["fill"] = await fill(store, args.entries, args.seed, sample)
            result["sizes"] = await sizes(store, args.entries)
            print(f"{engine}: sizes {result['sizes']}")
            print(f"{engine}: queries ({args.rounds} each)")
            result["queries"] = await time_queries(store, sample, args.seed, args.rounds)
            print(f"{engine}: insert path")
            result["insert"] = await time_batches(
                store, args.entries + 1_000_000, args.batches, args.batch_size, args.seed + 1
            )
            print(f"{engine}: {result['insert']}")
        finally:
            await store.close()
    finally:
        if engine == "postgresql":
            await _admin(args.pg, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    return result


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--entries", type=int, default=1_000_000)
    p.add_argument("--engines", default="sqlite,postgresql")
    p.add_argument("--rounds", type=int, default=200, help="queries per shape")
    p.add_argument("--batches", type=int, default=20, help="store_batch calls to time")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--seed", type=int, default=6)
    p.add_argument("--pg", default=PG_SERVER, help="PostgreSQL server (admin database URL)")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    p.add_argument("--tmp", type=Path, help="where the SQLite file goes (default: a temp dir)")
    args = p.parse_args(argv)
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
