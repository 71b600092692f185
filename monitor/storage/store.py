"""The narrow storage interface of the daemon and the API: ``Store``.

Guarantees (tested against SQLite and PostgreSQL by ``tests/test_storage_contract.py``):

- every write is idempotent: entries are unique on (log, index), findings on their dedup
  key, outbox rows on (dedup key, sink), checkpoints on (log, size, root); storing anything
  twice changes nothing;
- ``store_batch`` writes a batch (matches, findings, outbox rows, malformed entries,
  index_all rows, checkpoint, compact range and cursor) in ONE transaction: all or nothing;
- the cursor, the verified checkpoint and the compact range never move backwards;
- every history and findings query is answered from an index, and paged by a stable cursor.

Any database failure raises ``StorageError``: nothing is retried silently.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    case,
    delete,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from monitor.checkpoint import SignedCheckpoint
from monitor.entries.record import (
    CertificateSigner,
    Digest,
    KeySigner,
    MalformedEntry,
    SigningRecord,
)
from monitor.entries.serialize import result_json
from monitor.errors import MalformedInputError, StorageError
from monitor.findings import Finding, FindingKind, FindingState, Unmet
from monitor.merkle import HASH_SIZE, CompactRangeState
from monitor.rules.spec import Severity
from monitor.storage import engine as engines
from monitor.storage.models import (
    Base,
    CheckpointRow,
    DeliveryAttempt,
    EntryIdentity,
    EntryRow,
    FindingRow,
    IndexAllRow,
    Log,
    MalformedRow,
    OutboxRow,
    clean_text,
    index_value,
)

JSON = dict[str, Any]
T = TypeVar("T")


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


LOGS = _table(Log)
CHECKPOINTS = _table(CheckpointRow)
ENTRIES = _table(EntryRow)
IDENTITIES = _table(EntryIdentity)
FINDINGS = _table(FindingRow)
OUTBOX = _table(OutboxRow)
ATTEMPTS = _table(DeliveryAttempt)
MALFORMED = _table(MalformedRow)
INDEX_ALL = _table(IndexAllRow)

MAX_PAGE = 1000


def utcnow() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------------ the values


@dataclass(frozen=True)
class CheckpointData:
    """A checkpoint as stored: its origin, size, root hash and the raw signed note."""

    origin: str
    size: int
    root: bytes
    raw: str

    @classmethod
    def from_signed(cls, cp: SignedCheckpoint) -> CheckpointData:
        return cls(cp.origin, cp.size, cp.root_hash, cp.raw)


@dataclass(frozen=True)
class IndexRow:
    """One ``index_all`` row: a compact line per log entry."""

    log: str
    index: int
    time: int  # unix seconds: integrated time, else when the monitor saw the entry
    kind: str
    san: str | None = None
    issuer: str | None = None
    key_fingerprint: str | None = None
    digest: str | None = None

    def row(self) -> dict[str, object]:
        """The ``index_all`` table row."""
        return {
            "log": self.log,
            "idx": self.index,
            "time": self.time,
            "kind": self.kind,
            "san": self.san,
            "issuer": self.issuer,
            "key_fingerprint": self.key_fingerprint,
            "digest": self.digest,
        }

    @classmethod
    def from_record(cls, r: SigningRecord, seen: int) -> IndexRow:
        """The row for ``r``: first SAN, issuer and key fingerprint of the first signer (a
        certificate's key), and the first digest (artifact, payload, then subject)."""
        san = issuer = key = None
        if r.signers:
            s = r.signers[0]
            if isinstance(s, CertificateSigner):
                san = s.sans[0].value if s.sans else None
                issuer = s.issuer
                key = s.key.fingerprint
            else:
                key = s.fingerprint
        digests = [*r.artifact_digests, *([r.payload_hash] if r.payload_hash else [])]
        digests += [d for subj in r.subjects for d in subj.digests]
        t = r.integrated_time if r.integrated_time is not None else seen
        return cls(
            r.log, r.index, t, r.kind, san, issuer, key, str(digests[0]) if digests else None
        )


@dataclass(frozen=True)
class OutboxSpec:
    """Announce the finding ``dedup_key`` to each sink in ``sinks``."""

    dedup_key: str
    sinks: tuple[str, ...]


@dataclass(frozen=True)
class Batch:
    """Everything one step of a log's processing produced, stored in one transaction.

    ``cursor`` is the next index to process; ``checkpoint`` the verified checkpoint the
    batch was proven against (if any); ``compact_range`` the range to resume from.
    ``evidence`` maps a finding's dedup key to the evidence kept with it.
    """

    log: str
    cursor: int
    checkpoint: CheckpointData | None = None
    compact_range: CompactRangeState | None = None
    records: tuple[SigningRecord, ...] = ()
    findings: tuple[Finding, ...] = ()
    evidence: Mapping[str, JSON] = field(default_factory=dict)
    outbox: tuple[OutboxSpec, ...] = ()
    malformed: tuple[MalformedEntry, ...] = ()
    index_rows: tuple[IndexRow, ...] = ()
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class BatchResult:
    """How many rows the batch added (0 everywhere when it was stored before)."""

    entries: int
    findings: int
    outbox: int
    malformed: int
    index_rows: int


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


@dataclass(frozen=True)
class StoredCheckpoint:
    log: str
    origin: str
    size: int
    root: bytes
    raw: str
    verified: bool
    seen_at: datetime


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
        }


