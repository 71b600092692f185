"""Reading the files users name on the command line."""

from __future__ import annotations

import sys
from pathlib import Path

from monitor.bundles.parse import MAX_EVIDENCE_BYTES
from monitor.core.errors import UnreadableInputError


def read_input(path: str) -> bytes:
    """A file's bytes (``-`` for stdin), read no further than one byte past the size limit so
    that the parser can say the file is too large."""
    if path == "-":
        return sys.stdin.buffer.read(MAX_EVIDENCE_BYTES + 1)
    try:
        with Path(path).open("rb") as f:
            return f.read(MAX_EVIDENCE_BYTES + 1)
    except OSError as e:
        raise UnreadableInputError(f"cannot read: {e.strerror or e}") from None
