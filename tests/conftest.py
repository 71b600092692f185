"""Shared test fixtures: paths to the real production data copied from ../shared/fixtures;
the ``pg`` marker on every test that uses the PostgreSQL test server; the test databases
dropped together at the end."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
STAGING_ROOT = FIXTURES / "trust" / "trusted_root.staging.json"
PROD_ROOT = FIXTURES / "trust" / "trusted_root.prod.json"
PROD_LOGINFO = FIXTURES / "v1-api" / "loginfo.prod.RECONSTRUCTED.json"


def evidence_files() -> list[Path]:
    """Every bundle, LogEntry, LogInfo and v2 entry fixture."""
    return sorted(p for d in ("v1-bundles", "v1-api", "v2") for p in (FIXTURES / d).glob("*.json"))


def trust_args(path: Path) -> list[str]:
    """verify-bundle options for a fixture: staging ones need the staging trusted root."""
    return ["--trusted-root", str(STAGING_ROOT)] if "staging" in path.name else []


@pytest.fixture
def issue_file(tmp_path: Path) -> Path:
    """The configuration from issue 5, verbatim, in a file (for the configuration tests)."""
    from tests.config_support import ISSUE_YAML  # the configuration (pydantic) only if asked

    path = tmp_path / "monitor.yaml"
    path.write_text(ISSUE_YAML)
    return path


def json_paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON document (the document itself first), for mutation tests."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += json_paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += json_paths(v, (*prefix, i))
    return out


PG_FIXTURES = {"pg_dbs", "pg_shared"}


def pytest_itemcollected(item: pytest.Item) -> None:
    """Mark ``pg`` each case run on PostgreSQL (an engine parameter of "postgresql", direct
    or through a fixture) or asking for a PostgreSQL database fixture, so that
    ``-m "not pg"`` runs without the server."""
    callspec = getattr(item, "callspec", None)
    params = callspec.params.values() if callspec is not None else ()
    fixtures = set(getattr(item, "fixturenames", ()))
    if "postgresql" in params or fixtures & PG_FIXTURES:
        item.add_marker(pytest.mark.pg)


def pytest_sessionfinish() -> None:
    # only a session that imported the storage helpers can have made databases
    storage_support = sys.modules.get("tests.storage_support")
    if storage_support is not None:
        storage_support.drop_session_databases()


# where the console's browser tests keep a screenshot of each page: kept out of git
# (.gitignore); CI may keep it as an artefact
SCREENSHOTS_ENV = "TLOG_MONITOR_SCREENSHOTS"
DEFAULT_SCREENSHOTS = Path(__file__).resolve().parent.parent / ".artifacts" / "console-screenshots"


def screenshot_path() -> Path:
    configured = os.environ.get(SCREENSHOTS_ENV)
    return Path(configured) if configured else DEFAULT_SCREENSHOTS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    # said by the process that reports (with xdist, not the one that ran the tests)
    path = screenshot_path()
    if path.is_dir() and any(p.stat().st_mtime >= _STARTED for p in path.glob("*.png")):
        terminalreporter.write_line(f"console screenshots: {path} (${SCREENSHOTS_ENV} to move)")


_STARTED = time.time()
