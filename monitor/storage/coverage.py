"""What the database covers, and the names it knows: what history searched (per log, from
which index and time to which) and the logs, rules and sinks a query may name.

A history answer with no row means "none of what was searched": these say what that was, so
that a responder never reads "nothing found" as "never signed" for entries the monitor never
saw (those logged before it began watching a log, unless backfilled).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import exists, func, select

from monitor.storage.base import JSON, StoreBase, orm
from monitor.storage.models import BackfillRow, FindingRow, IndexAllRow, IndexLog, Log, OutboxRow


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


@dataclass(frozen=True)
class Searched:
    """One log, as history searched it. Matched entries: the indexes from where tailing
    began (``from_index``; None when the database predates keeping it) to the last one
    verified, between ``from_time`` (when watching began) and ``to_time`` (when the log's
    state was last stored), plus the ranges backfilled. ``index_all``: the first and last
    index it holds (retention removes the oldest), with those entries' times.
    ``to_index`` is None when nothing has been searched yet."""

    log: str
    from_index: int | None
    to_index: int | None
    from_time: datetime | None
    to_time: datetime | None
    backfilled: tuple[tuple[int, int], ...] = ()  # (first, last) indexes, inclusive

    def to_json(self) -> JSON:
        return {
            "log": self.log,
            "from_index": self.from_index,
            "to_index": self.to_index,
            "from_time": _iso(self.from_time),
            "to_time": _iso(self.to_time),
            "backfilled": [{"from_index": a, "to_index": b} for a, b in self.backfilled],
        }

    @property
    def missing_start(self) -> bool:
        """Entries before the searched range may exist that the database does not hold."""
        if self.from_index is None:
            return True
        covered = 0
        for first, last in sorted(self.backfilled):
            if first > covered:
                break
            covered = max(covered, last + 1)
        return covered < self.from_index


class CoverageMixin(StoreBase):
    """``Store``: coverage and known names."""

    async def searched(self, log: str | None = None) -> list[Searched]:
        """What a search of matched entries covers: every log (or ``log``), by name."""
        stmt = select(Log).order_by(Log.name)
        spans = select(BackfillRow).order_by(BackfillRow.log, BackfillRow.start)
        if log is not None:
            stmt = stmt.where(Log.name == log)
            spans = spans.where(BackfillRow.log == log)
        async with self._read() as conn:
            logs = await orm(conn, stmt)
            backfills = await orm(conn, spans)
        done: dict[str, list[tuple[int, int]]] = {}
        for b in backfills:
            if b.cursor > b.start:
                done.setdefault(b.log, []).append((b.start, b.cursor - 1))
        out = []
        for row in logs:
            first = row.first_index
            to_index = row.cursor - 1 if row.cursor > (first or 0) else None
            out.append(
                Searched(
                    row.name,
                    first,
                    to_index,
                    row.first_at,
                    row.updated_at,
                    tuple(done.get(row.name, ())),
                )
            )
        return out

    async def searched_index_all(self, log: str | None = None) -> list[Searched]:
        """What a search of ``index_all`` covers: the first and last index of every log it
        holds rows of (or of ``log``), in the order the monitor began indexing them. Two
        index lookups a log (its primary key), never a scan."""
        t = IndexAllRow
        names = select(IndexLog.id, IndexLog.log).order_by(IndexLog.id)
        if log is not None:
            names = names.where(IndexLog.log == log)
        out = []
        async with self._read() as conn:
            for log_id, name in (await conn.execute(names)).all():
                first = (
                    await conn.execute(select(func.min(t.index)).where(t.log_id == log_id))
                ).scalar()
                last = (
                    await conn.execute(select(func.max(t.index)).where(t.log_id == log_id))
                ).scalar()
                times = {}
                for idx in {first, last} - {None}:
                    at = select(t.time).where(t.log_id == log_id, t.index == idx)
                    times[idx] = (await conn.execute(at)).scalar()
                out.append(
                    Searched(
                        name,
                        first,
                        last,
                        _from_unix(times.get(first)),
                        _from_unix(times.get(last)),
                    )
                )
        return out

    async def log_names(self) -> list[str]:
        """Every log the database knows (configured now or not)."""
        async with self._read() as conn:
            return list((await conn.execute(select(Log.name).order_by(Log.name))).scalars())

    async def index_all_log_names(self) -> list[str]:
        """The logs ``index_all`` holds rows of (or held: retention may have emptied one)."""
        async with self._read() as conn:
            rows = await conn.execute(select(IndexLog.log).order_by(IndexLog.log))
            return list(rows.scalars())

    async def has_finding_rule(self, rule: str) -> bool:
        """Some finding names ``rule`` (an index lookup)."""
        async with self._read() as conn:
            found = await conn.execute(select(exists().where(FindingRow.rule == rule)))
            return bool(found.scalar())

    async def finding_rules(self) -> list[str]:
        """Every rule some finding names (for messages: it reads the rule index through)."""
        stmt = select(FindingRow.rule).where(FindingRow.rule.is_not(None)).distinct()
        async with self._read() as conn:
            return sorted(r for r in (await conn.execute(stmt)).scalars() if r is not None)

    async def outbox_sinks(self) -> list[str]:
        """Every sink the outbox holds rows of."""
        async with self._read() as conn:
            rows = await conn.execute(select(OutboxRow.sink).distinct())
            return sorted(rows.scalars())


def _from_unix(t: int | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, UTC)
