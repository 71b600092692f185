"""PostgreSQL: queries by value over ``index_all``'s chunked indexes, partition by partition.

Each partition of ``index_all`` (``monitor.storage.partitions``) indexes SAN, key hash and
digest hash as ``(idx >> chunks.CHUNK_BITS, value, idx)``: its chunks, in order, each a
subtree of its rows. A query by value is a loop over (log, partition) in order (each log's
partitions from that of its first row to that of its last, less those the query's bounds
exclude), and in each, one scan of that partition alone (pruned as it starts, by the log
and index range) that seeks each of its 16 chunks with ``chunk = ANY(ARRAY(...))`` on the
index's first column: one seek a chunk, rows in (chunk, index) order, up to the page's
limit. The loop's rows then come in (log, partition, chunk, index) order, the order of
(log, index): the page is an incremental sort of each partition's rows (at most a page),
and stops at the limit, reading no partition after the one that fills it. A SAN prefix's
matches come in value order within a chunk: they are sorted a chunk at a time.

One array of chunks over every partition would cost a seek per chunk in each partition; a
join on a list of chunks would cost the order (PostgreSQL 15 walks an index in order for
an array on its first column only).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    Subquery,
    any_,
    case,
    func,
    literal_column,
    select,
    true,
)

from monitor.storage import chunks, partitions
from monitor.storage.aliases import alias
from monitor.storage.base import INDEX_ALL, INDEX_LOGS
from monitor.storage.paging import decode_cursor

PER_PARTITION = 1 << (partitions.CHUNK_BITS - chunks.CHUNK_BITS)
"""Chunks in a partition (16)."""


@functools.cache
def _pairs() -> Subquery:
    """(log number, log name, partition) of every log, in order: each log's partitions from
    that of its first row to that of its last (two seeks of the primary key a log). Made
    once: a query's bounds select among them (built anew, its columns would be cyclic
    garbage each query)."""
    logs = alias(INDEX_LOGS, "pl")

    def end(last: bool) -> Any:
        b = alias(INDEX_ALL, "pb_last" if last else "pb_first")
        agg = func.max if last else func.min
        row = select(agg(b.c.idx)).where(b.c.log_id == logs.c.id).scalar_subquery()
        return chunks.shift(row, partitions.CHUNK_BITS)

    series = func.generate_series(end(False), end(True)).table_valued("n")
    parts = series.render_derived(name="pg").lateral("pg")
    return (
        select(logs.c.id.label("log_id"), logs.c.log.label("log"), parts.c.n.label("part"))
        .select_from(logs.join(parts, true()))
        .order_by(logs.c.id, parts.c.n)
        .subquery("p")
    )


@functools.cache
def _partition_conditions() -> tuple[ColumnElement[bool], ...]:
    """The rows of ``_pairs``' partition, sought by chunk: one scan of that partition alone
    (pruned by log and index range as it starts), one seek a chunk."""
    p, t = _pairs(), INDEX_ALL
    first = chunks.shift(p.c.part, partitions.CHUNK_BITS - chunks.CHUNK_BITS, "<<")
    last = first.op("+")(literal_column(str(PER_PARTITION - 1)))
    # ARRAY(SELECT generate_series(...)): the partition's chunks
    chunk_list = func.array(
        select(func.generate_series(first, last)).correlate(p).scalar_subquery()
    )
    return (
        t.c.log_id == p.c.log_id,
        t.c.idx >= chunks.shift(p.c.part, partitions.CHUNK_BITS, "<<"),
        t.c.idx < chunks.shift(p.c.part.op("+")(literal_column("1")), partitions.CHUNK_BITS, "<<"),
        chunks.chunk_of(t.c.idx) == any_(chunk_list),
    )


def _pair_conditions(bounds: Any, log_number: Callable[[str], Any]) -> list[ColumnElement[bool]]:
    """The (log, partition) pairs that can hold rows within ``bounds``."""
    p = _pairs()
    conds: list[ColumnElement[bool]] = []
    if bounds.log is not None:
        conds.append(p.c.log == bounds.log)
    if bounds.index_min is not None:
        conds.append(p.c.part >= bounds.index_min >> partitions.CHUNK_BITS)
    if bounds.index_max is not None:
        conds.append(p.c.part <= bounds.index_max >> partitions.CHUNK_BITS)
    if bounds.cursor is not None:
        log, idx = decode_cursor(bounds.cursor, (str, int))
        conds.append(p.c.log_id >= log_number(log))
        first = case((p.c.log_id == log_number(log), idx >> partitions.CHUNK_BITS), else_=0)
        conds.append(p.c.part >= first)
    return conds


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
    p, t = _pairs(), INDEX_ALL
    conds = [*_partition_conditions(), *where(p)]
    if bounds.index_min is not None:
        conds.append(t.c.idx >= bounds.index_min)
    if bounds.index_max is not None:
        conds.append(t.c.idx <= bounds.index_max)
    if bounds.cursor is not None:
        conds.append(t.c.idx > chunks.cursor_floor(p.c.log_id, bounds.cursor, log_number))
    chunk = chunks.chunk_of(t.c.idx)
    rows = (
        select(*(t.c[c] for c in columns), chunk.label("chunk"))
        .where(*conds)
        .order_by(chunk, t.c.idx)
        .limit(limit)
        .lateral("m")
    )
    # its columns by name: its column collection, made on first use, would be cyclic garbage
    m = [literal_column(f"m.{c}", t.c[c].type).label(c) for c in columns]
    return (
        select(p.c.log, *m)
        .select_from(p.join(rows, true()))
        .where(*_pair_conditions(bounds, log_number))
        .order_by(p.c.log_id, p.c.part, literal_column("m.chunk"), literal_column("m.idx"))
        .limit(limit)
    )
