"""The storage benchmark's data: a deterministic world of repositories, keys and images, the
records the daemon would store, and the bulk fill that sets a database up with N entries of
the log in ``index_all`` (a share of them matched, stored whole with their identities).

The fill is set-up, not what is measured: it takes the fastest correct path of each engine.
The secondary indexes of the three tables are dropped for it and built again afterwards
(a sort, not N random inserts), ``index_all`` rows are made as tuples without a record and
go in through the driver (executemany on SQLite, COPY on PostgreSQL), and only the matched
share is made as whole records, as the daemon makes them.
"""

# ruff: noqa: S311  (seeded, reproducible test data: nothing here is secret)

from __future__ import annotations

import bisect
import itertools
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

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
from monitor.storage import IndexRow, Store, partitions
from monitor.storage.base import INDEX_LOGS
from monitor.storage.indexrow import INDEX_COLUMNS
from monitor.storage.models import value_hash
from monitor.storage.store import ENTRIES, IDENTITIES, identities
from monitor.storage.store import Store as _Store

LOG = "rekor.sigstore.dev"
LOG_ID = 1  # the log's number in index_all_logs (the fill gives it)
T_START = 1_760_000_000
SECONDS_PER_ENTRY = 0.05  # about 20 entries a second, like the public log
ISSUERS = [
    ("https://token.actions.githubusercontent.com", 0.75),
    ("https://accounts.google.com", 0.10),
    ("https://gitlab.com", 0.05),
    ("https://oauth2.sigstore.dev/auth", 0.10),
]
_CUMULATIVE = list(itertools.accumulate(p for _, p in ISSUERS))
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
TABLES = ("entries", "entry_identities", "index_all")
SAMPLE_EVERY = 31


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


def _issuer(rng: random.Random) -> str:
    return ISSUERS[min(bisect.bisect(_CUMULATIVE, rng.random()), len(ISSUERS) - 1)][0]


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
    issuer = _issuer(rng)
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


def index_tuple(rng: random.Random, w: World, index: int) -> tuple[Any, ...]:
    """The ``index_all`` row (``INDEX_COLUMNS``) of an entry that matched nothing: the same
    population as ``make_record``, made without a record (ten times cheaper)."""
    t = T_START + int(index * SECONDS_PER_ENTRY)
    digest = "sha256:" + _hex(rng)
    if rng.random() < 0.10:
        key = rng.choice(w.keys)
        return (LOG_ID, index, t, "hashedrekord", None, None, key, digest)
    issuer = _issuer(rng)
    if "githubusercontent" in issuer:
        san = f"{rng.choice(w.repos)}/.github/workflows/release.yml@refs/heads/main"
    else:
        san = rng.choice(w.emails)
    key = "sha256:" + _hex(rng)
    subject = rng.random() < 0.3
    return (LOG_ID, index, t, "dsse" if subject else "hashedrekord", san, issuer, key, digest)


