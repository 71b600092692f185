"""Stored findings: their query, and reading and triaging them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.core.findings import (
    Finding,
    FindingImage,
    FindingKind,
    FindingState,
    Severity,
    Unmet,
)
from monitor.storage.base import FINDINGS, JSON, StoreBase, orm, timed, utcnow
from monitor.storage.models import FindingRow
from monitor.storage.paging import Page, decode_cursor, encode_cursor, page_limit


@dataclass(frozen=True)
class StoredFinding:
    """A finding as stored (``finding.id`` and ``finding.state`` are the stored ones)."""

    finding: Finding
    state_changed_by: str | None
    state_changed_at: datetime | None
    comment: str | None
    evidence: JSON | None

    def to_json(self) -> JSON:
        return {
            **self.finding.to_json(),
            "state_changed_by": self.state_changed_by,
            "state_changed_at": (
                None if self.state_changed_at is None else self.state_changed_at.isoformat()
            ),
            "comment": self.comment,
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class FindingQuery:
    """Filters are ANDed. ``order``: ``newest`` first, or ``severity`` (the most severe
    first, and within a severity the oldest first: a queue to work through)."""

    states: tuple[FindingState, ...] = ()
    min_severity: Severity | None = None
    kinds: tuple[FindingKind, ...] = ()
    rule: str | None = None
    log: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    cursor: str | None = None
    order: Literal["newest", "severity"] = "newest"


def findings_select(q: FindingQuery, limit: int) -> Select[Any]:
    f = FINDINGS
    conds: list[ColumnElement[bool]] = []
    if q.states:
        conds.append(f.c.state.in_([str(s) for s in q.states]))
    if q.min_severity is not None:
        # an IN list, not >=: both engines then walk (severity, id) for each level
        conds.append(f.c.severity.in_([int(v) for v in Severity if v >= q.min_severity]))
    if q.kinds:
        conds.append(f.c.kind.in_([str(k) for k in q.kinds]))
    if q.rule is not None:
        conds.append(f.c.rule == q.rule)
    if q.log is not None:
        conds.append(f.c.log == q.log)
    if q.since is not None:
        conds.append(FindingRow.created_at >= q.since)
    if q.until is not None:
        conds.append(FindingRow.created_at < q.until)
    if q.order == "severity":
        if q.cursor is not None:
            severity, last = decode_cursor(q.cursor, (int, int))
            conds.append(
                or_(f.c.severity < severity, and_(f.c.severity == severity, f.c.id > last))
            )
        order = (f.c.severity.desc(), f.c.id.asc())
        return select(FindingRow).where(*conds).order_by(*order).limit(limit)
    if q.cursor is not None:
        (last,) = decode_cursor(q.cursor, (int,))
        conds.append(f.c.id < last)
    return select(FindingRow).where(*conds).order_by(f.c.id.desc()).limit(limit)


def stored_finding(row: FindingRow) -> StoredFinding:
    f = Finding(
        kind=FindingKind(row.kind),
        severity=Severity(row.severity),
        dedup_key=row.dedup_key,
        rule=row.rule,
        log=row.log,
        index=row.index,
        type=row.type,
        matched=tuple((m["field"], m["value"]) for m in row.matched),
        unmet=tuple(Unmet(u["field"], tuple(u["expected"]), tuple(u["actual"])) for u in row.unmet),
        detail=row.detail,
        created_at=row.created_at,
        state=FindingState(row.state),
        id=row.id,
        image=_image(row.image),
    )
    return StoredFinding(f, row.state_changed_by, row.state_changed_at, row.comment, row.evidence)


def _image(doc: Any) -> FindingImage | None:
    if not isinstance(doc, dict) or not isinstance(doc.get("repository"), str):
        return None
    tag, digest = doc.get("tag"), doc.get("digest")
    return FindingImage(
        doc["repository"],
        tag if isinstance(tag, str) else None,
        digest if isinstance(digest, str) else None,
    )


def finding_values(f: Finding, evidence: JSON | None) -> JSON:
    doc = f.to_json()
    return {
        "kind": str(f.kind),
        "type": f.type,
        "severity": int(f.severity),
        "rule": f.rule,
        "log": f.log,
        "idx": f.index,
        "dedup_key": f.dedup_key,
        "state": str(f.state),
        "created_at": f.created_at,
        "matched": doc["matched"],
        "unmet": doc["unmet"],
        "detail": f.detail,
        "evidence": evidence,
        "image": doc["image"],
    }


async def change_state(
    conn: AsyncConnection,
    finding_id: int,
    state: FindingState,
    *,
    who: str,
    comment: str | None,
    at: datetime,
    unless_resolved: bool = False,
) -> bool:
    """Set a finding's state with who, when and the comment, in ``conn``'s transaction;
    whether it changed (False: no such finding, or, with ``unless_resolved``, resolved)."""
    conds = [FindingRow.id == finding_id]
    if unless_resolved:
        conds.append(FindingRow.state != str(FindingState.RESOLVED))
    result = await conn.execute(
        update(FindingRow)
        .where(*conds)
        .values(state=str(state), state_changed_by=who, state_changed_at=at, comment=comment)
    )
    return bool(result.rowcount == 1)


class FindingsMixin(StoreBase):
    """``Store``: findings."""

    @timed("findings")
    async def findings(self, query: FindingQuery) -> Page[StoredFinding]:
        limit = page_limit(query.limit)
        async with self._read() as conn:
            rows = await orm(conn, findings_select(query, limit + 1))
        items = [stored_finding(r) for r in rows[:limit]]
        if len(rows) <= limit or not items:
            return Page(tuple(items), None)
        last = items[-1].finding
        if query.order == "severity":
            return Page(tuple(items), encode_cursor(int(last.severity), last.id))
        return Page(tuple(items), encode_cursor(last.id))

    @timed("finding")
    async def finding(self, finding_id: int) -> StoredFinding | None:
        async with self._read() as conn:
            rows = await orm(conn, select(FindingRow).where(FindingRow.id == finding_id))
        return stored_finding(rows[0]) if rows else None

    @timed("finding")
    async def finding_by_key(self, dedup_key: str) -> StoredFinding | None:
        stmt = select(FindingRow).where(FindingRow.dedup_key == dedup_key)
        async with self._read() as conn:
            rows = await orm(conn, stmt)
        return stored_finding(rows[0]) if rows else None

    @timed("finding_update")
    async def acknowledge_finding(
        self, finding_id: int, who: str, comment: str | None = None, *, at: datetime | None = None
    ) -> bool:
        """Acknowledge a finding that is not resolved, recording who and when; False if there
        is no such finding or it is resolved (a resolved finding stays resolved)."""
        async with self._write() as conn:
            return await change_state(
                conn,
                finding_id,
                FindingState.ACKNOWLEDGED,
                who=who,
                comment=comment,
                at=at or utcnow(),
                unless_resolved=True,
            )
