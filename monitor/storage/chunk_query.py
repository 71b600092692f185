"""SQLite: the conditions that walk a chunked index (``monitor.storage.chunks``) in order.

A query by value seeks each (log, chunk) part of the index: ``log IN (...) AND chunk IN
(...) AND value = ?`` as two IN lists, which SQLite walks in order (one list of pairs would
cost it the order, and a sort of every match), so that ``ORDER BY log, chunk, idx`` (the
order of (log, idx)) needs no sort and a page ends at its limit. The chunks run from that of
the first row the query can find (after its cursor and lower bound) to that of the last
(below its upper bound), each found by one seek of the primary key a log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Table, func, select

from monitor.storage import chunks
from monitor.storage.aliases import alias
from monitor.storage.paging import decode_cursor


@dataclass(frozen=True)
class Chunked:
    """A table with chunked indexes: its log column, and the table of logs it refers to
    (``key``: that table's column the log column holds; ``log_key``: a log's name as the
    log column holds it)."""

    table: Table
    log: str
    logs: Table
    key: str
    log_key: Callable[[str], Any]


def _logs(c: Chunked, bounds: Any, name: str) -> FromClause:
    """The logs ``bounds`` (a query's log, index bounds and cursor) can find rows of."""
    logs = alias(c.logs, name)
    key = logs.c[c.key]
    conds: list[ColumnElement[bool]] = []
    if bounds.log is not None:
        conds.append(key == c.log_key(bounds.log))
    if bounds.cursor is not None:
        conds.append(key >= c.log_key(decode_cursor(bounds.cursor, (str, int))[0]))
    return select(key.label("key")).where(*conds).subquery(name)


def _end(c: Chunked, bounds: Any, last: bool) -> Any:
    """The first (``last``: the last) index ``bounds`` can find: a seek a log."""
    logs = _logs(c, bounds, "ll" if last else "lf")
    b = alias(c.table, "bl" if last else "bf")
    conds: list[ColumnElement[bool]] = [b.c[c.log] == logs.c.key]
    if last and bounds.index_max is not None:
        conds.append(b.c.idx <= bounds.index_max)
    if not last and bounds.index_min is not None:
        conds.append(b.c.idx >= bounds.index_min)
    if not last and bounds.cursor is not None:
        conds.append(b.c.idx > chunks.cursor_floor(logs.c.key, bounds.cursor, c.log_key))
    agg = func.max if last else func.min
    each = select(agg(b.c.idx)).where(*conds).scalar_subquery()
    return select(agg(each)).select_from(logs).scalar_subquery()


def conditions(c: Chunked, rows: FromClause, bounds: Any) -> list[ColumnElement[bool]]:
    """The IN lists over ``rows`` (``c.table`` or an alias of it) for ``bounds``: anything
    with ``log``, ``index_min``, ``index_max`` and ``cursor`` (a ``HistoryQuery``)."""
    start = select(chunks.chunk_of(_end(c, bounds, False)).label("n"))
    first = start.cte(f"chunks_{c.table.name}", recursive=True)
    numbers = first.union_all(
        select(first.c.n + 1).where(first.c.n < chunks.chunk_of(_end(c, bounds, True)))
    )
    conds: list[ColumnElement[bool]] = [chunks.chunk_of(rows.c.idx).in_(select(numbers.c.n))]
    if bounds.log is None:  # else the query holds log = ...
        logs = _logs(c, bounds, "lq")
        conds.append(rows.c[c.log].in_(select(logs.c.key)))
    return conds


def order(c: Chunked, rows: FromClause) -> list[Any]:
    """(log, chunk, idx): the order of (log, idx), in the terms of a chunked index."""
    return [rows.c[c.log], chunks.chunk_of(rows.c.idx), rows.c.idx]
