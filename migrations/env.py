"""Alembic environment of tlog-monitor.

Run from the package (``tlog-monitor db upgrade``, or the daemon at start): the caller passes
an open connection in ``config.attributes["connection"]`` and owns the transaction. Run from
the ``alembic`` command line (``alembic -x url=postgresql://... upgrade head``): this file
makes an async engine from ``-x url=``, ``sqlalchemy.url`` or ``$TLOG_MONITOR_DB``.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from monitor.storage.engine import make_engine
from monitor.storage.models import metadata, of_engine
from monitor.storage.urls import default_url

config = context.config


def _url() -> str:
    return (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
        or default_url()
    )


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=of_engine(connection.dialect.name),
    )


def run_with(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_async() -> None:
    engine = make_engine(_url())
    try:
        async with engine.connect() as plain:
            conn = await plain.execution_options(tlog_write=True)
            async with conn.begin():
                await conn.run_sync(run_with)
    finally:
        await engine.dispose()


def run_offline() -> None:
    context.configure(
        url=_url().replace("+aiosqlite", "").replace("+asyncpg", ""),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    shared = config.attributes.get("connection")
    if shared is not None:
        run_with(shared)
    else:
        if config.config_file_name is not None:
            fileConfig(config.config_file_name)
        asyncio.run(run_async())
