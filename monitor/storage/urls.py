"""Database URL defaults, importable without loading SQLAlchemy (the CLI starts quickly)."""

from __future__ import annotations

import os

DEFAULT_URL = "sqlite+aiosqlite:///data/monitor.db"  # = monitor.config's default
URL_ENV = "TLOG_MONITOR_DB"


def default_url() -> str:
    """``$TLOG_MONITOR_DB``, else the default SQLite file."""
    return os.environ.get(URL_ENV) or DEFAULT_URL
