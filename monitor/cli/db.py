"""``tlog-monitor db``: create or migrate the monitor's database. Also the database options
shared by the commands that read it (``history``, ``findings``)."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from monitor.errors import StorageError
from monitor.storage.urls import URL_ENV, default_url

if TYPE_CHECKING:
    from monitor.storage import Store

T = TypeVar("T")


def add_database_options(p: argparse.ArgumentParser, flag: str = "--db") -> None:
    p.add_argument(
        flag,
        dest="db_url",
        metavar="URL",
        help=(
            "database URL: sqlite:///FILE (or a file path) or postgresql://USER@HOST/DB "
            f"(default: the config's database, else ${URL_ENV}, else {default_url()})"
        ),
    )
    p.add_argument("--config", metavar="FILE", help="read the database URL from this config")


def add_page_options(p: argparse.ArgumentParser) -> None:
    """What every command reading pages from the database takes."""
    p.add_argument("--limit", type=int, default=50, help="page size (default 50, at most 1000)")
    p.add_argument("--cursor", help="the next_cursor a previous page printed")
    p.add_argument("--json", action="store_true", help="one JSON document: items, next_cursor")
    add_database_options(p)


def database_url(args: argparse.Namespace) -> str:
    """--db, else the database of --config, else $TLOG_MONITOR_DB, else the default."""
    if args.db_url:
        return str(args.db_url)
    if args.config:
        from monitor.config import load_settings

        url = load_settings(args.config).database.sqlalchemy_url()
        return url.render_as_string(hide_password=False)
    return os.environ.get(URL_ENV) or default_url()


def existing_database_url(args: argparse.Namespace) -> str:
    """``database_url``, refusing a SQLite file that does not exist (reading commands must
    not create an empty database)."""
    from monitor.storage.engine import normalize_url

    url = database_url(args)
    u = normalize_url(url)
    if u.get_backend_name() == "sqlite" and not Path(u.database or "").is_file():
        raise StorageError(f"no database at {u.database}: run `tlog-monitor db upgrade` first")
    return url


def read_store(url: str, query: Callable[[Store], Awaitable[T]]) -> T:
    """Open an existing database read-only in spirit (no migration), run one query, close."""

    async def go() -> T:
        from monitor.storage import Store

        store = await Store.open(url, migrate=False)
        try:
            return await query(store)
        finally:
            await store.close()

    return asyncio.run(go())


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "db",
        help="create or migrate the database",
        description="Manage the monitor's database schema (Alembic migrations).",
    )
    actions = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)

    up = actions.add_parser("upgrade", help="migrate the schema to the latest revision")
    add_database_options(up, "--url")
    up.add_argument("--revision", default="head", help="target revision (default: head)")
    up.set_defaults(handler=run_upgrade)

    down = actions.add_parser("downgrade", help="migrate the schema back to a revision")
    down.add_argument("revision", help="target revision ('base' drops every table)")
    add_database_options(down, "--url")
    down.set_defaults(handler=run_downgrade)

    cur = actions.add_parser("current", help="print the schema revision of the database")
    add_database_options(cur, "--url")
    cur.set_defaults(handler=run_current)


async def _migrate(url: str, revision: str, *, down: bool) -> str | None:
    from monitor.storage import engine as engines

    eng = engines.make_engine(url)
    try:
        if down:
            await engines.downgrade(eng, revision)
        else:
            await engines.upgrade(eng, revision)
        return await engines.revision_of(eng)
    finally:
        await eng.dispose()


def _run(args: argparse.Namespace, *, down: bool) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    try:
        now = asyncio.run(_migrate(database_url(args), args.revision, down=down))
    except (SQLAlchemyError, OSError) as e:
        raise StorageError(f"migration failed: {e}") from e
    print(f"database at revision {now or 'base'}")
    return 0


def run_upgrade(args: argparse.Namespace) -> int:
    return _run(args, down=False)


def run_downgrade(args: argparse.Namespace) -> int:
    return _run(args, down=True)


def run_current(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from monitor.storage import engine as engines

    async def current() -> tuple[str | None, str]:
        eng = engines.make_engine(database_url(args))
        try:
            return await engines.revision_of(eng), engines.head_revision()
        finally:
            await eng.dispose()

    try:
        rev, head = asyncio.run(current())
    except (SQLAlchemyError, OSError) as e:
        raise StorageError(f"cannot read the database: {e}") from e
    print(f"database at revision {rev or 'base'}; latest is {head}")
    return 0 if rev == head else 1