HistoryItem = StoredEntry | IndexedEntry


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    next_cursor: str | None  # None: this was the last page


@dataclass(frozen=True)
class HistoryQuery:
    """Filters are ANDed. ``san`` is exact, or a prefix when it ends with ``*``. ``ext`` is a
    Fulcio extension (name, value), e.g. ``("source-repository-uri", "https://...")``.
    ``fingerprint`` matches a key or certificate fingerprint; ``digest`` any digest of the
    entry (``sha256:<hex>``; bare hex is taken by its length). Index bounds are inclusive;
    ``since`` is inclusive, ``until`` exclusive. ``all_entries`` searches ``index_all``
    (every entry of the log; no ``ext`` or ``subject`` there) instead of matched entries."""

    san: str | None = None
    issuer: str | None = None
    ext: tuple[str, str] | None = None
    fingerprint: str | None = None
    digest: str | None = None
    subject: str | None = None
    log: str | None = None
    index_min: int | None = None
    index_max: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    cursor: str | None = None
    all_entries: bool = False


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
    """Filters are ANDed; newest first."""

    states: tuple[FindingState, ...] = ()
    min_severity: Severity | None = None
    kinds: tuple[FindingKind, ...] = ()
    rule: str | None = None
    log: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    cursor: str | None = None


@dataclass(frozen=True)
class OutboxItem:
    id: int
    dedup_key: str
    sink: str
    payload: JSON
    created_at: datetime
    next_attempt_at: datetime
    attempts: int
    delivered_at: datetime | None
    dead_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class Attempt:
    outbox_id: int
    at: datetime
    status: str  # delivered, failed, dead
    error: str | None
    duration: float


# ------------------------------------------------------------------------------ identities


def normalize_digest(text: str) -> str:
    """``algorithm:hex`` in lower case; bare hex is named by its length."""
    t = text.strip().lower()
    if ":" in t:
        return t
    return {40: "sha1:", 64: "sha256:", 96: "sha384:", 128: "sha512:"}.get(len(t), "") + t


def identities(r: SigningRecord) -> set[tuple[str, str]]:
    """Every (field, value) of ``r`` that history can be asked about."""
    out: set[tuple[str, str]] = set()
    for s in r.signers:
        if isinstance(s, CertificateSigner):
            out.update(("san", san.value) for san in s.sans)
            if s.issuer:
                out.add(("issuer", s.issuer))
            out.update((f"ext:{e.name}", e.value) for e in s.extensions if e.name)
            out.add(("fingerprint", s.fingerprint))
            out.add(("fingerprint", s.key.fingerprint))
        else:
            out.add(("fingerprint", s.fingerprint))
    digests: list[Digest] = [*r.artifact_digests]
    digests += [d for d in (r.payload_hash, r.envelope_hash) if d is not None]
    for subj in r.subjects:
        out.add(("subject", subj.name))
        for d in subj.digests:
            out.add(("subject_digest", str(d)))
            digests.append(d)
    out.update(("digest", str(d)) for d in digests)
    # values are stored capped: two long values sharing a prefix become one row
    return {(f[:128], index_value(v)) for f, v in out}


def _first_signer_columns(
    r: SigningRecord,
) -> tuple[str | None, str | None, str | None, str | None]:
    """(first SAN, issuer, key fingerprint, certificate fingerprint) of the first signer."""
    if not r.signers:
        return None, None, None, None
    s = r.signers[0]
    if isinstance(s, KeySigner):
        return None, None, s.fingerprint, None
    san = s.sans[0].value if s.sans else None
    return san, s.issuer, s.key.fingerprint, s.fingerprint


