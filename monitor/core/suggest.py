"""Messages for a name that is not known: what was given, the closest known name, the rest.

A typo must read as a typo: the CLI and the API refuse an unknown log, rule, sink or
extension name with one of these, instead of answering "nothing found" for it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

MAX_LISTED = 30


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name ``name`` most likely misspells, if any is close."""
    found = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return found[0] if found else None


def unknown_name(what: str, name: str, known: Iterable[str]) -> str:
    """``unknown log 'rekr' (did you mean 'rekor'?); known: rekor, rekor-v2``."""
    names = sorted(set(known))
    message = f"unknown {what} {name!r}"
    guess = closest(name, names)
    if guess is not None:
        message += f" (did you mean {guess!r}?)"
    if not names:
        return message + f"; no {what} is known"
    shown = ", ".join(names[:MAX_LISTED])
    if len(names) > MAX_LISTED:
        shown += f", and {len(names) - MAX_LISTED} more"
    return f"{message}; known: {shown}"
