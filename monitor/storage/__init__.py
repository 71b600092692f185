"""Storage: SQLite by default, PostgreSQL at scale, behind the narrow ``Store`` interface.

Names load on first use, so that importing ``monitor.storage.urls`` (the CLI does, at start)
does not load SQLAlchemy and Alembic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.storage.store import (
        Batch,
        BatchResult,
        CheckpointData,
        FindingQuery,
        HistoryQuery,
        IndexedEntry,
        IndexRow,
        LogState,
        OutboxItem,
        OutboxSpec,
        Page,
        Store,
        StoredEntry,
        StoredFinding,
    )

__all__ = [
    "Batch",
    "BatchResult",
    "CheckpointData",
    "FindingQuery",
    "HistoryQuery",
    "IndexRow",
    "IndexedEntry",
    "LogState",
    "OutboxItem",
    "OutboxSpec",
    "Page",
    "Store",
    "StoredEntry",
    "StoredFinding",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("monitor.storage.store"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