def _successor(prefix: str) -> str | None:
    """The least string greater than every string starting with ``prefix`` (code point
    order, which is byte order in UTF-8), or None when there is none."""
    chars = list(prefix)
    while chars:
        c = ord(chars.pop()) + 1
        if c == 0xD800:
            c = 0xE000
        if c <= 0x10FFFF:
            return "".join(chars) + chr(c)
    return None


def _encode_cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def _decode_cursor(text: str, shape: tuple[type, ...]) -> list[Any]:
    try:
        parts = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:
        raise MalformedInputError(f"bad page cursor {text!r}") from None
    if not (
        isinstance(parts, list)
        and len(parts) == len(shape)
        and all(type(p) is t for p, t in zip(parts, shape, strict=True))
    ):
        raise MalformedInputError(f"bad page cursor {text!r}")
    return parts


def _limit(n: int) -> int:
    if n < 1:
        raise MalformedInputError(f"page size must be at least 1, not {n}")
    return min(n, MAX_PAGE)


# ---------------------------------------------------------------------------------- queries


def _value_condition(col: Any, text: str) -> ColumnElement[bool]:
    """Exact match, or a prefix range when ``text`` ends with ``*`` (an index range scan on
    both engines: byte-wise comparison, no LIKE)."""
    if text.endswith("*"):
        prefix = index_value(text[:-1])
        upper = _successor(prefix)
        if not prefix:
            return col.is_not(None)  # type: ignore[no-any-return]
        if upper is None:
            return col >= prefix  # type: ignore[no-any-return]
        return and_(col >= prefix, col < upper)
    return col == text  # type: ignore[no-any-return]


def _identity_filters(q: HistoryQuery) -> list[tuple[str, str]]:
    """(field, value) pairs, most selective first: the first one drives the query."""
    out: list[tuple[str, str]] = []
    if q.fingerprint:
        out.append(("fingerprint", q.fingerprint.strip()))
    if q.digest:
        out.append(("digest", normalize_digest(q.digest)))
    if q.subject:
        out.append(("subject", q.subject))
    if q.ext:
        out.append((f"ext:{q.ext[0]}", q.ext[1]))
    if q.san and not q.san.endswith("*"):
        out.append(("san", q.san))
    if q.san and q.san.endswith("*"):
        out.append(("san", q.san))
    if q.issuer:
        out.append(("issuer", q.issuer))
    return out


def _timestamp(t: datetime) -> int:
    if t.tzinfo is None:
        raise MalformedInputError("history times must be aware datetimes")
    return int(t.timestamp())


def _key_conditions(log_col: Any, idx_col: Any, q: HistoryQuery) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if q.log is not None:
        conds.append(log_col == q.log)
    if q.index_min is not None:
        conds.append(idx_col >= q.index_min)
    if q.index_max is not None:
        conds.append(idx_col <= q.index_max)
    if q.cursor is not None:
        log, idx = _decode_cursor(q.cursor, (str, int))
        conds.append(tuple_(log_col, idx_col) > tuple_(log, idx))
    return conds


def history_select(q: HistoryQuery, limit: int) -> Select[Any]:
    """The SELECT answering ``q`` over matched entries (``EntryRow`` rows, in (log, index)
    order, ``limit`` of them)."""
    e = ENTRIES
    filters = _identity_filters(q)
    time_conds: list[ColumnElement[bool]] = []
    if q.since is not None:
        time_conds.append(e.c.time >= _timestamp(q.since))
    if q.until is not None:
        time_conds.append(e.c.time < _timestamp(q.until))
    if not filters:
        stmt = select(EntryRow).where(*_key_conditions(e.c.log, e.c.idx, q), *time_conds)
        return stmt.order_by(e.c.log, e.c.idx).limit(limit)

    ident = IDENTITIES
    drive = ident.alias("d")
    field0, value0 = filters[0]
    keys = select(drive.c.log, drive.c.idx).where(
        drive.c.field == field0,
        _value_condition(drive.c.value, value0),
        *_key_conditions(drive.c.log, drive.c.idx, q),
    )
    for n, (f, v) in enumerate(filters[1:]):
        other = ident.alias(f"o{n}")
        # checked per driving row through the primary key. LIMIT/OFFSET keep PostgreSQL from
        # turning the EXISTS into a semi-join that it may drive from the other, unselective
        # side (an issuer matches most of the log): san + issuer took 350 ms on 1M entries
        # without them, 2 ms (p50) with them on 300k
        check = (
            select(literal(1))
            .where(
                other.c.log == drive.c.log,
                other.c.idx == drive.c.idx,
                other.c.field == f,
                _value_condition(other.c.value, v),
            )
            .limit(literal_column("1"))
            .offset(literal_column("0"))
        )
        keys = keys.where(exists(check))
    if time_conds:
        keys = keys.join(e, and_(e.c.log == drive.c.log, e.c.idx == drive.c.idx)).where(*time_conds)
    if any(v.endswith("*") for _, v in filters[:1]):
        keys = keys.distinct()  # one entry can hold several values under one prefix
    sub = keys.order_by(drive.c.log, drive.c.idx).limit(limit).subquery("k")
    return (
        select(EntryRow)
        .join(sub, and_(e.c.log == sub.c.log, e.c.idx == sub.c.idx))
        .order_by(e.c.log, e.c.idx)
    )


