"""``Store`` from the outside: its operations timed under the names dashboards use."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.core.errors import StorageError
from monitor.storage import Batch, Store
from monitor.storage.base import operations
from tests.storage_support import T0, cert_record, run, sqlite_url

LOG = "rekor.example"


def test_each_timed_operation_tells_its_name_and_time(tmp_path: Path) -> None:
    told: list[tuple[str, float]] = []

    async def go() -> None:
        store = await Store.open(sqlite_url(tmp_path))
        store.timing = lambda operation, seconds: told.append((operation, seconds))
        try:
            await store.register_log(LOG, "v1", "https://rekor.example")
            await store.store_batch(Batch(LOG, 2, records=(cert_record(LOG, 0),), at=T0))
            await store.log_state(LOG)
            await store.log_names()  # a name lookup is not timed
            # a failure is timed too (a record of another log in the batch)
            with pytest.raises(StorageError):
                await store.store_batch(Batch(LOG, 3, records=(cert_record("other", 1),)))
        finally:
            await store.close()

    run(go)
    assert [op for op, _ in told] == ["log_state", "commit_batch", "log_state", "commit_batch"]
    assert all(0 <= seconds < 60 for _, seconds in told)


def test_the_timed_operations_are_the_metrics_labels() -> None:
    # dashboards and alert rules name these (config/grafana, config/prometheus)
    timed = operations(Store)
    assert timed["store_batch"] == "commit_batch"
    assert timed["register_log"] == timed["log_state"] == "log_state"
    assert timed["pending_outbox"] == "outbox_due"
    assert timed["mark_delivered"] == timed["record_attempt"] == "outbox_mark"
    assert "log_names" not in timed
    assert "close" not in timed
