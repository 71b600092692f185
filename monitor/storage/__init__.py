"""Storage: SQLite by default, PostgreSQL at scale, behind ``Store``; each consumer takes the
narrow part of it that it needs (``ports``).

Names load on first use, so that importing ``monitor.storage.urls`` (the CLI does, at start)
does not load SQLAlchemy and Alembic.

Above logclient, beside bundles (neither imports the other): may import everything below it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.storage.backfills import BackfillState
    from monitor.storage.batch import Batch, BatchResult, OutboxSpec
    from monitor.storage.findings_store import FindingQuery, StoredFinding
    from monitor.storage.history import IndexedEntry, StoredEntry
    from monitor.storage.history_query import HistoryQuery
    from monitor.storage.images import (
        ImageDigestRecord,
        ImageScanRecord,
        ImageSignatureRecord,
        StoredImageDigest,
        StoredImageLink,
    )
    from monitor.storage.indexrow import IndexRow
    from monitor.storage.logs_state import CheckpointData, LogState
    from monitor.storage.outbox import OutboxItem
    from monitor.storage.paging import Page
    from monitor.storage.store import Store

__all__ = [
    "BackfillState",
    "Batch",
    "BatchResult",
    "CheckpointData",
    "FindingQuery",
    "HistoryQuery",
    "ImageDigestRecord",
    "ImageScanRecord",
    "ImageSignatureRecord",
    "IndexRow",
    "IndexedEntry",
    "LogState",
    "OutboxItem",
    "OutboxSpec",
    "Page",
    "Store",
    "StoredEntry",
    "StoredFinding",
    "StoredImageDigest",
    "StoredImageLink",
]


# where each public name is defined (a module of this package)
_HOMES = {
    "BackfillState": "backfills",
    "Batch": "batch",
    "BatchResult": "batch",
    "IndexRow": "indexrow",
    "OutboxSpec": "batch",
    "FindingQuery": "findings_store",
    "StoredFinding": "findings_store",
    "IndexedEntry": "history",
    "StoredEntry": "history",
    "HistoryQuery": "history_query",
    "ImageDigestRecord": "images",
    "ImageScanRecord": "images",
    "ImageSignatureRecord": "images",
    "StoredImageDigest": "images",
    "StoredImageLink": "images",
    "CheckpointData": "logs_state",
    "LogState": "logs_state",
    "OutboxItem": "outbox",
    "Page": "paging",
    "Store": "store",
}


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module(f"monitor.storage.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