def index_all_select(q: HistoryQuery, limit: int) -> Select[Any]:
    """The SELECT answering ``q`` over ``index_all``."""
    if q.ext or q.subject:
        raise MalformedInputError("index_all keeps no extensions or subjects: search matches")
    t = INDEX_ALL
    conds = _key_conditions(t.c.log, t.c.idx, q)
    # (column, condition builder) most selective first: the first drives the query through
    # its index; the others are checked on the rows it finds, through an expression that no
    # index matches (col || ''), so that no planner without statistics (SQLite's) picks the
    # unselective issuer index instead
    wanted: list[tuple[Any, str]] = []
    if q.fingerprint:
        wanted.append((t.c.key_fingerprint, q.fingerprint.strip()))
    if q.digest:
        wanted.append((t.c.digest, normalize_digest(q.digest)))
    if q.san:
        wanted.append((t.c.san, q.san))
    if q.issuer:
        wanted.append((t.c.issuer, q.issuer))
    for n, (col, value) in enumerate(wanted):
        if n == 0:
            conds.append(_value_condition(col, value))
        elif value.endswith("*"):
            conds.append(_value_condition(col.concat(""), value))
        else:
            conds.append(col.concat("") == index_value(value))
    if q.since is not None:
        conds.append(t.c.time >= _timestamp(q.since))
    if q.until is not None:
        conds.append(t.c.time < _timestamp(q.until))
    return select(IndexAllRow).where(*conds).order_by(t.c.log, t.c.idx).limit(limit)


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
    if q.cursor is not None:
        (last,) = _decode_cursor(q.cursor, (int,))
        conds.append(f.c.id < last)
    return select(FindingRow).where(*conds).order_by(f.c.id.desc()).limit(limit)


# ----------------------------------------------------------------------------- conversions


async def _orm(conn: AsyncConnection, stmt: Select[T]) -> list[T]:
    """The ORM objects that ``stmt`` selects, read on ``conn`` (detached, fully loaded)."""
    async with AsyncSession(bind=conn, expire_on_commit=False) as session:
        return list((await session.scalars(stmt)).all())


def _entry(row: EntryRow) -> StoredEntry:
    return StoredEntry(
        log=row.log,
        index=row.index,
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


def _indexed(row: IndexAllRow) -> IndexedEntry:
    return IndexedEntry(
        row.log,
        row.index,
        row.time,
        row.kind,
        row.san,
        row.issuer,
        row.key_fingerprint,
        row.digest,
    )


def _finding(row: FindingRow) -> StoredFinding:
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
    )
    return StoredFinding(f, row.state_changed_by, row.state_changed_at, row.comment, row.evidence)


def _outbox(row: OutboxRow) -> OutboxItem:
    return OutboxItem(
        id=row.id,
        dedup_key=row.dedup_key,
        sink=row.sink,
        payload=row.payload,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        attempts=row.attempts,
        delivered_at=row.delivered_at,
        dead_at=row.dead_at,
        last_error=row.last_error,
    )


def _finding_values(f: Finding, evidence: JSON | None) -> JSON:
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
    }


# ----------------------------------------------------------------------------------- Store


