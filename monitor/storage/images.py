"""Container images as the registry passes found them: the digests watched tags point at,
their signatures tied to log entries (the links), and the passes themselves.

The records stored are this module's own frozen dataclasses (``ImageScanRecord`` and what it
holds): storage sits below the package that checks images, and whoever runs a pass maps its
reports onto them. Everything in them that a registry or a log chose (platforms, signers,
issuers, details, summaries) is stored through ``SafeText``/``SafeJSON``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, Table, and_, delete, exists, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from monitor.core.errors import MalformedInputError
from monitor.core.imageref import check_digest, is_tag, parse_repository
from monitor.storage.base import JSON, StoreBase, _table, orm, timed
from monitor.storage.models import (
    NO_TAG,
    EntryRow,
    FindingRow,
    ImageDigestRow,
    ImageScanRow,
    ImageSignatureRow,
    clean_json,
)
from monitor.storage.paging import Page, decode_cursor, encode_cursor, page_limit

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
IMAGE_DIGESTS = _table(ImageDigestRow)
IMAGE_SIGNATURES = _table(ImageSignatureRow)
IMAGE_SCANS = _table(ImageScanRow)

ImageStatus = Literal["signed", "unsigned", "unexpected", "invalid", "unknown"]
IMAGE_STATUSES: tuple[str, ...] = ("signed", "unsigned", "unexpected", "invalid", "unknown")
Role = Literal["signature", "attestation"]
ROLES: tuple[str, ...] = ("signature", "attestation")
# the kinds of finding a rule's matched entries are stored with (one each)
MATCH_KINDS = ("expected_use", "unexpected_signer", "unexpected_key_use", "watched_use")


@dataclass(frozen=True)
class ImageSignatureRecord:
    """A signature or attestation of a digest that names a log entry: ``log`` the configured
    log holding it (None: no configured log), ``log_index`` its global index,
    ``body_sha256`` the hex SHA-256 of the body the signature names; ``status`` the
    verdict's status, ``signer`` the certificate's SAN, ``tie`` how it was tied to our log
    (proven, mismatch, unavailable, unknown_log; None: not tied), ``detail`` why."""

    log: str | None
    log_index: int
    body_sha256: str
    role: Role
    status: str
    signer: str | None = None
    issuer: str | None = None
    tie: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class ImageDigestRecord:
    """A digest one pass checked: the watched ``tags`` pointing at it (empty: a platform
    manifest, or asked by digest), the index it is a platform of, its ``status`` (one of
    ``IMAGE_STATUSES``), a JSON ``summary`` (signers, roles, errors) and its signatures
    that name log entries."""

    digest: str
    status: ImageStatus
    tags: tuple[str, ...] = ()
    index_digest: str | None = None
    platform: str | None = None
    summary: JSON = field(default_factory=dict)
    signatures: tuple[ImageSignatureRecord, ...] = ()


@dataclass(frozen=True)
class ImageScanRecord:
    """One registry pass over ``repository`` (normalised, as ``ImageSettings.repository``):
    ``complete`` when every watched tag was read and checked."""

    repository: str
    started_at: datetime
    finished_at: datetime
    complete: bool
    digests: tuple[ImageDigestRecord, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class StoredImageDigest:
    """A row of ``image_digests``: ``tag`` None for a platform manifest or no tag."""

    repository: str
    tag: str | None
    digest: str
    index_digest: str | None
    platform: str | None
    status: str
    summary: JSON
    first_seen: datetime
    last_seen: datetime
    last_checked: datetime

    @property
    def reference(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        return f"{self.repository}{tag}@{self.digest}"

    def to_json(self) -> JSON:
        return {
            "repository": self.repository,
            "tag": self.tag,
            "digest": self.digest,
            "index_digest": self.index_digest,
            "platform": self.platform,
            "status": self.status,
            "summary": self.summary,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "last_checked": self.last_checked.isoformat(),
        }


@dataclass(frozen=True)
class StoredImageLink:
    """A row of ``image_signatures``: the signature of ``repository@digest`` tied to the
    entry ``log`` (None: no configured log) #``log_index``."""

    repository: str
    digest: str
    log: str | None
    log_index: int
    body_sha256: str
    role: str
    status: str
    signer: str | None
    issuer: str | None
    tie: str | None
    detail: str | None
    first_seen: datetime
    last_seen: datetime

    def to_json(self) -> JSON:
        return {
            "repository": self.repository,
            "digest": self.digest,
            "log": self.log,
            "log_index": self.log_index,
            "body_sha256": self.body_sha256,
            "role": self.role,
            "status": self.status,
            "signer": self.signer,
            "issuer": self.issuer,
            "tie": self.tie,
            "detail": self.detail,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
        }


