"""History queries: ``HistoryQuery`` and the SELECTs that answer it from an index."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    Select,
    and_,
    exists,
    literal,
    literal_column,
    select,
    tuple_,
)

from monitor.core.errors import MalformedInputError
from monitor.storage import chunk_query, chunks, partition_query
from monitor.storage.aliases import alias
from monitor.storage.base import ENTRIES, IDENTITIES, INDEX_ALL, INDEX_LOGS, LOGS
from monitor.storage.identities import normalize_digest
from monitor.storage.image_history import image_filter, linked_keys
from monitor.storage.models import EntryRow, index_value, value_hash
from monitor.storage.paging import decode_cursor


@dataclass(frozen=True)
class HistoryQuery:
    """Filters are ANDed. ``san`` is exact, or a prefix when it ends with ``*``. ``ext`` is a
    Fulcio extension (name, value), e.g. ``("source-repository-uri", "https://...")``.
    ``fingerprint`` matches a key or certificate fingerprint; ``digest`` any digest of the
    entry (``sha256:<hex>``; bare hex is taken by its length). Index bounds are inclusive;
    ``since`` is inclusive, ``until`` exclusive. ``image`` keeps the entries a registry
    signature of that image is tied to: a repository (all its tags and digests), or a
    reference with a tag or a digest (``monitor.storage.image_history``). ``all_entries``
    searches ``index_all`` (every entry of the log; no ``ext`` or ``subject`` there) instead
    of matched entries."""

    san: str | None = None
    issuer: str | None = None
    ext: tuple[str, str] | None = None
    fingerprint: str | None = None
    digest: str | None = None
    subject: str | None = None
    image: str | None = None
    log: str | None = None
    index_min: int | None = None
    index_max: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    cursor: str | None = None
    all_entries: bool = False


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


def timestamp(t: datetime) -> int:
    if t.tzinfo is None:
        raise MalformedInputError("history times must be aware datetimes")
    return int(t.timestamp())


def _key_conditions(
    log_col: Any, idx_col: Any, q: HistoryQuery, log_key: Callable[[str], Any] = str
) -> list[ColumnElement[bool]]:
    """Log, index range and cursor conditions; ``log_key`` maps a log's name to what
    ``log_col`` holds."""
    conds: list[ColumnElement[bool]] = []
    if q.log is not None:
        conds.append(log_col == log_key(q.log))
    if q.index_min is not None:
        conds.append(idx_col >= q.index_min)
    if q.index_max is not None:
        conds.append(idx_col <= q.index_max)
    if q.cursor is not None:
        log, idx = decode_cursor(q.cursor, (str, int))
        conds.append(tuple_(log_col, idx_col) > tuple_(log_key(log), idx))
    return conds


def _image_condition(log_col: Any, idx_col: Any, q: HistoryQuery) -> list[ColumnElement[bool]]:
    """Entries a signature of ``q.image`` is tied to (none: no condition)."""
    if q.image is None:
        return []
    return [tuple_(log_col, idx_col).in_(linked_keys(image_filter(q.image)))]


def log_number(log: str) -> ScalarSelect[Any]:
    """The number of ``log`` in ``index_all_logs`` (NULL, matching nothing, if it has none)."""
    return select(INDEX_LOGS.c.id).where(INDEX_LOGS.c.log == log).scalar_subquery()


INDEX_ALL_CHUNKS = chunk_query.Chunked(INDEX_ALL, "log_id", INDEX_LOGS, "id", log_number)
IDENTITY_CHUNKS = chunk_query.Chunked(IDENTITIES, "log", LOGS, "name", str)


def history_select(q: HistoryQuery, limit: int, *, chunked: bool = False) -> Select[Any]:
    """The SELECT answering ``q`` over matched entries (``EntryRow`` rows, in (log, index)
    order, ``limit`` of them). ``chunked``: the identities' index is SQLite's, local to
    chunks (``monitor.storage.chunks``)."""
    e = ENTRIES
    filters = _identity_filters(q)
    time_conds: list[ColumnElement[bool]] = []
    if q.since is not None:
        time_conds.append(e.c.time >= timestamp(q.since))
    if q.until is not None:
        time_conds.append(e.c.time < timestamp(q.until))
    if not filters:
        stmt = select(EntryRow).where(
            *_key_conditions(e.c.log, e.c.idx, q),
            *_image_condition(e.c.log, e.c.idx, q),
            *time_conds,
        )
        return stmt.order_by(e.c.log, e.c.idx).limit(limit)

    ident = IDENTITIES
    drive = alias(ident, "d")
    field0, value0 = filters[0]
    keys = select(drive.c.log, drive.c.idx).where(
        drive.c.field == field0,
        _value_condition(drive.c.value, value0),
        *_key_conditions(drive.c.log, drive.c.idx, q),
        *_image_condition(drive.c.log, drive.c.idx, q),
    )
    order: list[Any] = [drive.c.log, drive.c.idx]
    if chunked:
        keys = keys.where(*chunk_query.conditions(IDENTITY_CHUNKS, drive, q))
        keys = keys.with_hint(drive, f"INDEXED BY {chunks.IDENTITY_LOOKUP}", "sqlite")
        order = chunk_query.order(IDENTITY_CHUNKS, drive)
    for n, (f, v) in enumerate(filters[1:]):
        other = alias(ident, f"o{n}")
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
    sub = keys.order_by(*order).limit(limit).subquery("k")
    return (
        select(EntryRow)
        .join(sub, and_(e.c.log == sub.c.log, e.c.idx == sub.c.idx))
        .order_by(e.c.log, e.c.idx)
    )


INDEX_ALL_FIELDS = ("idx", "time", "kind", "san", "issuer", "key_fingerprint", "digest")


def _index_all_identity_conditions(q: HistoryQuery) -> list[ColumnElement[bool]]:
    t = INDEX_ALL
    conds: list[ColumnElement[bool]] = []
    # (indexed column, the whole value's column for hashed ones, value), most selective
    # first: the first drives the query through its index; the others are checked on the
    # rows it finds, through an expression that no index matches (col || ''), so that no
    # planner without statistics (SQLite's) picks the unselective issuer index instead
    wanted: list[tuple[Any, Any, str]] = []
    if q.fingerprint:
        wanted.append((t.c.key_hash, t.c.key_fingerprint, q.fingerprint.strip()))
    if q.digest:
        wanted.append((t.c.digest_hash, t.c.digest, normalize_digest(q.digest)))
    if q.san:
        wanted.append((t.c.san, None, q.san))
    if q.issuer:
        wanted.append((t.c.issuer, None, q.issuer))
    for n, (col, whole, value) in enumerate(wanted):
        if whole is not None:
            if value.endswith("*"):
                raise MalformedInputError(
                    "index_all finds key fingerprints and digests by their whole value, "
                    "not by a prefix"
                )
            if n == 0:
                conds.append(col == value_hash(value))
            conds.append(whole == value)
        elif n == 0:
            conds.append(_value_condition(col, value))
        elif value.endswith("*"):
            conds.append(_value_condition(col.concat(""), value))
        else:
            conds.append(col.concat("") == index_value(value))
    return conds


def _driving_column(q: HistoryQuery) -> str | None:
    """The chunked column whose index drives ``q`` over ``index_all`` (as
    ``_index_all_identity_conditions`` orders them), if any."""
    if q.fingerprint:
        return "key_hash"
    if q.digest:
        return "digest_hash"
    if q.san:
        return "san"
    return None


def index_all_select(
    q: HistoryQuery, limit: int, *, chunked: bool = False, partitioned: bool = False
) -> Select[Any]:
    """The SELECT answering ``q`` over ``index_all``: rows of the log's name and
    ``INDEX_ALL_FIELDS``, in (log, index) order, logs in the order they were first indexed.
    ``chunked``: the value indexes are SQLite's, local to chunks (``monitor.storage.chunks``);
    ``partitioned``: PostgreSQL's, local to chunks of each partition
    (``monitor.storage.partition_query``)."""
    if q.ext or q.subject:
        raise MalformedInputError("index_all keeps no extensions or subjects: search matches")
    t = INDEX_ALL
    time_conds: list[ColumnElement[bool]] = []
    if q.since is not None:
        time_conds.append(t.c.time >= timestamp(q.since))
    if q.until is not None:
        time_conds.append(t.c.time < timestamp(q.until))
    if partitioned and _driving_column(q) is not None:
        return partition_query.index_all_by_value(
            q,
            limit,
            INDEX_ALL_FIELDS,
            lambda p: [
                *_index_all_identity_conditions(q),
                *_image_condition(p.c.log, t.c.idx, q),
                *time_conds,
            ],
            log_number,
        )
    conds = _key_conditions(t.c.log_id, t.c.idx, q, log_number)
    conds += _index_all_identity_conditions(q)
    conds += _image_condition(INDEX_LOGS.c.log, t.c.idx, q)
    conds += time_conds
    drive = _driving_column(q) if chunked else None
    order: list[Any] = [t.c.log_id, t.c.idx]
    if drive is not None:
        conds += chunk_query.conditions(INDEX_ALL_CHUNKS, t, q)
        order = chunk_query.order(INDEX_ALL_CHUNKS, t)
    # the log's name is looked up per row found (``log_id + 0``: no index on index_all can
    # serve that join term), so that no planner drives the query from index_all_logs through
    # the primary key: that walks every row of the log and sorts what the filters keep
    # (SQLite, with statistics sampled under analysis_limit: 300 ms on 1M rows)
    stmt = (
        select(INDEX_LOGS.c.log, *(t.c[c] for c in INDEX_ALL_FIELDS))
        .join_from(t, INDEX_LOGS, INDEX_LOGS.c.id == t.c.log_id + 0)
        .where(*conds)
        .order_by(*order)
        .limit(limit)
    )
    if drive is not None:
        # the planner would weigh the primary key (log_id IN ...) against it, unaided by
        # statistics on an expression; a chunked index always serves such a query
        stmt = stmt.with_hint(t, f"INDEXED BY {chunks.index_name(drive)}", "sqlite")
    return stmt


def history_statement(q: HistoryQuery, limit: int, dialect: str) -> Select[Any]:
    """The SELECT ``Store.history`` runs for ``q`` on a database of ``dialect``, whose value
    indexes are local to chunks as that engine keeps them (``monitor.storage.chunks``)."""
    sqlite = dialect == "sqlite"
    if q.all_entries:
        return index_all_select(q, limit, chunked=sqlite, partitioned=dialect == "postgresql")
    return history_select(q, limit, chunked=sqlite)