class Store:
    """The monitor's database. Open with ``await Store.open(url)``; close with ``close()``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        # One writer at a time in this process: SQLite has one write lock per database, and
        # waiting here is cheaper than waiting on it.
        self._write_lock = asyncio.Lock()
        self.after_step: Callable[[str], None] | None = None
        """Test hook: called after each step of ``store_batch``, inside its transaction."""

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True, echo: bool = False) -> Store:
        """Connect; with ``migrate``, bring the schema to the latest revision first, else
        refuse a database that is not at it."""
        engine = engines.make_engine(url, echo=echo)
        try:
            if migrate:
                await engines.upgrade(engine)
            else:
                current, head = await engines.revision_of(engine), engines.head_revision()
                if current != head:
                    raise StorageError(
                        f"database schema is at revision {current}, this monitor needs {head}: "
                        "run `tlog-monitor db upgrade`"
                    )
        except (SQLAlchemyError, OSError) as e:
            await engine.dispose()
            raise StorageError(f"cannot open database: {e}") from e
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine)

    @property
    def dialect(self) -> str:
        return self._dialect

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def close(self) -> None:
        if self._dialect == "sqlite":
            # keeps the planner's statistics fresh where they matter (SQLite's advice)
            try:
                async with self._engine.connect() as conn:
                    await conn.exec_driver_sql("PRAGMA optimize")
            except SQLAlchemyError:
                pass  # closing anyway: statistics are an optimisation
        await self._engine.dispose()

    # -------------------------------------------------------------------- plumbing

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self._engine.connect() as conn:
                yield conn
        except (SQLAlchemyError, OSError) as e:
            raise StorageError(f"database read failed: {e}") from e

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """One transaction, committed on exit, rolled back on any exception."""
        async with self._write_lock:
            try:
                async with self._engine.connect() as plain:
                    conn = await plain.execution_options(tlog_write=True)
                    async with conn.begin():
                        yield conn
            except (SQLAlchemyError, OSError) as e:
                raise StorageError(f"database write failed: {e}") from e

    def _insert(self, table: Any) -> Any:
        """INSERT ... ON CONFLICT DO NOTHING, in this engine's dialect."""
        if self._dialect == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing()
        return sqlite.insert(table).on_conflict_do_nothing()

    async def _insert_many(self, conn: AsyncConnection, table: Any, rows: Sequence[JSON]) -> int:
        if not rows:
            return 0
        # RETURNING counts what was really inserted (rowcount is unreliable for executemany)
        stmt = self._insert(table).returning(next(iter(table.primary_key.columns)))
        result = await conn.execute(stmt, list(rows))
        return len(result.all())

    def _step(self, name: str) -> None:
        if self.after_step is not None:
            self.after_step(name)

    # ------------------------------------------------------------------------ logs

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

    async def log_state(self, name: str) -> LogState | None:
        async with self._read() as conn:
            rows = await _orm(conn, select(Log).where(Log.name == name))
        row = rows[0] if rows else None
        if row is None:
            return None
        hashes = bytes(row.compact_hashes)
        return LogState(
            name=row.name,
            api=row.api,
            url=row.url,
            cursor=row.cursor,
            verified_size=row.verified_size,
            verified_root=None if row.verified_root is None else bytes(row.verified_root),
            verified_checkpoint=row.verified_checkpoint,
            compact_range=CompactRangeState(
                row.compact_size,
                tuple(hashes[i : i + HASH_SIZE] for i in range(0, len(hashes), HASH_SIZE)),
            ),
            updated_at=row.updated_at,
        )

    async def record_checkpoint(
        self, log: str, checkpoint: CheckpointData, *, verified: bool, at: datetime | None = None
    ) -> bool:
        """Keep a checkpoint as evidence (verified or not). True if it was new."""
        async with self._write() as conn:
            return await self._checkpoint(conn, log, checkpoint, verified, at or utcnow())

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
        }
        added = await self._insert_many(conn, t, [values])
        if verified and not added:  # seen before unverified, proven now
            await conn.execute(
                update(t)
                .where(
                    t.c.log == log,
                    t.c.size == cp.size,
                    t.c.root == cp.root,
                    t.c.verified.is_(False),
                )
                .values(verified=True)
            )
        return added > 0

    async def checkpoints(self, log: str, limit: int = 100) -> list[StoredCheckpoint]:
        """The checkpoints seen for ``log``, newest first."""
        stmt = (
            select(CheckpointRow)
            .where(CheckpointRow.log == log)
            .order_by(CheckpointRow.seen_at.desc(), CheckpointRow.id.desc())
            .limit(_limit(limit))
        )
        async with self._read() as conn:
            rows = await _orm(conn, stmt)
        return [
            StoredCheckpoint(r.log, r.origin, r.size, bytes(r.root), r.raw, r.verified, r.seen_at)
            for r in rows
        ]

    # ----------------------------------------------------------------------- batch

    async def store_batch(self, batch: Batch) -> BatchResult:
        """Store ``batch`` in one transaction; see the module docstring for the guarantees."""
        for r in batch.records:
            if r.log != batch.log:
                raise StorageError(f"record of log {r.log!r} in a batch of {batch.log!r}")
        cr = batch.compact_range
        if cr is not None and len(cr.hashes) != cr.size.bit_count():
            raise StorageError(f"compact range of size {cr.size} has {len(cr.hashes)} hashes")
        at = batch.at
        async with self._write() as conn:
            await self._advance_log(conn, batch)
            self._step("log")
            if batch.checkpoint is not None:
                await self._checkpoint(conn, batch.log, batch.checkpoint, True, at)
            self._step("checkpoint")
            entries = await self._insert_many(
                conn, ENTRIES, [self._entry_values(r, at) for r in batch.records]
            )
            self._step("entries")
            await self._insert_many(
                conn,
                IDENTITIES,
                [
                    {"log": r.log, "idx": r.index, "field": f, "value": v}
                    for r in batch.records
                    for f, v in sorted(identities(r))
                ],
            )
            self._step("identities")
            malformed = await self._insert_many(
                conn,
                MALFORMED,
                [
                    {
                        "log": m.log,
                        "idx": m.index,
                        "reason": m.reason,
                        "kind": m.kind,
                        "api_version": m.api_version,
                        "raw_body": m.raw_body,
                        "seen_at": at,
                    }
                    for m in batch.malformed
                ],
            )
            self._step("malformed")
            findings = await self._insert_many(
                conn,
                FINDINGS,
                [_finding_values(f, batch.evidence.get(f.dedup_key)) for f in batch.findings],
            )
            self._step("findings")
            outbox = await self._add_outbox(conn, batch.outbox, at)
            self._step("outbox")
            index_rows = await self._insert_many(
                conn,
                INDEX_ALL,
                [x.row() for x in batch.index_rows],
            )
            self._step("index_all")
        return BatchResult(entries, findings, outbox, malformed, index_rows)

    async def _advance_log(self, conn: AsyncConnection, batch: Batch) -> None:
        """Move the cursor, verified checkpoint and compact range forward, never back."""
        values: dict[str, Any] = {
            "cursor": case((Log.cursor < batch.cursor, batch.cursor), else_=Log.cursor),
            "updated_at": batch.at,
        }
        cp = batch.checkpoint
        if cp is not None:
            newer = func.coalesce(Log.verified_size, -1) <= cp.size
            values["verified_size"] = case((newer, cp.size), else_=Log.verified_size)
            values["verified_root"] = case((newer, cp.root), else_=Log.verified_root)
            values["verified_checkpoint"] = case(
                (newer, clean_text(cp.raw)), else_=Log.verified_checkpoint
            )
        cr = batch.compact_range
        if cr is not None:
            newer = Log.compact_size <= cr.size
            values["compact_size"] = case((newer, cr.size), else_=Log.compact_size)
            values["compact_hashes"] = case((newer, b"".join(cr.hashes)), else_=Log.compact_hashes)
        result = await conn.execute(update(Log).where(Log.name == batch.log).values(**values))
        if result.rowcount != 1:
            raise StorageError(f"unknown log {batch.log!r}: register it first")

    @staticmethod
    def _entry_values(r: SigningRecord, at: datetime) -> JSON:
        san, issuer, key, cert = _first_signer_columns(r)
        return {
            "log": r.log,
            "idx": r.index,
            "integrated_time": r.integrated_time,
            "time": r.integrated_time if r.integrated_time is not None else int(at.timestamp()),
            "kind": r.kind,
            "api_version": r.api_version,
            "san": san,
            "issuer": issuer,
            "key_fingerprint": key,
            "cert_fingerprint": cert,
            "record": result_json(r),
            "raw_body": r.raw_body,
            "stored_at": at,
        }

    async def _add_outbox(
        self, conn: AsyncConnection, specs: Iterable[OutboxSpec], at: datetime
    ) -> int:
        specs = list(specs)
        if not specs:
            return 0
        keys = sorted({s.dedup_key for s in specs})
        rows = await _orm(conn, select(FindingRow).where(FindingRow.dedup_key.in_(keys)))
        payloads = {r.dedup_key: _finding(r).to_json() for r in rows}
        missing = [k for k in keys if k not in payloads]
        if missing:
            raise StorageError(f"outbox rows for unknown findings: {', '.join(missing)}")
        return await self._insert_many(
            conn,
            OUTBOX,
            [
                {
                    "dedup_key": s.dedup_key,
                    "sink": sink,
                    "payload": payloads[s.dedup_key],
                    "created_at": at,
                    "next_attempt_at": at,
                    "attempts": 0,
                }
                for s in specs
                for sink in dict.fromkeys(s.sinks)
            ],
        )

    # --------------------------------------------------------------------- history

    async def history(self, query: HistoryQuery) -> Page[HistoryItem]:
        """Entries matching ``query`` in (log, index) order, one page."""
        limit = _limit(query.limit)
        items: list[HistoryItem]
        async with self._read() as conn:
            if query.all_entries:
                items = [_indexed(r) for r in await _orm(conn, index_all_select(query, limit + 1))]
            else:
                items = [_entry(r) for r in await _orm(conn, history_select(query, limit + 1))]
        more = len(items) > limit
        items = items[:limit]
        cursor = _encode_cursor(items[-1].log, items[-1].index) if more else None
        return Page(tuple(items), cursor)

    async def entry(self, log: str, index: int) -> StoredEntry | None:
        stmt = select(EntryRow).where(EntryRow.log == log, EntryRow.index == index)
        async with self._read() as conn:
            rows = await _orm(conn, stmt)
        return _entry(rows[0]) if rows else None

    async def malformed(self, log: str, index: int) -> MalformedEntry | None:
        stmt = select(MalformedRow).where(MalformedRow.log == log, MalformedRow.index == index)
        async with self._read() as conn:
            rows = await _orm(conn, stmt)
        if not rows:
            return None
        row = rows[0]
        return MalformedEntry(
            row.log, row.index, row.reason, bytes(row.raw_body), row.kind, row.api_version
        )

    # -------------------------------------------------------------------- findings

    async def findings(self, query: FindingQuery) -> Page[StoredFinding]:
        limit = _limit(query.limit)
        async with self._read() as conn:
            rows = await _orm(conn, findings_select(query, limit + 1))
        items = [_finding(r) for r in rows[:limit]]
        more = len(rows) > limit
        last = items[-1].finding.id if items else None
        return Page(tuple(items), _encode_cursor(last) if more else None)

    async def finding(self, finding_id: int) -> StoredFinding | None:
        async with self._read() as conn:
            rows = await _orm(conn, select(FindingRow).where(FindingRow.id == finding_id))
        return _finding(rows[0]) if rows else None

    async def finding_by_key(self, dedup_key: str) -> StoredFinding | None:
        stmt = select(FindingRow).where(FindingRow.dedup_key == dedup_key)
        async with self._read() as conn:
            rows = await _orm(conn, stmt)
        return _finding(rows[0]) if rows else None

    async def set_finding_state(
        self,
        finding_id: int,
        state: FindingState,
        who: str,
        comment: str | None = None,
        *,
        at: datetime | None = None,
    ) -> StoredFinding | None:
        """Change a finding's state, recording who and when; None if there is no such id."""
        async with self._write() as conn:
            result = await conn.execute(
                update(FindingRow)
                .where(FindingRow.id == finding_id)
                .values(
                    state=str(state),
                    state_changed_by=who,
                    state_changed_at=at or utcnow(),
                    comment=comment,
                )
            )
            if result.rowcount != 1:
                return None
        return await self.finding(finding_id)

    # ---------------------------------------------------------------------- outbox

    async def due_outbox(self, sink: str, now: datetime, limit: int = 100) -> list[OutboxItem]:
        """Undelivered, live rows of ``sink`` whose next attempt is due, oldest first."""
        stmt = (
            select(OutboxRow)
            .where(
                OutboxRow.sink == sink,
                OutboxRow.delivered_at.is_(None),
                OutboxRow.dead_at.is_(None),
                OutboxRow.next_attempt_at <= now,
            )
            .order_by(OutboxRow.next_attempt_at, OutboxRow.id)
            .limit(_limit(limit))
        )
        async with self._read() as conn:
            return [_outbox(r) for r in await _orm(conn, stmt)]

    async def outbox_item(self, outbox_id: int) -> OutboxItem | None:
        async with self._read() as conn:
            rows = await _orm(conn, select(OutboxRow).where(OutboxRow.id == outbox_id))
        return _outbox(rows[0]) if rows else None

    async def outbox_for(self, dedup_key: str) -> list[OutboxItem]:
        stmt = select(OutboxRow).where(OutboxRow.dedup_key == dedup_key).order_by(OutboxRow.id)
        async with self._read() as conn:
            return [_outbox(r) for r in await _orm(conn, stmt)]

    async def _attempt(
        self,
        conn: AsyncConnection,
        outbox_id: int,
        *,
        at: datetime,
        status: str,
        error: str | None,
        duration: float,
        **changes: Any,
    ) -> None:
        result = await conn.execute(
            update(OutboxRow)
            .where(OutboxRow.id == outbox_id)
            .values(attempts=OutboxRow.attempts + 1, **changes)
        )
        if result.rowcount != 1:
            raise StorageError(f"no outbox row {outbox_id}")
        await conn.execute(
            ATTEMPTS.insert().values(
                outbox_id=outbox_id, at=at, status=status, error=error, duration=duration
            )
        )

    async def mark_delivered(self, outbox_id: int, *, at: datetime, duration: float) -> None:
        """The sink accepted the alert: record the attempt and stop delivering it."""
        async with self._write() as conn:
            await self._attempt(
                conn,
                outbox_id,
                at=at,
                status="delivered",
                error=None,
                duration=duration,
                delivered_at=at,
            )

    async def record_attempt(
        self,
        outbox_id: int,
        *,
        at: datetime,
        error: str,
        duration: float,
        retry_at: datetime | None,
    ) -> None:
        """A failed delivery: retry at ``retry_at``, or dead-letter the row when None."""
        async with self._write() as conn:
            if retry_at is None:
                await self._attempt(
                    conn,
                    outbox_id,
                    at=at,
                    status="dead",
                    error=error,
                    duration=duration,
                    dead_at=at,
                    last_error=error,
                )
            else:
                await self._attempt(
                    conn,
                    outbox_id,
                    at=at,
                    status="failed",
                    error=error,
                    duration=duration,
                    next_attempt_at=retry_at,
                    last_error=error,
                )

    async def attempts(self, outbox_id: int) -> list[Attempt]:
        t = DeliveryAttempt
        stmt = select(t).where(t.outbox_id == outbox_id).order_by(t.at, t.id)
        async with self._read() as conn:
            return [
                Attempt(r.outbox_id, r.at, r.status, r.error, r.duration)
                for r in await _orm(conn, stmt)
            ]

    async def dead_letters(self, sink: str | None = None, limit: int = 100) -> list[OutboxItem]:
        """Rows that gave up, most recent first."""
        stmt = select(OutboxRow).where(OutboxRow.dead_at.is_not(None))
        if sink is not None:
            stmt = stmt.where(OutboxRow.sink == sink)
        stmt = stmt.order_by(OutboxRow.dead_at.desc(), OutboxRow.id.desc()).limit(_limit(limit))
        async with self._read() as conn:
            return [_outbox(r) for r in await _orm(conn, stmt)]

    async def replay(self, outbox_id: int, *, now: datetime | None = None) -> bool:
        """Bring a dead letter back: due at once, attempts counted from zero. False if the
        row is not a dead letter."""
        async with self._write() as conn:
            result = await conn.execute(
                update(OutboxRow)
                .where(OutboxRow.id == outbox_id, OutboxRow.dead_at.is_not(None))
                .values(dead_at=None, next_attempt_at=now or utcnow(), attempts=0)
            )
            return result.rowcount == 1

    # ------------------------------------------------------------------- index_all

    async def purge_index_all(self, older_than: datetime) -> int:
        """Delete ``index_all`` rows whose time is before ``older_than``; how many went."""
        cutoff = _timestamp(older_than)
        async with self._write() as conn:
            result = await conn.execute(delete(IndexAllRow).where(IndexAllRow.time < cutoff))
            return max(result.rowcount, 0)

    async def counts(self) -> dict[str, int]:
        """Rows per table (for tests, metrics and the benchmark)."""
        tables = [LOGS, CHECKPOINTS, ENTRIES, IDENTITIES, FINDINGS, OUTBOX, ATTEMPTS]
        tables += [MALFORMED, INDEX_ALL]
        out: dict[str, int] = {}
        async with self._read() as conn:
            for t in tables:
                n = (await conn.execute(select(func.count()).select_from(t))).scalar_one()
                out[t.name] = int(n)
        return out
