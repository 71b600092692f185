"""Which database a command reads (``--db``, ``--config`` or the default) and reading it:
the commands that only read need the ``database`` section of a configuration, nothing else."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from monitor.core.errors import StorageError
from monitor.storage.urls import URL_ENV, default_url

if TYPE_CHECKING:
    from monitor.storage import Store

T = TypeVar("T")


def database_url(args: argparse.Namespace) -> str:
    """--db, else the database of --config, else $TLOG_MONITOR_DB, else the default."""
    if args.db_url:
        return str(args.db_url)
    if args.config:
        from monitor.config.load import load_database_settings

        url = load_database_settings(args.config).sqlalchemy_url()
        return url.render_as_string(hide_password=False)
    return os.environ.get(URL_ENV) or default_url()


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for another database."""
    from monitor.storage.engine import normalize_url

    u = normalize_url(url)
    return Path(u.database or "") if u.get_backend_name() == "sqlite" else None


def existing_database_url(args: argparse.Namespace) -> str:
    """``database_url``, refusing a SQLite file that does not exist: reading commands must
    not create an empty database (and must not answer from one)."""
    url = database_url(args)
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        raise StorageError(f"no database at {path} (`tlog-monitor db upgrade` creates one)")
    return url


@asynccontextmanager
async def opened_store(url: str) -> AsyncIterator[Store]:
    """An existing database, open (no migration: only ``db upgrade`` changes the schema)
    until the block ends. Callers hand on the narrow part they need
    (``monitor.storage.ports``)."""
    from monitor.storage import Store

    store = await Store.open(url, migrate=False)
    try:
        yield store
    finally:
        await store.close()


def with_store(url: str, query: Callable[[Store], Awaitable[T]]) -> T:
    """``opened_store`` for one ``query``, run to its end."""

    async def go() -> T:
        async with opened_store(url) as store:
            return await query(store)

    return asyncio.run(go())


@dataclass(frozen=True)
class Declared:
    """What a configuration names (read leniently, nothing validated): so that a rule or a
    sink that exists but has no finding or alert yet is not called unknown."""

    rules: tuple[str, ...] = ()
    sinks: tuple[str, ...] = ()
    logs: tuple[str, ...] = ()


def declared(args: argparse.Namespace) -> Declared:
    if not getattr(args, "config", None):
        return Declared()
    from monitor.config.load import declared_names

    names = declared_names(args.config)
    return Declared(names["watch"], names["alerts.sinks"], names["logs"])
