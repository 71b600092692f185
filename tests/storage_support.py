"""Shared by the storage tests: databases on both engines, and records to store.

PostgreSQL: a server on 127.0.0.1:5432 (trust auth, user postgres; ``TLOG_TEST_PG`` names
another server). Each test session creates databases with random names and drops them all at
once at the end. If the server is unreachable the PostgreSQL tests are skipped locally, but FAIL
when ``CI`` is set: CI must run them.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

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
from monitor.storage import Store

T = TypeVar("T")

PG_SERVER = os.environ.get("TLOG_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
ENGINES = ["sqlite", "postgresql"]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def run(fn: Callable[[], Awaitable[T]]) -> T:
    async def wrap() -> T:
        return await fn()

    return asyncio.run(wrap())


async def _admin(*statements: str) -> None:
    engine = create_async_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for s in statements:
                await conn.execute(text(s))
    finally:
        await engine.dispose()


def _pg_reachable() -> str | None:
    """None if the server answers, else why not."""
    try:
        run(lambda: asyncio.wait_for(_admin("SELECT 1"), 10))
    except (OSError, SQLAlchemyError, TimeoutError) as e:
        return f"{type(e).__name__}: {e}"
    return None


def require_postgres() -> None:
    why = _pg_reachable()
    if why is None:
        return
    message = f"PostgreSQL at {PG_SERVER} is unreachable ({why})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run the PostgreSQL storage tests", pytrace=False)
    pytest.skip(message)


class PgDatabases:
    """Creates databases with random names on the test server; drops them all at the end."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._template: str | None = None

    def create(self, *, migrated: bool = False, copy_of: str | None = None) -> str:
        """An empty database, or with ``migrated`` one at the schema's head: a copy of a
        template migrated once (migrating each database anew takes about a second); or a
        copy of the database at ``copy_of`` (a URL, with no connection open to it)."""
        name = f"tlog_test_{secrets.token_hex(6)}"
        template = f' TEMPLATE "{self._migrated_template()}"' if migrated else ""
        if copy_of is not None:
            template = f' TEMPLATE "{copy_of.rsplit("/", 1)[1]}"'
        run(lambda: _admin(f'CREATE DATABASE "{name}"{template}'))
        self.names.append(name)
        return PG_SERVER.rsplit("/", 1)[0] + f"/{name}"

    def _migrated_template(self) -> str:
        if self._template is None:
            url = self.create()

            async def migrate() -> None:
                await (await Store.open(url)).close()  # no connection left: it can be copied

            run(migrate)
            self._template = url.rsplit("/", 1)[1]
        return self._template

    def drop_all(self) -> None:
        names, self.names, self._template = self.names, [], None
        drop_databases(names)


def drop_databases(names: list[str]) -> None:
    """All at once: each DROP DATABASE waits for a checkpoint, and drops that wait together
    share one (one after the other they took seconds each on a busy server)."""
    limit = asyncio.Semaphore(8)

    async def drop(name: str) -> None:
        async with limit:
            await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def drop_every() -> None:
        await asyncio.gather(*(drop(n) for n in names))

    if names:
        run(drop_every)


# every PgDatabases of the session (each test module that asks for one has its own)
_SESSION: list[PgDatabases] = []


def drop_session_databases() -> None:
    """Drops what every PgDatabases of this process created, together (tests/conftest.py calls
    it at the end of the session)."""
    names = [n for dbs in _SESSION for n in dbs.names]
    for dbs in _SESSION:
        dbs.names, dbs._template = [], None
    _SESSION.clear()
    drop_databases(names)


def sqlite_url(tmp: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp / 'monitor.db'}"


def fresh_url(engine: str, tmp: Path, pg: Callable[[], PgDatabases]) -> str:
    """An empty database of ``engine``."""
    if engine == "sqlite":
        return sqlite_url(tmp)
    require_postgres()
    return pg().create()


def pg_databases_fixture() -> Iterator[PgDatabases]:
    """Its databases are dropped with all the others at the end of the session."""
    dbs = PgDatabases()
    _SESSION.append(dbs)
    yield dbs


# ----------------------------------------------------------------------------- records


def fp(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def sha(seed: str) -> Digest:
    return Digest("sha256", hashlib.sha256(seed.encode()).hexdigest())


def cert_record(
    log: str,
    index: int,
    *,
    sans: tuple[str, ...] = (
        "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main",
    ),
    issuer: str | None = "https://token.actions.githubusercontent.com",
    repo: str = "https://github.com/acme/app",
    time: int | None = None,
    artifact: str = "artifact",
    subjects: tuple[tuple[str, str], ...] = (),
) -> SigningRecord:
    key = KeySigner("ecdsa", fp(f"key-{log}-{index}"), 256, "P-256")
    signer = CertificateSigner(
        sans=tuple(
            SubjectAltName(SanType.EMAIL if "@" in s and "://" not in s else SanType.URI, s)
            for s in sans
        ),
        issuer=issuer,
        extensions=(
            CertExtension("1.3.6.1.4.1.57264.1.12", "source-repository-uri", repo),
            CertExtension("1.3.6.1.4.1.57264.1.14", "source-repository-ref", "refs/heads/main"),
            CertExtension("2.5.29.15", None, "03020780", critical=True),
        ),
        serial="01",
        not_before=T0,
        not_after=T0 + timedelta(minutes=10),
        issuer_dn="O=sigstore.dev, CN=sigstore-intermediate",
        subject_dn="",
        fingerprint=fp(f"cert-{log}-{index}"),
        key=key,
    )
    return SigningRecord(
        log=log,
        index=index,
        kind="hashedrekord",
        api_version="0.0.1",
        integrated_time=time if time is not None else 1_760_000_000 + index,
        signers=(signer,),
        artifact_digests=(sha(artifact),),
        subjects=tuple(Subject(n, (sha(d),)) for n, d in subjects),
        raw_body=f'{{"kind":"hashedrekord","n":{index}}}'.encode(),
    )


def key_record(log: str, index: int, key_seed: str, time: int | None = None) -> SigningRecord:
    return SigningRecord(
        log=log,
        index=index,
        kind="rekord",
        api_version="0.0.1",
        integrated_time=time,
        signers=(KeySigner("ed25519", fp(key_seed), None, "Ed25519"),),
        artifact_digests=(sha(f"blob-{index}"),),
        raw_body=f"key entry {index}".encode(),
    )


def finding_for(
    r: SigningRecord,
    *,
    kind: FindingKind = FindingKind.UNEXPECTED_SIGNER,
    severity: Severity = Severity.HIGH,
    rule: str = "acme-release",
    at: datetime = T0,
) -> Finding:
    return Finding(
        kind=kind,
        severity=severity,
        dedup_key=dedup_key(kind, rule, r.log, r.index),
        rule=rule,
        log=r.log,
        index=r.index,
        matched=(("source-repository-uri", "https://github.com/acme/app"),),
        detail=f"entry {r.index} signed by an unexpected workflow",
        created_at=at,
    )


async def open_store(url: str) -> Store:
    return await Store.open(url)
