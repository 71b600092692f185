"""What every sink format writes alike: compact JSON, RFC 3339 times, a finding in a line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Final

from monitor import __version__
from monitor.alerts.events import TEST_KIND, TEST_TITLE, AlertFinding, JSONValue

USER_AGENT: Final = f"tlog-monitor/{__version__}"


def dumps(doc: JSONValue) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def json_headers() -> dict[str, str]:
    return {"content-type": "application/json", "user-agent": USER_AGENT}


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def created(f: AlertFinding) -> datetime:
    """When the finding was made, in UTC (a time stored without a zone is UTC)."""
    at = f.created_at
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def common(values: Iterable[str | None]) -> str | None:
    """The value if every finding has the same one; else None."""
    seen = set(values)
    return seen.pop() if len(seen) == 1 else None


def max_severity(fs: Sequence[AlertFinding]) -> str:
    return str(max(f.severity for f in fs))


def kind(f: AlertFinding) -> str:
    """``kind`` or ``kind (type)``."""
    return f"{f.kind} ({f.type})" if f.type else str(f.kind)


def kinds(fs: Sequence[AlertFinding]) -> str:
    return common(str(f.kind) for f in fs) or "mixed"


def entry_name(f: AlertFinding) -> str:
    log = f.log or "?"
    return log if f.index is None else f"{log} #{f.index}"


def image_name(f: AlertFinding) -> str | None:
    """``repository[:tag][@digest]`` of a registry finding; None for others."""
    return None if f.image is None else str(f.image)


def summary(f: AlertFinding) -> str:
    """One line: what fired and why (the finding's detail says who signed what)."""
    if f.kind == TEST_KIND:
        return TEST_TITLE
    head = kind(f)
    if f.detail:
        return f"{head}: {f.detail}"
    parts = [head]
    if f.rule:
        parts.append(f"rule {f.rule}")
    if f.log is not None:
        parts.append(entry_name(f))
    if f.image is not None:
        parts.append(str(f.image))
    return ", ".join(parts)
