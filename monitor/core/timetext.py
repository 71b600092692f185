"""Times as people type them, for the CLI and the HTTP API alike."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from monitor.core.errors import MalformedInputError


def parse_time(text: str) -> datetime:
    """ISO 8601 (UTC when no zone is given) or unix seconds."""
    t = text.strip()
    if re.fullmatch(r"\d{1,12}", t):
        try:
            return datetime.fromtimestamp(int(t), UTC)
        except (OverflowError, ValueError, OSError):
            raise MalformedInputError(f"time out of range: {text!r}") from None
    try:
        d = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedInputError(f"not a time: {text!r} (ISO 8601 or unix seconds)") from None
    d = d if d.tzinfo else d.replace(tzinfo=UTC)
    try:
        return d.astimezone(UTC)  # one zone for every engine's comparisons
    except (OverflowError, ValueError):
        raise MalformedInputError(f"time out of range: {text!r}") from None
