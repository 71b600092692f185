"""Values as both engines store them (cleaned text, capped index values, the 64-bit value
hashes of ``index_all``): plain functions, apart from the column types that apply them so
that a parse worker, which builds index rows, does not load SQLAlchemy."""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = [
    "INDEX_VALUE_CHARS",
    "clean_json",
    "clean_text",
    "index_value",
    "stored_hash",
    "value_hash",
]

INDEX_VALUE_CHARS = 400
"""Indexed identity values are stored on their first 400 characters (at most 1,600 bytes of
UTF-8, well inside PostgreSQL's B-tree limit of about 2,700 bytes per row)."""


def clean_text(s: str) -> str:
    """``s`` as both engines can store it: NUL and unpaired surrogates become U+FFFD."""
    if "\x00" in s:
        s = s.replace("\x00", "\ufffd")
    if s.isascii():  # nearly every value: no surrogate, so no encoding to try
        return s
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        s = s.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return s


def clean_json(doc: Any) -> Any:
    """A JSON document with every string (keys too) passed through ``clean_text``."""
    if isinstance(doc, str):
        return clean_text(doc)
    if isinstance(doc, dict):
        return {clean_text(str(k)): clean_json(v) for k, v in doc.items()}
    if isinstance(doc, list | tuple):
        return [clean_json(v) for v in doc]
    return doc


def index_value(s: str) -> str:
    """A value as it is stored in (and looked up from) an indexed identity column."""
    return clean_text(s)[:INDEX_VALUE_CHARS]


def value_hash(value: str) -> int:
    """The 64-bit key under which ``index_all`` finds a key fingerprint or digest: the first
    8 bytes of the SHA-256 of the value as stored (``index_value``), signed (BIGINT)."""
    return stored_hash(index_value(value))


def stored_hash(stored: str) -> int:
    """``value_hash`` of a value already as stored (``index_value`` applied)."""
    digest = hashlib.sha256(stored.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
