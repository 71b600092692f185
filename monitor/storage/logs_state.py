"""Logs and their checkpoints: registration, the per-log state, checkpoint evidence."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import literal, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.storage.base import CHECKPOINTS, LOGS, StoreBase, orm, timed, utcnow
from monitor.storage.models import CheckpointRow, Log, WriteProbe
from monitor.storage.paging import Page, bad_cursor, decode_cursor, encode_cursor, page_limit
from monitor.tlog.checkpoint import SignedCheckpoint
from monitor.tlog.merkle import HASH_SIZE, CompactRangeState
from monitor.tlog.witness import Cosignature


@dataclass(frozen=True)
class CheckpointData:
    """A checkpoint as stored: its origin, size, root hash and the raw signed note; the
    witness cosignatures found on it (None: no witnesses were configured to look for)."""

    origin: str
    size: int
    root: bytes
    raw: str
    cosigners: tuple[Cosignature, ...] | None = None

    @classmethod
    def from_signed(
        cls, cp: SignedCheckpoint, cosigners: Sequence[Cosignature] | None = None
    ) -> CheckpointData:
        return cls(
            cp.origin,
            cp.size,
            cp.root_hash,
            cp.raw,
            None if cosigners is None else tuple(cosigners),
        )


def _verified(cosigners: Sequence[Cosignature] | None) -> int:
    return sum(c.status == "verified" for c in cosigners or ())


def cosigners_json(cosigners: Sequence[Cosignature] | None) -> list[dict[str, Any]] | None:
    return None if cosigners is None else [asdict(c) for c in cosigners]


def cosigners_from_json(doc: Any) -> tuple[Cosignature, ...] | None:
    """The cosignatures a row records (None: the row records none: NULL, or not a list)."""
    if not isinstance(doc, list):
        return None
    out = []
    for c in doc:
        if isinstance(c, dict):
            try:
                out.append(Cosignature(**c))
            except TypeError:
                continue  # a field this version does not know: skip the line, keep the rest
    return tuple(out)


def compact_range_state(size: int, hashes: bytes) -> CompactRangeState:
    """A compact range as stored: its size and its hashes, concatenated."""
    hashes = bytes(hashes)
    return CompactRangeState(
        size, tuple(hashes[i : i + HASH_SIZE] for i in range(0, len(hashes), HASH_SIZE))
    )


@dataclass(frozen=True)
class LogState:
    name: str
    api: str
    url: str
    cursor: int
    verified_size: int | None
    verified_root: bytes | None
    verified_checkpoint: str | None
    compact_range: CompactRangeState
    updated_at: datetime
    first_index: int | None = None  # where tailing began (None: not kept, before 0007)
    first_at: datetime | None = None


@dataclass(frozen=True)
class StoredCheckpoint:
    log: str
    origin: str
    size: int
    root: bytes
    raw: str
    verified: bool
    seen_at: datetime
    # the witness cosignatures recorded when it was stored (None: no witnesses configured)
    cosigners: tuple[Cosignature, ...] | None = None


def _log_state(row: Log) -> LogState:
    return LogState(
        name=row.name,
        api=row.api,
        url=row.url,
        cursor=row.cursor,
        verified_size=row.verified_size,
        verified_root=None if row.verified_root is None else bytes(row.verified_root),
        verified_checkpoint=row.verified_checkpoint,
        compact_range=compact_range_state(row.compact_size, row.compact_hashes),
        updated_at=row.updated_at,
        first_index=row.first_index,
        first_at=row.first_at,
    )


PROBE_EVERY = 1.0  # seconds between two write probes of one process


class LogsMixin(StoreBase):
    """``Store``: logs and checkpoints."""

    _probed_at = float("-inf")  # when this process last proved the database takes writes

    @timed("log_state")
    async def register_log(self, name: str, api: str, url: str) -> None:
        """Make sure the log exists (a new log starts at cursor 0); update its API and URL."""
        async with self._write() as conn:
            now = utcnow()
            await conn.execute(
                self._insert(LOGS),
                [
                    {
                        "name": name,
                        "api": api,
                        "url": url,
                        "cursor": 0,
                        "compact_size": 0,
                        "compact_hashes": b"",
                        "updated_at": now,
                    }
                ],
            )
            await conn.execute(
                update(Log)
                .where(Log.name == name, or_(Log.api != api, Log.url != url))
                .values(api=api, url=url, updated_at=now)
            )

    @timed("log_state")
    async def log_state(self, name: str) -> LogState | None:
        async with self._read() as conn:
            rows = await orm(conn, select(Log).where(Log.name == name))
        return _log_state(rows[0]) if rows else None

    @timed("log_state")
    async def log_states(self) -> list[LogState]:
        """Every log the store knows, by name (configured now or not)."""
        async with self._read() as conn:
            rows = await orm(conn, select(Log).order_by(Log.name))
        return [_log_state(r) for r in rows]

    @timed("ping")
    async def ping(self) -> None:
        """A round trip to the database (readiness); raises StorageError if it fails."""
        async with self._read() as conn:
            await conn.execute(select(literal(1)))

    async def probe_write(self, holder: str, at: datetime | None = None) -> None:
        """Write (and commit) this process's row of ``write_probes``: the readiness check's
        proof that the database takes writes, which a read cannot give (a full disk still
        answers reads). At most one write a second, however often it is asked (the
        readiness check may be public). Raises ``StorageError``."""
        if time.monotonic() - self._probed_at < PROBE_EVERY:
            return
        values = {"holder": holder, "at": at or utcnow()}
        insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        stmt = insert(WriteProbe).values(values)
        stmt = stmt.on_conflict_do_update(index_elements=["holder"], set_={"at": values["at"]})
        async with self._write() as conn:
            await conn.execute(stmt)
        self._probed_at = time.monotonic()

    async def _checkpoint(
        self,
        conn: AsyncConnection,
        log: str,
        cp: CheckpointData,
        verified: bool,
        at: datetime,
    ) -> bool:
        t = CHECKPOINTS
        values = {
            "log": log,
            "origin": cp.origin,
            "size": cp.size,
            "root": cp.root,
            "raw": cp.raw,
            "verified": verified,
            "seen_at": at,
            "cosigners": cosigners_json(cp.cosigners),
        }
        added = await self._insert_many(conn, t, [values])
        if added:
            return True
        same = (t.c.log == log, t.c.origin == cp.origin, t.c.size == cp.size, t.c.root == cp.root)
        if verified:  # seen before unverified, proven now
            await conn.execute(
                update(t).where(*same, t.c.verified.is_(False)).values(verified=True)
            )
        if _verified(cp.cosigners):
            # witnesses cosign after the log signs: the same checkpoint may come back with
            # more of them, and the note kept is the best-witnessed one seen
            stored = (await conn.execute(select(t.c.cosigners).where(*same))).scalar()
            if _verified(cp.cosigners) > _verified(cosigners_from_json(stored)):
                await conn.execute(
                    update(t).where(*same).values(raw=cp.raw, cosigners=values["cosigners"])
                )
        return False

    @timed("checkpoints")
    async def checkpoints(self, log: str, limit: int = 100) -> list[StoredCheckpoint]:
        """The checkpoints seen for ``log``, newest first."""
        return list((await self.checkpoint_page(log, limit)).items)

    @timed("checkpoints")
    async def checkpoint_page(
        self, log: str, limit: int = 100, cursor: str | None = None
    ) -> Page[StoredCheckpoint]:
        """The checkpoints seen for ``log``, newest first, one page."""
        limit = page_limit(limit)
        conds = [CheckpointRow.log == log]
        if cursor is not None:
            seen, last = decode_cursor(cursor, (str, int))
            try:
                seen_at = datetime.fromisoformat(seen)
            except ValueError:
                raise bad_cursor(cursor) from None
            if seen_at.tzinfo is None:
                raise bad_cursor(cursor)
            conds.append(tuple_(CheckpointRow.seen_at, CheckpointRow.id) < tuple_(seen_at, last))
        stmt = (
            select(CheckpointRow)
            .where(*conds)
            .order_by(CheckpointRow.seen_at.desc(), CheckpointRow.id.desc())
            .limit(limit + 1)
        )
        async with self._read() as conn:
            rows = await orm(conn, stmt)
        items = [
            StoredCheckpoint(
                r.log,
                r.origin,
                r.size,
                bytes(r.root),
                r.raw,
                r.verified,
                r.seen_at,
                cosigners_from_json(r.cosigners),
            )
            for r in rows[:limit]
        ]
        last_row = rows[limit - 1] if len(rows) > limit else None
        next_cursor = (
            None if last_row is None else encode_cursor(last_row.seen_at.isoformat(), last_row.id)
        )
        return Page(tuple(items), next_cursor)
