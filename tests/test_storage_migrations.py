"""Models and migrations stay in step, on both engines; every revision downgrades."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Connection, Index, Integer, MetaData, Table, inspect

from monitor.cli.main import main
from monitor.storage import engine as engines
from monitor.storage.models import metadata
from tests.storage_support import ENGINES, fresh_url, pg_databases_fixture, run

pg_dbs = pytest.fixture(scope="session")(pg_databases_fixture)


def _diff(conn: Connection, target: MetaData) -> list[Any]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True})
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
    assert main(["db", "current", "--url", empty_url]) == 1
    assert main(["db", "upgrade", "--url", empty_url]) == 0
    assert "revision 0003" in capsys.readouterr().out
    assert main(["db", "current", "--url", empty_url]) == 0

    diffs, tables = run(lambda: _inspect(empty_url))
    assert diffs == []
    assert set(metadata.tables) <= tables

    # the comparison is live: a model the migrations lack is a difference
    drifted = MetaData()
    for t in metadata.tables.values():
        t.to_metadata(drifted)
    Index("ix_extra", drifted.tables["entries"].c.kind)
    Table("extra", drifted, Column("id", Integer, primary_key=True))
    diffs, _ = run(lambda: _inspect(empty_url, drifted))
    assert {d[0] for d in diffs} == {"add_index", "add_table"}

    assert main(["db", "downgrade", "base", "--url", empty_url]) == 0
    _, tables = run(lambda: _inspect(empty_url))
    assert tables <= {"alembic_version"}

    assert main(["db", "upgrade", "--url", empty_url]) == 0
    diffs, tables = run(lambda: _inspect(empty_url))
    assert diffs == []
    assert set(metadata.tables) <= tables


def test_migration_scripts_are_found() -> None:
    with engines.migrations_dir() as d:
        assert (d / "env.py").is_file()
        assert any((d / "versions").glob("0001_*.py"))
        assert any((d / "versions").glob("0003_*.py"))
    assert engines.head_revision() == "0003"


def test_urls_are_mapped_to_async_drivers(tmp_path: Path) -> None:
    assert engines.normalize_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    assert engines.normalize_url(str(tmp_path / "m.db")).database == str(tmp_path / "m.db")
    pg = engines.normalize_url("postgresql://u@h/db")
    assert (pg.drivername, pg.database) == ("postgresql+asyncpg", "db")
    assert engines.normalize_url("postgres://u@h/db").drivername == "postgresql+asyncpg"


@pytest.mark.parametrize("bad", ["mysql://u@h/db", "sqlite://", "sqlite:///:memory:"])
def test_unusable_urls_are_refused(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade", "--url", bad]) == 2
    assert "error" in capsys.readouterr().err