def _stored_digest(row: ImageDigestRow) -> StoredImageDigest:
    return StoredImageDigest(
        row.repository,
        row.tag or None,
        row.digest,
        row.index_digest,
        row.platform,
        row.status,
        row.summary if isinstance(row.summary, dict) else {},
        row.first_seen,
        row.last_seen,
        row.last_checked,
    )


def _stored_link(row: ImageSignatureRow) -> StoredImageLink:
    return StoredImageLink(
        row.repository,
        row.digest,
        row.log or None,
        row.log_index,
        row.body_sha256,
        row.role,
        row.status,
        row.signer,
        row.issuer,
        row.tie,
        row.detail,
        row.first_seen,
        row.last_seen,
    )


def _check(scan: ImageScanRecord) -> None:
    """Refuse what the tables could not hold as meant (a caller's bug, not a registry's:
    the checking side validated digests and tags before)."""
    if scan.started_at > scan.finished_at:
        raise MalformedInputError("an image scan cannot finish before it starts")
    if str(parse_repository(scan.repository)) != scan.repository:
        # history finds images by the normalised name: another spelling would never match
        raise MalformedInputError(f"{scan.repository!r} is not a normalised repository")
    for d in scan.digests:
        check_digest(d.digest)
        if d.index_digest is not None:
            check_digest(d.index_digest)
        if d.status not in IMAGE_STATUSES:
            raise MalformedInputError(f"unknown image status {d.status!r}")
        bad = [t for t in d.tags if not is_tag(t)]
        if bad:
            raise MalformedInputError(f"{bad[0][:140]!r} is not a tag")
        for s in d.signatures:
            if s.role not in ROLES:
                raise MalformedInputError(f"unknown signature role {s.role!r}")
            if s.log_index < 0:
                raise MalformedInputError("a negative log index")
            if not _SHA256_HEX.fullmatch(s.body_sha256):
                raise MalformedInputError("body_sha256 is not 64 lowercase hex digits")


