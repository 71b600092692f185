"""Table aliases made once and reused by every query that names them.

Aliasing a table copies its columns (with their foreign keys and event dispatchers): about
120-190 objects a call, all left in reference cycles, and about 0.2 ms. A query builds
several, so that history queries filled the young generation with cyclic garbage, and the
collections that freed it (about 50,000 objects each, 60-90 ms) were the slowest 2% of
history queries. An alias is an immutable SQL construct: one per (table, name) serves
every query."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Table
from sqlalchemy.sql.selectable import NamedFromClause

__all__ = ["alias"]


@functools.cache
def alias(table: Table, name: str) -> NamedFromClause[Any]:
    """``table AS name``, the same object on every call (a query must not name one alias
    twice in scopes that could correlate: give each use its own name)."""
    return table.alias(name)
