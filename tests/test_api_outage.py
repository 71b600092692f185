"""The API when its database goes away (PostgreSQL): readiness and queries answer 503, not 500,
and liveness stays 200."""

from __future__ import annotations

from pathlib import Path

from monitor.storage.store import Store
from tests.api_support import served
from tests.daemon_support import pg_dbs
from tests.simlog import run
from tests.storage_support import PgDatabases, _admin, fresh_url

__all__ = ["pg_dbs"]

ENTRIES = "/api/v1/entries"


def test_a_database_outage_is_503_not_500(tmp_path: Path, pg_dbs: PgDatabases) -> None:
    url = fresh_url("postgresql", tmp_path, lambda: pg_dbs)
    name = url.rsplit("/", 1)[1]

    async def body() -> None:
        await (await Store.open(url)).close()  # the schema, then the outage
        async with served(url) as c:
            assert (await c.get("/readyz", token=None))[0] == 200
            await _admin(f'DROP DATABASE "{name}" WITH (FORCE)')
            status, doc = await c.get("/readyz", token=None)
            assert status == 503
            assert doc["database"] == "database_unavailable"
            status, doc = await c.get(ENTRIES, {"san": "a@b.c"})
            assert status == 503
            assert doc["error"]["code"] == "database_unavailable"
            assert (await c.get("/healthz", token=None))[0] == 200  # the process is alive

    run(body)