class ImagesMixin(StoreBase):
    """``Store``: image digests, their links to log entries, and registry passes."""

    def _upsert(self, table: Table, keys: Sequence[str], kept: Sequence[str]) -> Any:
        """INSERT ... ON CONFLICT (keys) DO UPDATE every column but ``keys`` and ``kept``."""
        insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        stmt = insert(table)
        skip = {*keys, *kept, "id"}
        changes = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in skip}
        return stmt.on_conflict_do_update(index_elements=list(keys), set_=changes)

    @timed("image_scan")
    async def record_image_scan(self, scan: ImageScanRecord) -> None:
        """Store one registry pass in one transaction: every digest upserted (its
        ``first_seen`` kept), every signature link upserted (its ``first_seen`` kept), and
        the pass's row (the repository's passes before its latest complete one go)."""
        _check(scan)
        at = scan.finished_at
        digests: list[JSON] = []
        links: dict[tuple[str, str, int, str], JSON] = {}
        for d in scan.digests:
            for tag in d.tags or (NO_TAG,):
                digests.append(
                    {
                        "repository": scan.repository,
                        "tag": tag,
                        "digest": d.digest,
                        "index_digest": d.index_digest,
                        "platform": d.platform,
                        "first_seen": at,
                        "last_seen": at,
                        "last_checked": at,
                        "status": d.status,
                        "summary": clean_json(d.summary),
                    }
                )
            for s in d.signatures:
                log = s.log or NO_TAG
                links[(d.digest, log, s.log_index, s.role)] = {
                    "repository": scan.repository,
                    "digest": d.digest,
                    "log": log,
                    "log_index": s.log_index,
                    "body_sha256": s.body_sha256,
                    "role": s.role,
                    "status": s.status,
                    "signer": s.signer,
                    "issuer": s.issuer,
                    "tie": s.tie,
                    "detail": s.detail,
                    "first_seen": at,
                    "last_seen": at,
                }
        # one row per key in a statement: PostgreSQL refuses to update a row twice in one
        unique = list({(r["tag"], r["digest"]): r for r in digests}.values())
        async with self._write() as conn:
            if unique:
                stmt = self._upsert(IMAGE_DIGESTS, ("repository", "tag", "digest"), ("first_seen",))
                await conn.execute(stmt, unique)
            self._step("image_digests")
            if links:
                on = ("repository", "digest", "log", "log_index", "role")
                stmt = self._upsert(IMAGE_SIGNATURES, on, ("first_seen",))
                await conn.execute(stmt, list(links.values()))
            self._step("image_signatures")
            await conn.execute(
                IMAGE_SCANS.insert().values(
                    repository=scan.repository,
                    started_at=scan.started_at,
                    finished_at=scan.finished_at,
                    complete=scan.complete,
                    error=scan.error,
                )
            )
            # only the latest complete pass and those after it are ever read: the table stays
            # a few rows a repository instead of one every poll_interval forever
            t = IMAGE_SCANS
            latest = (
                select(func.max(t.c.started_at))
                .where(t.c.repository == scan.repository, t.c.complete.is_(True))
                .scalar_subquery()
            )
            await conn.execute(
                delete(t).where(t.c.repository == scan.repository, t.c.started_at < latest)
            )

    @timed("images")
    async def image_digests(
        self, repository: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page[StoredImageDigest]:
        """Stored digests (of ``repository``, or of every one) in (repository, tag, digest)
        order, one page; rows of no tag (platforms) come first in their repository."""
        limit = page_limit(limit)
        t = IMAGE_DIGESTS
        stmt = select(ImageDigestRow)
        if repository is not None:
            stmt = stmt.where(t.c.repository == repository)
        if cursor is not None:
            repo, tag, digest = decode_cursor(cursor, (str, str, str))
            stmt = stmt.where(tuple_(t.c.repository, t.c.tag, t.c.digest) > (repo, tag, digest))
        stmt = stmt.order_by(t.c.repository, t.c.tag, t.c.digest).limit(limit + 1)
        async with self._read() as conn:
            rows = await orm(conn, stmt)
        more = len(rows) > limit
        rows = rows[:limit]
        last = rows[-1] if rows else None
        next_cursor = None
        if more and last is not None:
            next_cursor = encode_cursor(last.repository, last.tag, last.digest)
        return Page(tuple(_stored_digest(r) for r in rows), next_cursor)

    @timed("images")
    async def image_links_for(self, log: str, index: int) -> list[StoredImageLink]:
        """The registry signatures tied to the entry ``log`` #``index``."""
        t = IMAGE_SIGNATURES
        stmt = (
            select(ImageSignatureRow)
            .where(t.c.log == log, t.c.log_index == index)
            .order_by(t.c.repository, t.c.digest, t.c.role)
        )
        async with self._read() as conn:
            return [_stored_link(r) for r in await orm(conn, stmt)]

    @timed("images")
    async def last_complete_scan(self, repository: str) -> datetime | None:
        """When the latest complete pass over ``repository`` began (None: none yet)."""
        t = IMAGE_SCANS
        stmt = select(func.max(t.c.started_at)).where(
            t.c.repository == repository, t.c.complete.is_(True)
        )
        async with self._read() as conn:
            found: datetime | None = (await conn.execute(stmt)).scalar()
        return found  # max() keeps the column's type: an aware UTC datetime

    @timed("images")
    async def unlinked_entries(
        self, rule: str, stored_before: datetime, limit: int = 1000
    ) -> list[tuple[str, int]]:
        """Entries ``rule`` matched, stored before ``stored_before``, that no registry
        signature is tied to and that have no ``orphan_signature`` finding of ``rule`` yet:
        (log, index), oldest first, at most ``limit``. The caller sets ``stored_before`` to
        the earlier of (now - the rule's grace) and the start of the latest complete pass of
        every watched repository: an entry is an orphan only once a whole pass that began
        after it was stored has not explained it."""
        stmt = unlinked_select(rule, stored_before, page_limit(limit))
        async with self._read() as conn:
            rows = (await conn.execute(stmt)).all()
        # the join to entries makes both non-null
        keys = ((log, idx) for log, idx in rows if log is not None and idx is not None)
        return list(dict.fromkeys(keys))


def unlinked_select(
    rule: str, stored_before: datetime, limit: int
) -> Select[str | None, int | None]:
    """The SELECT of ``ImagesMixin.unlinked_entries``."""
    f, e, s = FindingRow, EntryRow, IMAGE_SIGNATURES
    orphan = _table(FindingRow).alias("o")
    return (
        select(f.log, f.index)
        .join(e, and_(e.log == f.log, e.index == f.index))
        .where(
            f.rule == rule,
            f.kind.in_(MATCH_KINDS),
            e.stored_at < stored_before,
            # only a valid signature proven in the log explains an entry: an invalid one
            # (anyone may attach one naming any entry) hides no orphan
            ~exists().where(
                s.c.log == f.log,
                s.c.log_index == f.index,
                s.c.status == "valid",
                s.c.tie == "proven",
            ),
            ~exists().where(
                orphan.c.rule == rule,
                orphan.c.kind == "orphan_signature",
                orphan.c.log == f.log,
                orphan.c.idx == f.index,
            ),
        )
        # in the order the findings were stored: both engines walk ix_findings_rule
        # (rule, id) and stop at the limit (ordered by entry, SQLite read every finding of
        # the rule first: 0.4 s for 100k). No DISTINCT: a rule gives an entry one finding
        .order_by(f.id)
        .limit(limit)
    )