def _hashed(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return (*row, value_hash(row[6]), value_hash(row[7]))


def record_tuple(r: SigningRecord) -> tuple[Any, ...]:
    return IndexRow.from_record(r, r.integrated_time or 0).values(LOG_ID)


# ------------------------------------------------------------------------------ filling


async def _secondary_indexes(conn: AsyncConnection, dialect: str) -> list[tuple[str, str]]:
    """(name, CREATE statement) of every secondary index of the filled tables (partitioned
    ones on PostgreSQL as one index of the parent, which builds every partition's)."""
    names = ", ".join(f"'{t}'" for t in TABLES)
    if dialect == "postgresql":
        q = (
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = "  # noqa: S608
            f"current_schema() AND i.tablename IN ({names}) AND NOT EXISTS (SELECT 1 "
            "FROM pg_constraint c WHERE c.conname = i.indexname)"
        )
        rows = (await conn.execute(text(q))).all()
        return [(n, d.replace(" ON ONLY ", " ON ")) for n, d in rows]
    q = (
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' "  # noqa: S608
        f"AND tbl_name IN ({names}) AND sql IS NOT NULL"
    )
    return [(n, d) for n, d in (await conn.execute(text(q))).all()]


async def _copy(conn: AsyncConnection, table: str, cols: Sequence[str], rows: list[Any]) -> None:
    raw = await conn.get_raw_connection()
    pg: Any = raw.driver_connection
    await pg.copy_records_to_table(table, records=rows, columns=list(cols))


async def _outside(conn: AsyncConnection, sql: str) -> None:
    """SQLite: run ``sql`` outside any transaction (SQLAlchemy would begin one)."""
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    await (await driver.execute(sql)).close()


def _pg_tuples(rows: list[dict[str, Any]]) -> tuple[list[str], list[tuple[Any, ...]]]:
    cols = list(rows[0])
    return cols, [
        tuple(json.dumps(v) if isinstance(v, dict) else v for v in (r[c] for c in cols))
        for r in rows
    ]


@dataclass
class Filler:
    """Grows one database: entries ``[0, next_index)`` are stored (``matched`` share of them
    as matched entries); ``sample`` keeps every ``SAMPLE_EVERY``th matched record (query
    targets)."""

    store: Store
    share: float
    seed: int
    spread: int | None = None
    """Rows a partition's range: the ``k``th row goes to index ``k // spread * CHUNK +
    k % spread`` (the first ``spread`` indexes of each range), so that N partitions are
    measured without N million rows. None: indexes ``0, 1, 2, ...``."""
    next_index: int = 0
    placed: int = 0  # rows the fill made (not the timed batches): the next one's ``position``
    matched: int = 0
    index_rows: int = 0
    logged: bool = False

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.world = make_world(self.rng)
        self.sample: list[SigningRecord] = []

    def position(self, k: int) -> int:
        """The log index of the ``k``th row of the fill."""
        if self.spread is None:
            return k
        return k // self.spread * partitions.CHUNK + k % self.spread

    def took(self, matched: int, index_rows: int, up_to: int) -> None:
        """Rows stored by others (the timed batches), and the next free index: the fill
        goes on past them (spread: from the next partition's range)."""
        self.matched += matched
        self.index_rows += index_rows
        self.next_index = max(self.next_index, up_to)
        if self.spread is None:
            self.placed = self.next_index
        else:
            self.placed = -(-self.placed // self.spread) * self.spread

    def _chunk(self, n: int, at: datetime) -> tuple[list[Any], list[Any], list[Any]]:
        """The next ``n`` entries: (index_all tuples, entry rows, identity rows)."""
        idx_rows: list[tuple[Any, ...]] = []
        recs: list[SigningRecord] = []
        for i in map(self.position, range(self.placed, self.placed + n)):
            if self.rng.random() < self.share:
                r = make_record(self.rng, self.world, i)
                recs.append(r)
                idx_rows.append(record_tuple(r))
            else:
                idx_rows.append(_hashed(index_tuple(self.rng, self.world, i)))
        self.sample += [r for k, r in enumerate(recs) if (self.matched + k) % SAMPLE_EVERY == 0]
        self.index_rows += n
        self.placed += n
        self.next_index = max(self.next_index, idx_rows[-1][1] + 1)
        self.matched += len(recs)
        entries = [_Store._entry_values(r, at) for r in recs]
        idents = [
            {"log": r.log, "idx": r.index, "field": f, "value": v}
            for r in recs
            for f, v in identities(r)
        ]
        return idx_rows, entries, idents

    async def _insert(
        self, conn: AsyncConnection, idx_rows: list[Any], entries: list[Any], idents: list[Any]
    ) -> None:
        async with conn.begin():
            if self.store.dialect == "postgresql":
                await partitions.ensure(conn, ((LOG_ID, r[1]) for r in idx_rows))
                if entries:
                    await _copy(conn, "entries", *_pg_tuples(entries))
                    await _copy(conn, "entry_identities", *_pg_tuples(idents))
                await _copy(conn, "index_all", INDEX_COLUMNS, idx_rows)
                return
            if entries:
                await conn.execute(insert(ENTRIES), entries)
                await conn.execute(insert(IDENTITIES), idents)
            marks = ", ".join("?" * len(INDEX_COLUMNS))
            await conn.exec_driver_sql(
                f"INSERT INTO index_all ({', '.join(INDEX_COLUMNS)}) VALUES ({marks})",  # noqa: S608
                idx_rows,
            )

    async def _rebuild(self, conn: AsyncConnection, indexes: list[tuple[str, str]]) -> None:
        """Build the dropped indexes again, then the planner's statistics."""
        if self.store.dialect == "sqlite":
            await _outside(conn, "PRAGMA synchronous = FULL")
        async with conn.begin():
            if self.store.dialect == "postgresql":
                await conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '1GB'")
            for _, create in indexes:
                await conn.execute(text(create))
        async with conn.begin():
            await conn.execute(text("ANALYZE"))
        if self.store.dialect == "sqlite":  # the WAL the fill wrote goes into the database
            await _outside(conn, "PRAGMA wal_checkpoint(TRUNCATE)")

    async def grow(self, target: int, chunk: int = 50_000) -> dict[str, float]:
        """Add entries until ``index_all`` holds ``target`` rows."""
        at = datetime.now(UTC)
        t0 = time.perf_counter()
        gen = 0.0
        added = self.index_rows
        async with self.store.engine.connect() as plain:
            conn = await plain.execution_options(tlog_write=True)
            async with conn.begin():
                if not self.logged:  # the log's number in index_all
                    await conn.execute(insert(INDEX_LOGS), [{"id": LOG_ID, "log": LOG}])
                    self.logged = True
                indexes = await _secondary_indexes(conn, self.store.dialect)
                for name, _ in indexes:
                    await conn.execute(text(f"DROP INDEX {name}"))
            if self.store.dialect == "sqlite":
                await _outside(conn, "PRAGMA synchronous = OFF")  # set-up only
            while self.index_rows < target:
                g0 = time.perf_counter()
                rows = self._chunk(min(chunk, target - self.index_rows), at)
                gen += time.perf_counter() - g0
                await self._insert(conn, *rows)
                print(f"  filled {self.index_rows:,}", end="\r", flush=True)
            print()
            i0 = time.perf_counter()
            await self._rebuild(conn, indexes)
            index_s = time.perf_counter() - i0
        total = time.perf_counter() - t0
        return {
            "fill_seconds": total,
            "generate_seconds": gen,
            "index_build_seconds": index_s,
            "rows_per_second": (self.index_rows - added) / max(total - gen, 1e-9),
        }
