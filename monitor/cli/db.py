"""``tlog-monitor db``: create or migrate the monitor's database, or say where it stands."""

from __future__ import annotations

import argparse
import asyncio
import json

from monitor.cli.database import database_url, sqlite_file
from monitor.cli.options import add_database, add_json
from monitor.core.errors import StorageError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "db",
        help="create or migrate the database",
        description=(
            "Manage the monitor's database schema (Alembic migrations): bring it to the "
            "latest revision, back to an earlier one, or say which it is at."
        ),
    )
    actions = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)

    up = actions.add_parser(
        "upgrade",
        help="migrate the schema to the latest revision",
        description="Migrate the schema to the latest revision (or --revision); a SQLite "
        "database that does not exist is created.",
    )
    add_database(up)
    up.add_argument(
        "--revision", default="head", metavar="REV", help="target revision (default: head)"
    )
    add_json(up)
    up.set_defaults(handler=run_upgrade)

    down = actions.add_parser(
        "downgrade",
        help="migrate the schema back to a revision",
        description="Migrate the schema back to REV, undoing the later migrations.",
    )
    down.add_argument(
        "revision", metavar="REV", help="target revision, e.g. 0006 ('base' drops every table)"
    )
    add_database(down)
    add_json(down)
    down.set_defaults(handler=run_downgrade)

    cur = actions.add_parser(
        "current",
        help="print the schema revision of the database",
        description="Print the schema revision of the database and the latest one; exit 0 "
        "when they are the same, 1 when the database needs `db upgrade`. Creates nothing.",
    )
    add_database(cur)
    add_json(cur)
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


def _revisions() -> str:
    from monitor.storage import engine as engines

    return ", ".join(["base", *engines.revisions(), "head"])


def _run(args: argparse.Namespace, *, down: bool) -> int:
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    url = database_url(args)
    path = sqlite_file(url)
    if down and path is not None and not path.is_file():
        raise StorageError(f"no database at {path}: nothing to downgrade")
    try:
        now = asyncio.run(_migrate(url, args.revision, down=down))
    except CommandError:
        # Alembic's message is about its own scripts: say what the user can give instead
        raise StorageError(f"unknown revision {args.revision!r}: one of {_revisions()}") from None
    except (SQLAlchemyError, OSError) as e:
        raise StorageError(f"migration failed: {e}") from e
    if args.json:
        print(json.dumps({"revision": now}))
    else:
        print(f"database at revision {now or 'base'}")
    return 0


def run_upgrade(args: argparse.Namespace) -> int:
    return _run(args, down=False)


def run_downgrade(args: argparse.Namespace) -> int:
    return _run(args, down=True)


def run_current(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from monitor.storage import engine as engines

    url = database_url(args)
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        # opening it would create an empty file: say so instead
        raise StorageError(f"no database at {path} (`tlog-monitor db upgrade` creates one)")

    async def current() -> tuple[str | None, str]:
        eng = engines.make_engine(url)
        try:
            return await engines.revision_of(eng), engines.head_revision()
        finally:
            await eng.dispose()

    try:
        rev, head = asyncio.run(current())
    except (SQLAlchemyError, OSError) as e:
        raise StorageError(f"cannot read the database: {e}") from e
    if args.json:
        print(json.dumps({"revision": rev, "latest": head, "up_to_date": rev == head}))
    else:
        print(f"database at revision {rev or 'base'}; latest is {head}")
    return 0 if rev == head else 1
