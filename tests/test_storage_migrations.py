"""Models and migrations stay in step, on both engines; every revision downgrades."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Connection, Index, Integer, MetaData, Table, inspect, text

from monitor.cli.database import sqlite_file
from monitor.cli.main import main
from monitor.storage import engine as engines
from monitor.storage.batch import Batch
from monitor.storage.history_query import HistoryQuery
from monitor.storage.indexrow import IndexRow
from monitor.storage.models import metadata, of_engine
from monitor.storage.store import Store
from tests.storage_support import ENGINES, fresh_url, pg_databases_fixture, run

pg_dbs = pytest.fixture(scope="session")(pg_databases_fixture)


def _diff(conn: Connection, target: MetaData) -> list[Any]:
    opts = {"compare_type": True, "include_object": of_engine(conn.dialect.name)}
    ctx = MigrationContext.configure(conn, opts=opts)
    with warnings.catch_warnings():
        # SQLite's indexes on an expression (index_all's chunked ones) cannot be reflected,
        # hence not compared: test_storage_chunks checks them
        warnings.filterwarnings("ignore", message=".*expression-based index")
        return list(compare_metadata(ctx, target))


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


async def _inspect(url: str, target: MetaData = metadata) -> tuple[list[Any], set[str]]:
    eng = engines.make_engine(url)
    try:
        async with eng.connect() as conn:
            return await conn.run_sync(_diff, target), await conn.run_sync(_tables)
    finally:
        await eng.dispose()


@pytest.fixture(params=ENGINES)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_url(request.param, tmp_path, lambda: request.getfixturevalue("pg_dbs"))


def test_migrations_match_the_models_and_downgrade(
    empty_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    file = sqlite_file(empty_url)
    if file is None:  # PostgreSQL: an empty database, at no revision yet
        assert main(["db", "current", "--db", empty_url]) == 1
    else:  # SQLite: no file yet, and `current` creates none
        assert main(["db", "current", "--db", empty_url]) == 2
        assert "no database at" in capsys.readouterr().err
        assert not file.exists()
    assert main(["db", "upgrade", "--db", empty_url]) == 0
    assert "revision 0014" in capsys.readouterr().out
    assert main(["db", "current", "--db", empty_url]) == 0

    diffs, tables = run(lambda: _inspect(empty_url))
    assert diffs == []
    assert set(metadata.tables) <= tables

    # the comparison is live: a model the migrations lack is a difference
    drifted = MetaData()
    for t in metadata.tables.values():
        copy = t.to_metadata(drifted)
        # the copy drops ``ddl_if`` (which engine an index is for: index_all's chunked
        # indexes have one name and other columns on each)
        engine_of = {(i.name, str(list(map(str, i.expressions)))): i._ddl_if for i in t.indexes}
        for i in copy.indexes:
            i._ddl_if = engine_of[(i.name, str(list(map(str, i.expressions))))]
    Index("ix_extra", drifted.tables["entries"].c.kind)
    Table("extra", drifted, Column("id", Integer, primary_key=True))
    diffs, _ = run(lambda: _inspect(empty_url, drifted))
    assert {d[0] for d in diffs} == {"add_index", "add_table"}

    assert main(["db", "downgrade", "base", "--db", empty_url]) == 0
    _, tables = run(lambda: _inspect(empty_url))
    assert tables <= {"alembic_version"}

    assert main(["db", "upgrade", "--db", empty_url]) == 0
    diffs, tables = run(lambda: _inspect(empty_url))
    assert diffs == []
    assert set(metadata.tables) <= tables


def test_migration_scripts_are_found() -> None:
    with engines.migrations_dir() as d:
        assert (d / "env.py").is_file()
        assert any((d / "versions").glob("0001_*.py"))
        assert any((d / "versions").glob("0014_*.py"))
    assert engines.head_revision() == "0014"


def test_urls_are_mapped_to_async_drivers(tmp_path: Path) -> None:
    assert engines.normalize_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    assert engines.normalize_url(str(tmp_path / "m.db")).database == str(tmp_path / "m.db")
    pg = engines.normalize_url("postgresql://u@h/db")
    assert (pg.drivername, pg.database) == ("postgresql+asyncpg", "db")
    assert engines.normalize_url("postgres://u@h/db").drivername == "postgresql+asyncpg"


@pytest.mark.parametrize("bad", ["mysql://u@h/db", "sqlite://", "sqlite:///:memory:"])
def test_unusable_urls_are_refused(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade", "--db", bad]) == 2
    assert "error" in capsys.readouterr().err


def test_unknown_revisions_are_one_line_errors(
    empty_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["upgrade", "--revision", "0099"], ["downgrade", "nope"]):
        assert main(["db", *argv, "--db", empty_url]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert "unknown revision" in err
        assert "0001, 0002" in err  # what may be given instead
    assert main(["db", "upgrade", "--db", empty_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"revision": "0014"}
    assert main(["db", "current", "--db", empty_url, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == {"revision": "0014", "latest": "0014", "up_to_date": True}
    assert main(["db", "downgrade", "0006", "--db", empty_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"revision": "0006"}
    assert main(["db", "current", "--db", empty_url, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["up_to_date"] is False


def test_expected_uses_become_records_and_the_downgrade_opens_them(empty_url: str) -> None:
    """0007: stored expected uses leave the open queue (recorded); resolved ones and other
    kinds keep their state; the downgrade opens the recorded ones again."""
    rows = [
        ("a", "expected_use", "open"),
        ("b", "expected_use", "acknowledged"),
        ("c", "expected_use", "resolved"),
        ("d", "unexpected_signer", "open"),
    ]

    async def states(eng: Any) -> dict[str, str]:
        async with eng.connect() as conn:
            found = await conn.execute(text("SELECT dedup_key, state FROM findings"))
            return {str(k): str(v) for k, v in found.all()}

    async def body() -> tuple[dict[str, str], dict[str, str]]:
        eng = engines.make_engine(empty_url)
        try:
            await engines.upgrade(eng, "0006")
            async with eng.begin() as conn:
                await conn.execute(
                    text("INSERT INTO findings (kind, severity, dedup_key, state, created_at, "
                         "matched, unmet, detail) VALUES (:kind, 3, :key, :state, "
                         "CURRENT_TIMESTAMP, '[]', '[]', '')"),
                    [{"key": k, "kind": kind, "state": st} for k, kind, st in rows],
                )  # fmt: skip
            await engines.upgrade(eng, "0008")
            up = await states(eng)
            await engines.downgrade(eng, "0006")
            return up, await states(eng)
        finally:
            await eng.dispose()

    up, down = run(body)
    assert up == {"a": "recorded", "b": "recorded", "c": "resolved", "d": "open"}
    assert down == {"a": "open", "b": "open", "c": "resolved", "d": "open"}


OLD_ROWS = [  # index_all rows as revision 0003 kept them: (log, idx, san, key, digest)
    ("log-b", 7, "b@example.com", "sha256:" + "ab" * 32, "sha256:" + "01" * 32),
    ("log-a", 3, "a@example.com", None, "sha256:" + "02" * 32),
    ("log-a", 1, None, "sha256:" + "cd" * 32, None),
    # more than one batch of the migration's copy (10,000), so that it pages within a log
    *(("log-c", i, f"c{i % 7}@example.com", None, f"sha256:{i:064x}") for i in range(12_345)),
]


async def _old_rows(url: str, revision: str) -> list[tuple[Any, ...]]:
    """Migrate to ``revision`` with the 0003 rows in place, then read them back by log name."""
    eng = engines.make_engine(url)
    try:
        await engines.upgrade(eng, "0003")
        async with eng.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO index_all (log, idx, time, kind, san, issuer, "
                    "key_fingerprint, digest) VALUES (:log, :idx, 100, 'hashedrekord', "
                    ":san, NULL, :key, :digest)"
                ),
                [
                    {"log": log, "idx": idx, "san": san, "key": key, "digest": digest}
                    for log, idx, san, key, digest in OLD_ROWS
                ],
            )
        await engines.upgrade(eng, revision)
        async with eng.connect() as conn:
            if revision == "0003":
                sql = "SELECT log, idx, san, key_fingerprint, digest FROM index_all"
            else:
                sql = (
                    "SELECT l.log, i.idx, i.san, i.key_fingerprint, i.digest "
                    "FROM index_all i JOIN index_all_logs l ON l.id = i.log_id"
                )
            return sorted(tuple(r) for r in (await conn.execute(text(sql))).all())
    finally:
        await eng.dispose()


def test_compacting_index_all_keeps_every_row_findable_and_downgrades(empty_url: str) -> None:
    assert run(lambda: _old_rows(empty_url, engines.head_revision())) == sorted(OLD_ROWS)

    async def queries() -> None:
        store = await Store.open(empty_url, migrate=False)
        try:
            for q, want in [
                (HistoryQuery(fingerprint=OLD_ROWS[0][3]), [("log-b", 7)]),
                (HistoryQuery(fingerprint=OLD_ROWS[2][3]), [("log-a", 1)]),
                (HistoryQuery(digest=OLD_ROWS[1][4]), [("log-a", 3)]),
                (HistoryQuery(san="b@example.com"), [("log-b", 7)]),
                (HistoryQuery(log="log-a"), [("log-a", 1), ("log-a", 3)]),
                (HistoryQuery(digest=f"sha256:{12_344:064x}"), [("log-c", 12_344)]),
                (
                    HistoryQuery(log="log-c", index_min=9_999, limit=2),
                    [("log-c", 9_999), ("log-c", 10_000)],
                ),
            ]:
                page = await store.history(replace(q, all_entries=True))
                assert [(e.log, e.index) for e in page.items] == want, q
            # new rows of a migrated log take its number
            rows = (IndexRow("log-a", 9, 100, "hashedrekord", digest="sha256:" + "03" * 32),)
            await store.register_log("log-a", "v2", "https://example.test")
            await store.store_batch(Batch("log-a", 10, index_rows=rows))
            page = await store.history(HistoryQuery(log="log-a", all_entries=True))
            assert [e.index for e in page.items] == [1, 3, 9]
        finally:
            await store.close()

    run(queries)
    assert main(["db", "downgrade", "0003", "--db", empty_url]) == 0

    async def old() -> list[tuple[Any, ...]]:
        eng = engines.make_engine(empty_url)
        try:
            async with eng.connect() as conn:
                sql = "SELECT log, idx, san, key_fingerprint, digest FROM index_all"
                return sorted(tuple(r) for r in (await conn.execute(text(sql))).all())
        finally:
            await eng.dispose()

    rows = run(old)
    assert len(rows) == len(OLD_ROWS) + 1
    assert [r[:2] for r in rows[:4]] == [("log-a", 1), ("log-a", 3), ("log-a", 9), ("log-b", 7)]
    assert rows[-1] == ("log-c", 12_344, "c3@example.com", None, f"sha256:{12_344:064x}")


def test_checkpoints_per_origin_and_the_downgrade_keeps_the_first(empty_url: str) -> None:
    """0005: one tree signed under two origins (a renamed Rekor v1 pod) is two rows; going back
    to 0004 keeps the first of them."""

    async def body() -> list[tuple[Any, ...]]:
        eng = engines.make_engine(empty_url)
        try:
            await engines.upgrade(eng, "0005")
            async with eng.begin() as conn:
                await conn.execute(
                    text("INSERT INTO logs (name, api, url, cursor, compact_size, "
                         "compact_hashes, updated_at) VALUES ('v1', 'v1', 'http://x', 0, 0, "
                         ":empty, CURRENT_TIMESTAMP)"),
                    {"empty": b""},
                )  # fmt: skip
                await conn.execute(
                    text("INSERT INTO checkpoints (log, origin, size, root, raw, verified, "
                         "seen_at) VALUES ('v1', :origin, 5, :root, :origin, true, "
                         "CURRENT_TIMESTAMP)"),
                    [{"origin": o, "root": b"\x01" * 32} for o in ("pod-a - 1", "pod-b - 1")],
                )  # fmt: skip
            await engines.downgrade(eng, "0004")
            async with eng.connect() as conn:
                rows = await conn.execute(text("SELECT origin, size FROM checkpoints"))
                return [tuple(r) for r in rows.all()]
        finally:
            await eng.dispose()

    assert run(body) == [("pod-a - 1", 5)]


def test_0010_adds_the_image_tables_and_findings_keep_across_it(empty_url: str) -> None:
    """0010: findings stored before it read back with no image; the downgrade drops the image
    tables and the column, and keeps the findings."""

    async def body() -> tuple[list[Any], list[Any], set[str]]:
        eng = engines.make_engine(empty_url)
        try:
            await engines.upgrade(eng, "0009")
            async with eng.begin() as conn:
                await conn.execute(
                    text("INSERT INTO findings (kind, severity, dedup_key, state, created_at, "
                         "matched, unmet, detail) VALUES ('health', 1, 'k', 'open', "
                         "CURRENT_TIMESTAMP, '[]', '[]', '')"),
                )  # fmt: skip
            await engines.upgrade(eng, "0010")
            async with eng.connect() as conn:
                up = list((await conn.execute(text("SELECT dedup_key, image FROM findings"))).all())
            await engines.downgrade(eng, "0009")
            async with eng.connect() as conn:
                down = list((await conn.execute(text("SELECT dedup_key FROM findings"))).all())
                tables = await conn.run_sync(_tables)
            return up, down, tables
        finally:
            await eng.dispose()

    up, down, tables = run(body)
    assert [tuple(r) for r in up] == [("k", None)]
    assert [tuple(r) for r in down] == [("k",)]
    assert not tables & {"image_digests", "image_signatures", "image_scans"}
