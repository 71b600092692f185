"""Reading history: matched entries, ``index_all`` rows and malformed entries."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, delete, select

from monitor.core.findings import FindingImage
from monitor.entries.record import MalformedEntry
from monitor.storage import partitions
from monitor.storage.base import JSON, StoreBase, orm, timed
from monitor.storage.history_query import (
    HistoryQuery,
    history_statement,
    log_number,
    timestamp,
)
from monitor.storage.image_history import image_refs
from monitor.storage.models import EntryRow, IndexAllRow, MalformedRow
from monitor.storage.paging import Page, encode_cursor, page_limit


@dataclass(frozen=True)
class StoredEntry:
    """A matched entry as stored: ``record`` is ``result_json`` of the parser's record."""

    log: str
    index: int
    integrated_time: int | None
    time: int
    kind: str
    api_version: str
    san: str | None
    issuer: str | None
    key_fingerprint: str | None
    cert_fingerprint: str | None
    record: JSON
    raw_body: bytes = field(repr=False)
    stored_at: datetime | None = None
    images: tuple[FindingImage, ...] = ()  # the images registry signatures tie it to

    def to_json(self) -> JSON:
        return {
            "log": self.log,
            "index": self.index,
            "integrated_time": self.integrated_time,
            "time": self.time,
            "kind": self.kind,
            "api_version": self.api_version,
            "san": self.san,
            "issuer": self.issuer,
            "key_fingerprint": self.key_fingerprint,
            "cert_fingerprint": self.cert_fingerprint,
            "record": self.record,
            "images": [i.to_json() for i in self.images],
        }


@dataclass(frozen=True)
class IndexedEntry:
    """An ``index_all`` row."""

    log: str
    index: int
    time: int
    kind: str
    san: str | None
    issuer: str | None
    key_fingerprint: str | None
    digest: str | None
    images: tuple[FindingImage, ...] = ()  # the images registry signatures tie it to

    def to_json(self) -> JSON:
        return {
            "log": self.log,
            "index": self.index,
            "time": self.time,
            "kind": self.kind,
            "san": self.san,
            "issuer": self.issuer,
            "key_fingerprint": self.key_fingerprint,
            "digest": self.digest,
            "images": [i.to_json() for i in self.images],
        }


HistoryItem = StoredEntry | IndexedEntry


def _entry(row: Row[Any]) -> StoredEntry:
    """A row of ``history_select`` (or of any select of the entries table). Read as plain
    rows, not ORM objects: a page of 100 entries through an ORM session took twice the CPU,
    and its cyclic garbage made the collector's full passes the slowest page of a hundred."""
    return StoredEntry(
        log=row.log,
        index=row.idx,
        integrated_time=row.integrated_time,
        time=row.time,
        kind=row.kind,
        api_version=row.api_version,
        san=row.san,
        issuer=row.issuer,
        key_fingerprint=row.key_fingerprint,
        cert_fingerprint=row.cert_fingerprint,
        record=row.record,
        raw_body=bytes(row.raw_body),
        stored_at=row.stored_at,
    )


def _indexed(row: Row[Any]) -> IndexedEntry:
    """An ``index_all_select`` row."""
    return IndexedEntry(
        row.log,
        row.idx,
        row.time,
        row.kind,
        row.san,
        row.issuer,
        row.key_fingerprint,
        row.digest,
    )


class HistoryMixin(StoreBase):
    """``Store``: history, and the upkeep of ``index_all``."""

    @timed("history")
    async def history(self, query: HistoryQuery) -> Page[HistoryItem]:
        """Entries matching ``query`` in (log, index) order, one page (``index_all``: logs
        in the order they were first indexed)."""
        limit = page_limit(query.limit)
        items: list[HistoryItem]
        async with self._read() as conn:
            rows = await conn.execute(history_statement(query, limit + 1, self._dialect))
            read = _indexed if query.all_entries else _entry
            items = [read(r) for r in rows.all()]
            more = len(items) > limit
            items = items[:limit]
            refs = await image_refs(conn, [(i.log, i.index) for i in items])
        items = [
            replace(i, images=refs[(i.log, i.index)]) if (i.log, i.index) in refs else i
            for i in items
        ]
        cursor = encode_cursor(items[-1].log, items[-1].index) if more else None
        return Page(tuple(items), cursor)

    @timed("entry")
    async def entry(self, log: str, index: int) -> StoredEntry | None:
        stmt = select(EntryRow).where(EntryRow.log == log, EntryRow.index == index)
        async with self._read() as conn:
            rows = (await conn.execute(stmt)).all()
            if not rows:
                return None
            refs = await image_refs(conn, [(log, index)])
        return replace(_entry(rows[0]), images=refs.get((log, index), ()))

    @timed("entry")
    async def malformed(self, log: str, index: int) -> MalformedEntry | None:
        stmt = select(MalformedRow).where(MalformedRow.log == log, MalformedRow.index == index)
        async with self._read() as conn:
            rows = await orm(conn, stmt)
        if not rows:
            return None
        row = rows[0]
        return MalformedEntry(
            row.log, row.index, row.reason, bytes(row.raw_body), row.kind, row.api_version
        )

    @timed("retention")
    async def purge_index_all(self, older_than: datetime, log: str | None = None) -> int:
        """Delete ``index_all`` rows (of ``log``, or of every log) whose time is before
        ``older_than``; how many went."""
        cutoff = timestamp(older_than)
        cond = IndexAllRow.time < cutoff
        if log is not None:
            cond = and_(cond, IndexAllRow.log_id == log_number(log))
        async with self._write() as conn:
            dropped = 0
            if self._dialect == "postgresql":  # whole partitions first: no row-by-row delete
                log_id = None
                if log is not None:
                    log_id = (await conn.execute(select(log_number(log)))).scalar()
                    if log_id is None:
                        return 0
                dropped = await partitions.drop_expired(conn, cutoff, log_id)
            result = await conn.execute(delete(IndexAllRow).where(cond))
            return dropped + max(result.rowcount, 0)
