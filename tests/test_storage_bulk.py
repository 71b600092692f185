"""``store_batch`` with more rows than one statement holds: SQLite stores identity and
``index_all`` rows in multi-row INSERTs of at most ``_ROWS_PER_INSERT`` rows, so a batch of
several statements must store every row once, count each, clean every value, and add nothing
when stored again."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from monitor.storage import Batch, IndexRow, Store
from monitor.storage.base import _ROWS_PER_INSERT
from monitor.storage.cleaning import clean_text, value_hash
from monitor.storage.identities import identities
from tests.storage_support import (
    PgDatabases,
    cert_record,
    fresh_url,
    pg_databases_fixture,
    run,
)

LOG = "rekor.example"
ROWS = 2 * _ROWS_PER_INSERT + 37  # three statements, the last one short

pg_dbs = pytest.fixture(scope="session")(pg_databases_fixture)


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_batch_of_several_statements_stores_each_row_once(
    engine: str, tmp_path: Path, pg_dbs: PgDatabases
) -> None:
    url = fresh_url(engine, tmp_path, lambda: pg_dbs)
    # a NUL, an unpaired surrogate and a non-ASCII letter: cleaned the same on every path
    odd = ("caf\u00e9\x00", "x\udc80y")
    records = [
        cert_record(LOG, i, sans=(f"https://github.com/acme/app{i}/{odd[i % 2]}",))
        for i in range(ROWS)
    ]
    rows = tuple(IndexRow.from_record(r, 0) for r in records)

    async def go() -> None:
        store = await Store.open(url)
        try:
            await store.register_log(LOG, "v1", "https://rekor.example")
            first = await store.store_batch(
                Batch(LOG, ROWS, records=tuple(records), index_rows=rows)
            )
            again = await store.store_batch(
                Batch(LOG, ROWS, records=tuple(records), index_rows=rows)
            )
            async with store.engine.connect() as conn:
                n_index = (await conn.execute(text("SELECT count(*) FROM index_all"))).scalar()
                n_ident = (
                    await conn.execute(text("SELECT count(*) FROM entry_identities"))
                ).scalar()
                sans: dict[int, str] = dict(
                    (await conn.execute(text("SELECT idx, san FROM index_all"))).all()
                )
                hashes = {
                    h for (h,) in (await conn.execute(text("SELECT key_hash FROM index_all"))).all()
                }
        finally:
            await store.close()
        assert (first.entries, first.index_rows) == (ROWS, ROWS)
        assert (again.entries, again.index_rows) == (0, 0)
        assert n_index == ROWS
        assert n_ident == sum(len(set(identities(r))) for r in records) > 2 * ROWS
        assert sans[0] == "https://github.com/acme/app0/caf\u00e9\ufffd"
        assert sans[1] == clean_text("https://github.com/acme/app1/x\udc80y")
        assert "\udc80" not in sans[1]
        assert sans[1].startswith("https://github.com/acme/app1/x\ufffd")
        assert sans[ROWS - 1].startswith(f"https://github.com/acme/app{ROWS - 1}/")
        key_fps = {r.signers[0].key.fingerprint for r in records}  # type: ignore[union-attr]
        assert hashes == {value_hash(k) for k in key_fps}

    run(go)
