"""Shared test fixtures: paths to the real production data copied from ../shared/fixtures."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
STAGING_ROOT = FIXTURES / "trust" / "trusted_root.staging.json"
PROD_LOGINFO = FIXTURES / "v1-api" / "loginfo.prod.RECONSTRUCTED.json"


def evidence_files() -> list[Path]:
    """Every bundle, LogEntry, LogInfo and v2 entry fixture."""
    return sorted(p for d in ("v1-bundles", "v1-api", "v2") for p in (FIXTURES / d).glob("*.json"))


def trust_args(path: Path) -> list[str]:
    """verify-bundle options for a fixture: staging ones need the staging trusted root."""
    return ["--trusted-root", str(STAGING_ROOT)] if "staging" in path.name else []
