"""PostgreSQL: queries by value over ``index_all``'s chunked indexes, partition by partition.

Each partition of ``index_all`` (``monitor.storage.partitions``) indexes SAN, key hash and
digest hash as ``(idx >> chunks.CHUNK_BITS, value, idx)``: its chunks, in order, each a
subtree of its rows. A query by value is a loop over (log, partition) in order (a partition
range of each log from its first to its last row within the query's bounds), and in each,
one scan of that partition alone (pruned as it starts, by the log and index range) that
seeks each of its chunks with ``chunk = ANY(ARRAY[...])`` on the index's first column: one
seek a chunk, rows in (chunk, index) order, up to the page's limit. The loop's rows then
come in (log, partition, chunk, index) order, the order of (log, index): the page is an
incremental sort of each partition's rows (at most a page) and stops at the limit, reading
no partition after the one that fills it.

A chunk key in one IN list over every partition would cost a seek per chunk in each
partition; a join on a list of chunks would cost the order (PostgreSQL 15 walks an index in
order only for an array on its first column).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    any_,
    case,
    func,
    literal_column,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import array

from monitor.storage import chunks, partitions
from monitor.storage.aliases import alias
from monitor.storage.base import INDEX_ALL, INDEX_LOGS
from monitor.storage.paging import decode_cursor

PER_PARTITION = 1 << (partitions.CHUNK_BITS - chunks.CHUNK_BITS)
"""Chunks in a partition (16)."""


def _shift(col: Any, bits: int) -> Any:
    return col.op(">>")(literal_column(str(bits)))


def _shift_left(col: Any, bits: int) -> Any:
    return col.op("<<")(literal_column(str(bits)))


def _cursor_floor(log_id: Any, bounds: Any, log_number: Callable[[str], Any]) -> Any:
    """The index a row of ``log_id`` must be above, given ``bounds.cursor`` (else -1)."""
    if bounds.cursor is None:
        return None
    log, idx = decode_cursor(bounds.cursor, (str, int))
    return case((log_id == log_number(log), idx), else_=-1)


def _pairs(bounds: Any, log_number: Callable[[str], Any]) -> FromClause:
    """(log number, log name, partition) that ``bounds`` can find rows in, in order: each
    log's partitions from that of its first row within the bounds to that of its last
    (two seeks of the primary key a log)."""
    logs = alias(INDEX_LOGS, "pl")
    conds: list[ColumnElement[bool]] = []
    if bounds.log is not None:
        conds.append(logs.c.log == bounds.log)
    if bounds.cursor is not None:
        conds.append(logs.c.id >= log_number(decode_cursor(bounds.cursor, (str, int))[0]))

    def end(last: bool) -> Any:
        b = alias(INDEX_ALL, "pb_last" if last else "pb_first")
        where: list[ColumnElement[bool]] = [b.c.log_id == logs.c.id]
        if last and bounds.index_max is not None:
            where.append(b.c.idx <= bounds.index_max)
        if not last and bounds.index_min is not None:
            where.append(b.c.idx >= bounds.index_min)
        floor = None if last else _cursor_floor(logs.c.id, bounds, log_number)
        if floor is not None:
            where.append(b.c.idx > floor)
        agg = func.max if last else func.min
        return _shift(select(agg(b.c.idx)).where(*where).scalar_subquery(), partitions.CHUNK_BITS)

    series = func.generate_series(end(False), end(True)).table_valued("n")
    parts = series.render_derived(name="pg").lateral("pg")
    return (
        select(logs.c.id.label("log_id"), logs.c.log.label("log"), parts.c.n.label("part"))
        .select_from(logs.join(parts, true()))
        .where(*conds)
        .order_by(logs.c.id, parts.c.n)
        .subquery("p")
    )


def index_all_by_value(
    bounds: Any,
    limit: int,
    columns: Sequence[str],
    where: Callable[[FromClause], list[ColumnElement[bool]]],
    log_number: Callable[[str], Any],
) -> Select[Any]:
    """The page of ``index_all`` rows (the log's name and ``columns``) that ``where`` keeps
    (conditions on ``INDEX_ALL``, given the (log, partition) row ``p`` for the log's name;
    the first on a chunked column), within ``bounds`` (a ``HistoryQuery``: log, index
    bounds, cursor), in (log, index) order, ``limit`` of them."""
    p = _pairs(bounds, log_number)
    t = INDEX_ALL
    chunk = chunks.chunk_of(t.c.idx)
    base = _shift_left(p.c.part, partitions.CHUNK_BITS - chunks.CHUNK_BITS)
    chunk_list = array([base.op("+")(literal_column(str(k))) for k in range(PER_PARTITION)])
    conds: list[ColumnElement[bool]] = [
        t.c.log_id == p.c.log_id,
        # the partition's range: it alone is scanned
        t.c.idx >= _shift_left(p.c.part, partitions.CHUNK_BITS),
        t.c.idx < _shift_left(p.c.part.op("+")(literal_column("1")), partitions.CHUNK_BITS),
        chunk == any_(chunk_list),
        *where(p),
    ]
    if bounds.index_min is not None:
        conds.append(t.c.idx >= bounds.index_min)
    if bounds.index_max is not None:
        conds.append(t.c.idx <= bounds.index_max)
    floor = _cursor_floor(p.c.log_id, bounds, log_number)
    if floor is not None:
        conds.append(t.c.idx > floor)
    rows = (
        select(*(t.c[c] for c in columns), chunk.label("chunk"))
        .where(*conds)
        .order_by(chunk, t.c.idx)
        .limit(limit)
        .lateral("m")
    )
    return (
        select(p.c.log, *(rows.c[c] for c in columns))
        .select_from(p.join(rows, true()))
        .order_by(p.c.log_id, p.c.part, rows.c.chunk, rows.c.idx)
        .limit(limit)
    )
