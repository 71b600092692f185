"""``Store`` from the outside: each consumer's narrow part of it (``monitor.storage.ports``),
and its operations timed under the names dashboards use."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Protocol

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from monitor.core.errors import StorageError
from monitor.storage import Batch, Store
from monitor.storage.base import operations
from monitor.storage.ports import (
    ApiStore,
    CatchUpStore,
    DeadLetters,
    FindingsReader,
    FindingsTriage,
    HealthStore,
    HistoryReader,
    ImageStore,
    LeaseStore,
    LogsReader,
    OutboxStore,
    Readiness,
    RetentionStore,
)
from tests.storage_support import T0, cert_record, run, sqlite_url

LOG = "rekor.example"
PACKAGE = Path(__file__).resolve().parent.parent / "monitor"
PORTS: tuple[type, ...] = (
    ApiStore,
    CatchUpStore,
    DeadLetters,
    FindingsReader,
    FindingsTriage,
    HealthStore,
    HistoryReader,
    ImageStore,
    LeaseStore,
    LogsReader,
    OutboxStore,
    Readiness,
    RetentionStore,
)


def parts(
    store: Store,
) -> tuple[
    ApiStore,
    CatchUpStore,
    DeadLetters,
    FindingsReader,
    FindingsTriage,
    HealthStore,
    HistoryReader,
    ImageStore,
    LeaseStore,
    LogsReader,
    OutboxStore,
    Readiness,
    RetentionStore,
]:
    """The static check (mypy): a ``Store`` is every consumer's part."""
    return store, store, store, store, store, store, store, store, store, store, store, store, store


def store_importers() -> set[str]:
    """The modules outside ``monitor.storage`` that import ``Store`` itself."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if module.startswith("monitor.storage"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (
                node.module == "monitor.storage.store"
                or (node.module == "monitor.storage" and any(a.name == "Store" for a in node.names))
            ):
                found.add(module)
    return found


def test_only_who_opens_the_database_holds_the_store() -> None:
    # everyone else takes their part (monitor.storage.ports): the pass CatchUpStore,
    # delivery OutboxStore, the API ApiStore, health HealthStore, the CLI's readers theirs
    assert store_importers() == {"monitor.daemon.service", "monitor.cli.database"}


def members(port: type) -> set[str]:
    """The public members a protocol declares, its bases' included."""
    own = (c for c in port.__mro__ if Protocol in c.__bases__)
    return {name for c in own for name in vars(c) if not name.startswith("_")}


@pytest.mark.parametrize("port", PORTS, ids=lambda p: p.__name__)
def test_the_store_has_each_member_of_each_part_as_declared(port: type, tmp_path: Path) -> None:
    # the run-time twin of ``parts``: a member renamed or a parameter changed on one side
    # only fails here too, not only under mypy
    engine = create_async_engine(sqlite_url(tmp_path))  # never connected
    store = Store(engine)
    assert members(port)
    for name in members(port):
        declared, real = getattr(port, name), getattr(store, name, None)
        assert real is not None, f"Store has no {name} ({port.__name__})"
        if isinstance(declared, property):
            assert not callable(real), name
            continue
        assert inspect.iscoroutinefunction(real), name
        want = inspect.signature(declared).parameters.values()
        got = inspect.signature(getattr(Store, name)).parameters.values()
        shape = [(p.name, p.kind, p.default) for p in want]
        assert shape == [(p.name, p.kind, p.default) for p in got], f"{port.__name__}.{name}"


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
