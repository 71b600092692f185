"""History queries reuse their table aliases: aliasing a table copies its columns into
reference cycles, whose collection was the slowest 2% of history queries."""

from __future__ import annotations

import gc

from sqlalchemy import Alias, Column, Table

from monitor.storage.aliases import alias
from monitor.storage.base import IDENTITIES, INDEX_ALL
from monitor.storage.history_query import HistoryQuery
from monitor.storage.store import history_select, index_all_select


def test_an_alias_is_made_once_per_table_and_name() -> None:
    assert alias(IDENTITIES, "d") is alias(IDENTITIES, "d")
    assert alias(IDENTITIES, "d") is not alias(IDENTITIES, "o0")
    assert alias(INDEX_ALL, "d") is not alias(IDENTITIES, "d")
    assert alias(IDENTITIES, "d").name == "d"


def test_building_a_history_query_leaves_no_aliased_table_behind() -> None:
    """No copy of a table's columns is left for the collector once the aliases exist."""
    queries = [
        HistoryQuery(san="alice@acme.com", issuer="https://accounts.google.com"),
        HistoryQuery(fingerprint="sha256:" + "ab" * 32, all_entries=True),
    ]

    def build() -> None:
        for q in queries:
            select = index_all_select if q.all_entries else history_select
            select(q, 101, chunked=True)
            if q.all_entries:
                index_all_select(q, 101, partitioned=True)

    build()  # the aliases are made here, once
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        build()
        gc.collect()
        copied = [
            o
            for o in gc.garbage
            if isinstance(o, Column)
            and isinstance(o.table, Alias)
            and isinstance(o.table.element, Table)
        ]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert copied == []
