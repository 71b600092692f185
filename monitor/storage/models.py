"""The database schema: SQLAlchemy 2 typed ORM models, one per table.

The same schema serves SQLite and PostgreSQL. Portable types (``monitor.storage.coltypes``,
re-exported here) hide the differences:

- ``UTCDateTime``: aware UTC datetimes in and out (SQLite has no time zones);
- ``SafeText`` / ``IndexValue``: text that PostgreSQL can store (no NUL, no lone surrogates:
  a hostile certificate can carry both); ``IndexValue`` also caps indexed values at
  ``INDEX_VALUE_CHARS`` characters, so that no value can exceed PostgreSQL's B-tree row limit,
  and compares byte-wise (``COLLATE "C"`` on PostgreSQL, SQLite's default ``BINARY``), so that
  prefix ranges mean the same on both engines;
- ``SafeJSON``: JSON on SQLite, JSONB on PostgreSQL, cleaned like ``SafeText``.

Every index is named explicitly (``ix_<table>_<what>``), so that migrations can name them.
The migrations in ``migrations/versions/`` (``0001_initial`` and those after it) create
exactly this schema; a test checks that they do not drift.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from monitor.storage import chunks
from monitor.storage.cleaning import (
    INDEX_VALUE_CHARS,
    clean_json,
    clean_text,
    index_value,
    value_hash,
)
from monitor.storage.coltypes import BigID, IndexValue, SafeJSON, SafeText, UTCDateTime

__all__ = [  # the column types and cleaning are imported from here too
    "INDEX_VALUE_CHARS",
    "clean_json",
    "clean_text",
    "index_value",
    "value_hash",
]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

LOG_NAME = 255


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def of_engine(dialect: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """Alembic's ``include_object`` for a database of ``dialect``: an index made for the
    other engine only (``ddl_if``: ``index_all``'s value indexes) is not part of its schema."""

    def include(obj: Any, _name: str | None, _type: str, _reflected: bool, _to: Any) -> bool:
        only = getattr(obj, "_ddl_if", None)
        return only is None or only.dialect in (None, dialect)

    return include


class Log(Base):
    """One monitored log: where processing stands and what was last proven."""

    __tablename__ = "logs"

    name: Mapped[str] = mapped_column(String(LOG_NAME), primary_key=True)
    api: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(Text)
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)  # next index to process
    verified_size: Mapped[int | None] = mapped_column(BigInteger)
    verified_root: Mapped[bytes | None] = mapped_column(LargeBinary)
    verified_checkpoint: Mapped[str | None] = mapped_column(SafeText)  # raw signed note
    compact_size: Mapped[int] = mapped_column(BigInteger, default=0)
    compact_hashes: Mapped[bytes] = mapped_column(LargeBinary, default=b"")  # 32 bytes each
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # where tailing began (the start point's index) and when: history says what it searched.
    # None for logs tailed before migration 0007, which did not keep it
    first_index: Mapped[int | None] = mapped_column(BigInteger)
    first_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BackfillRow(Base):
    """Where a backfill of the range [start, end) of a log stands, apart from the log's own
    cursor: kept so that a backfill resumes after a crash instead of starting over."""

    __tablename__ = "backfills"

    log: Mapped[str] = mapped_column(String(LOG_NAME), ForeignKey("logs.name"), primary_key=True)
    # start_idx / end_idx: START and END are reserved words in SQL
    start: Mapped[int] = mapped_column(
        "start_idx", BigInteger, primary_key=True, autoincrement=False
    )
    end: Mapped[int] = mapped_column("end_idx", BigInteger, primary_key=True, autoincrement=False)
    cursor: Mapped[int] = mapped_column(BigInteger)  # next index to process
    checkpoint: Mapped[str | None] = mapped_column(SafeText)  # raw signed note proven against
    compact_size: Mapped[int] = mapped_column(BigInteger, default=0)
    compact_hashes: Mapped[bytes] = mapped_column(LargeBinary, default=b"")  # 32 bytes each
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CheckpointRow(Base):
    """Every checkpoint seen, verified or not, with its raw signed note: kept forever, as
    evidence should the log ever be caught lying."""

    __tablename__ = "checkpoints"
    __table_args__ = (
        # per origin: a Rekor v1 log renamed (a restarted pod) signs the same tree anew
        UniqueConstraint(
            "log", "origin", "size", "root", name="uq_checkpoints_log_origin_size_root"
        ),
        Index("ix_checkpoints_log_seen_at", "log", "seen_at"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    log: Mapped[str] = mapped_column(String(LOG_NAME), ForeignKey("logs.name"))
    origin: Mapped[str] = mapped_column(SafeText)
    size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[bytes] = mapped_column(LargeBinary)
    raw: Mapped[str] = mapped_column(SafeText)
    verified: Mapped[bool] = mapped_column(Boolean)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # the witness cosignatures found when stored (a list of objects); NULL: none configured
    cosigners: Mapped[Any] = mapped_column(SafeJSON, nullable=True)


class EntryRow(Base):
    """An entry that matched a rule: the parser's record, the raw body, and the columns that
    queries show. Every queryable identity is in ``entry_identities``."""

    __tablename__ = "entries"
    __table_args__ = (Index("ix_entries_time", "time", "log", "idx"),)

    log: Mapped[str] = mapped_column(String(LOG_NAME), ForeignKey("logs.name"), primary_key=True)
    index: Mapped[int] = mapped_column("idx", BigInteger, primary_key=True, autoincrement=False)
    integrated_time: Mapped[int | None] = mapped_column(BigInteger)  # as the log says
    time: Mapped[int] = mapped_column(BigInteger)  # integrated time, else when first stored
    kind: Mapped[str] = mapped_column(SafeText)
    api_version: Mapped[str] = mapped_column(SafeText)
    san: Mapped[str | None] = mapped_column(SafeText)  # the first SAN of the first signer
    issuer: Mapped[str | None] = mapped_column(SafeText)
    key_fingerprint: Mapped[str | None] = mapped_column(SafeText)
    cert_fingerprint: Mapped[str | None] = mapped_column(SafeText)
    record: Mapped[Any] = mapped_column(SafeJSON)  # monitor.entries.serialize.result_json
    raw_body: Mapped[bytes] = mapped_column(LargeBinary)
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EntryIdentity(Base):
    """One (field, value) of a stored entry: ``san``, ``issuer``, ``ext:<Fulcio extension>``,
    ``fingerprint`` (key or certificate), ``digest`` (every digest of the entry, subjects'
    included), ``subject`` (in-toto subject name), ``subject_digest``."""

    __tablename__ = "entry_identities"
    __table_args__ = (
        ForeignKeyConstraint(
            ["log", "idx"],
            ["entries.log", "entries.idx"],
            ondelete="CASCADE",
            name="fk_entry_identities_entry",
        ),
        # SQLite: local to chunks of the log (see monitor.storage.chunks)
        Index("ix_entry_identities_lookup", "field", "value", "log", "idx").ddl_if(
            dialect="postgresql"
        ),
        chunks.sqlite_index(chunks.IDENTITY_LOOKUP, "log", "field", "value"),
        # SQLite: the table is its primary key B-tree (no rowid, no third copy of each row)
        {"sqlite_with_rowid": False},
    )

    log: Mapped[str] = mapped_column(String(LOG_NAME), primary_key=True)
    index: Mapped[int] = mapped_column("idx", BigInteger, primary_key=True, autoincrement=False)
    field: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(IndexValue, primary_key=True)


class FindingRow(Base):
    __tablename__ = "findings"
    __table_args__ = (
        Index("ix_findings_state", "state", "id"),
        Index("ix_findings_severity", "severity", "id"),
        Index("ix_findings_kind", "kind", "id"),
        Index("ix_findings_rule", "rule", "id"),
        Index("ix_findings_log", "log", "idx"),
        Index("ix_findings_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    type: Mapped[str | None] = mapped_column(String(64))
    severity: Mapped[int] = mapped_column(Integer)
    rule: Mapped[str | None] = mapped_column(String(255))
    log: Mapped[str | None] = mapped_column(String(LOG_NAME))
    index: Mapped[int | None] = mapped_column("idx", BigInteger)
    dedup_key: Mapped[str] = mapped_column(String(128), unique=True)
    state: Mapped[str] = mapped_column(String(32))
    state_changed_by: Mapped[str | None] = mapped_column(SafeText)
    state_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    comment: Mapped[str | None] = mapped_column(SafeText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    matched: Mapped[Any] = mapped_column(SafeJSON)
    unmet: Mapped[Any] = mapped_column(SafeJSON)
    detail: Mapped[str] = mapped_column(SafeText)
    evidence: Mapped[Any | None] = mapped_column(SafeJSON)
    # the image a registry finding is about: {"repository", "tag", "digest"}; NULL for others
    image: Mapped[Any | None] = mapped_column(SafeJSON, nullable=True)


class OutboxRow(Base):
    """An alert to deliver to one sink, written in the same transaction as its finding:
    ``event`` trigger (the finding), or resolve (the finding cleared), once each per sink."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("dedup_key", "sink", "event", name="uq_outbox_dedup_key_sink_event"),
        Index("ix_outbox_due", "sink", "delivered_at", "dead_at", "next_attempt_at"),
        Index("ix_outbox_pending", "sink", "delivered_at", "dead_at", "id"),
        Index("ix_outbox_dead_at", "dead_at"),
        Index("ix_outbox_message", "sink", "message_id"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    dedup_key: Mapped[str] = mapped_column(String(128), ForeignKey("findings.dedup_key"))
    sink: Mapped[str] = mapped_column(String(128))
    event: Mapped[str] = mapped_column(String(16), server_default="trigger")
    payload: Mapped[Any] = mapped_column(SafeJSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dead_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(SafeText)
    # who is posting it now, and until when the claim holds (a dead holder's claim expires)
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the webhook-id it was first claimed under: a replica that sends it again uses the same
    message_id: Mapped[str | None] = mapped_column(String(64))


class WriteProbe(Base):
    """One row per monitor process, rewritten by the readiness check: a database that takes
    reads but refuses writes (a full disk) is not ready."""

    __tablename__ = "write_probes"

    holder: Mapped[str] = mapped_column(String(255), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class LogLease(Base):
    """Who leads a log (several replicas on PostgreSQL): the replica process ``holder`` until
    ``expires_at``. ``epoch`` rises whenever the lease is taken afresh, and a batch commits
    only under the epoch it was started with (fencing)."""

    __tablename__ = "log_leases"

    log: Mapped[str] = mapped_column(String(255), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    replica: Mapped[str] = mapped_column(String(255))
    epoch: Mapped[int] = mapped_column(BigInteger)
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Replica(Base):
    """A running replica process and until when its heartbeat holds."""

    __tablename__ = "replicas"

    holder: Mapped[str] = mapped_column(String(255), primary_key=True)
    replica: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"
    __table_args__ = (Index("ix_delivery_attempts_outbox", "outbox_id", "at"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    outbox_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("outbox.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(SafeText)
    duration: Mapped[float] = mapped_column(Float)  # seconds


class MalformedRow(Base):
    __tablename__ = "malformed_entries"

    log: Mapped[str] = mapped_column(String(LOG_NAME), ForeignKey("logs.name"), primary_key=True)
    index: Mapped[int] = mapped_column("idx", BigInteger, primary_key=True, autoincrement=False)
    reason: Mapped[str] = mapped_column(SafeText)
    kind: Mapped[str | None] = mapped_column(SafeText)
    api_version: Mapped[str | None] = mapped_column(SafeText)
    raw_body: Mapped[bytes] = mapped_column(LargeBinary)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IndexLog(Base):
    """A short number for each log that ``index_all`` holds rows of: every index entry of
    that table carries its log, and a number is a few bytes where a name is up to 255."""

    __tablename__ = "index_all_logs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    log: Mapped[str] = mapped_column(String(LOG_NAME), unique=True)


class IndexAllRow(Base):
    """A compact row for every entry of the log (``index_all``), purged after a retention
    period: the search index that Rekor v2 does not offer.

    Key fingerprints and digests are found through ``value_hash`` of the value (8 bytes
    instead of 70 or more in each index entry) and then compared whole. Every index entry
    ends with (log number, index): a batch of random keys rewrites a page per key, so the
    smaller the entries, the fewer pages a batch touches."""

    __tablename__ = "index_all"
    __table_args__ = (
        # local to chunks of the log (of each partition on PostgreSQL; see
        # monitor.storage.chunks), so that a batch writes into a small part of each
        *chunks.index_all_indexes(),
        # few values, each taking rows at its end: no chunks needed
        Index("ix_index_all_issuer", "issuer", "log_id", "idx"),
        Index("ix_index_all_time", "time"),
        # PostgreSQL: a partition per log and range of indexes (monitor.storage.partitions)
        {"sqlite_with_rowid": False, "postgresql_partition_by": "RANGE (log_id, idx)"},
    )

    log_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("index_all_logs.id"), primary_key=True, autoincrement=False
    )
    index: Mapped[int] = mapped_column("idx", BigInteger, primary_key=True, autoincrement=False)
    time: Mapped[int] = mapped_column(BigInteger)  # integrated time, else when seen
    kind: Mapped[str] = mapped_column(SafeText)
    san: Mapped[str | None] = mapped_column(IndexValue)
    issuer: Mapped[str | None] = mapped_column(IndexValue)
    key_fingerprint: Mapped[str | None] = mapped_column(IndexValue)
    digest: Mapped[str | None] = mapped_column(IndexValue)
    key_hash: Mapped[int | None] = mapped_column(BigInteger)
    digest_hash: Mapped[int | None] = mapped_column(BigInteger)


IMAGE_NAME = 255  # a repository with its host (the reference grammar's bound)
DIGEST = 160  # sha512:<128 hex> and room to spare
NO_TAG = ""
"""``image_digests.tag`` of a platform manifest or a digest watched without a tag; and
``image_signatures.log`` of an entry in no configured log. Empty, not NULL, so that the
unique constraints (which count NULLs as distinct on both engines) hold for them too."""


class ImageDigestRow(Base):
    """A digest a watched repository's tag points at (or a platform of one), as the last
    registry pass found it. ``first_seen`` is kept on every upsert: an image's grace period
    starts there."""

    __tablename__ = "image_digests"
    __table_args__ = (
        UniqueConstraint(
            "repository", "tag", "digest", name="uq_image_digests_repository_tag_digest"
        ),
        Index("ix_image_digests_digest", "repository", "digest"),
        Index("ix_image_digests_index_digest", "repository", "index_digest"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    repository: Mapped[str] = mapped_column(String(IMAGE_NAME))
    tag: Mapped[str] = mapped_column(String(128))  # NO_TAG: a platform manifest, or no tag
    digest: Mapped[str] = mapped_column(String(DIGEST))
    index_digest: Mapped[str | None] = mapped_column(String(DIGEST))
    platform: Mapped[str | None] = mapped_column(SafeText)  # as the registry's index says
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_checked: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))  # signed, unsigned, unexpected, ...
    summary: Mapped[Any] = mapped_column(SafeJSON)  # signers, roles, errors


class ImageSignatureRow(Base):
    """A registry signature (or attestation) of a digest tied to a log entry: the link that
    puts an image reference on that entry in history, and explains it to orphan checks."""

    __tablename__ = "image_signatures"
    __table_args__ = (
        UniqueConstraint(
            "repository",
            "digest",
            "log",
            "log_index",
            "role",
            name="uq_image_signatures_repository_digest_log_log_index_role",
        ),
        Index("ix_image_signatures_entry", "log", "log_index"),
        Index("ix_image_signatures_repository", "repository", "digest"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    repository: Mapped[str] = mapped_column(String(IMAGE_NAME))
    digest: Mapped[str] = mapped_column(String(DIGEST))
    log: Mapped[str] = mapped_column(String(LOG_NAME))  # NO_TAG ("") : no configured log
    log_index: Mapped[int] = mapped_column(BigInteger)
    body_sha256: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))  # signature, attestation
    status: Mapped[str] = mapped_column(String(32))  # the verdict's
    signer: Mapped[str | None] = mapped_column(SafeText)  # the certificate's SAN
    issuer: Mapped[str | None] = mapped_column(SafeText)
    tie: Mapped[str | None] = mapped_column(String(16))  # proven, mismatch, unavailable, ...
    detail: Mapped[str | None] = mapped_column(SafeText)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)


class ImageScanRow(Base):
    """One registry pass over a repository. An orphan's grace period ends only after a
    complete pass that began after the entry was stored."""

    __tablename__ = "image_scans"
    __table_args__ = (Index("ix_image_scans_repository", "repository", "complete", "started_at"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    repository: Mapped[str] = mapped_column(String(IMAGE_NAME))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    complete: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(SafeText)


metadata = Base.metadata
