"""Text that came from a log, made safe to show on a terminal.

Every character that is not printable is shown as its Python escape: controls (``\\x1b`` that
starts a terminal sequence, ``\\r`` and ``\\n`` that would forge lines, ``\\x9b``), bidirectional
and other format characters (``\\u202e``, ``\\u2066``, ``\\u200b``), separators other than the
space (``\\u2028``), unassigned and private code points. Printable text passes unchanged, this
function's own output included, so text escaped once (as finding details are when they are
made) is not escaped again. JSON output needs none of this: ``json.dumps`` keeps values exact.
"""

from __future__ import annotations


def escape(text: str) -> str:
    """``text`` as one line of printable characters."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def escape_lines(text: str) -> str:
    """Each line of ``text`` escaped, the line breaks kept: for messages of several lines
    that may quote a value from a log."""
    return "\n".join(escape(line) for line in text.split("\n"))


def one_line(e: BaseException, limit: int = 500) -> str:
    """An error's text on one line, whitespace collapsed and bounded (it may quote what a
    log or a registry sent): for a reason or a detail, escaped where it is shown."""
    return " ".join(str(e).split())[:limit] or type(e).__name__
