"""``tlog-monitor history``: who signed what, from the monitor's database, and what was
searched to say so."""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from monitor.cli.database import declared, existing_database_url, with_store
from monitor.cli.options import add_page_options
from monitor.cli.table import print_table
from monitor.core.errors import MalformedInputError
from monitor.core.escape import escape
from monitor.core.timetext import parse_time

if TYPE_CHECKING:
    from monitor.storage import HistoryQuery
    from monitor.storage.coverage import Searched
    from monitor.storage.history import HistoryItem
    from monitor.storage.ports import HistoryReader
    from monitor.storage.query_check import HistoryAnswer


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "history",
        help="search stored entries by identity, key, digest, log, index or time",
        description=(
            "Search the entries the monitor stored (those that matched a rule; with --all, "
            "the compact index of every entry, if index_all is on). Filters are ANDed; "
            "results come in (log, index) order, one page at a time, followed by what was "
            "searched: each log's indexes and times. Entries logged before the monitor began "
            "watching a log are not in the database unless backfilled. An unknown extension "
            "or log, or a fingerprint or digest of no known shape, is an error."
        ),
    )
    p.add_argument("--san", help="signer identity (SAN), exactly; a trailing * makes it a prefix")
    p.add_argument("--issuer", help="OIDC issuer, exactly; a trailing * makes it a prefix")
    p.add_argument(
        "--ext",
        metavar="NAME=VALUE",
        help="a Fulcio certificate extension by name or OID, e.g. "
        "source-repository-uri=https://github.com/o/r or 1.3.6.1.4.1.57264.1.12=...",
    )
    p.add_argument(
        "--fingerprint",
        help="a whole key or certificate fingerprint (sha256:<hex>, SHA256:<base64> for SSH, "
        "OpenPGP hex...); a trailing * makes it a prefix (not with --all)",
    )
    p.add_argument(
        "--digest",
        help="a whole artifact or subject digest (sha256:<hex>, or bare hex, named by its "
        "length); a trailing * makes it a prefix (not with --all)",
    )
    p.add_argument("--subject", help="an in-toto subject name (not with --all)")
    p.add_argument(
        "--image",
        metavar="REF",
        help="entries a registry signature of this image is tied to: a repository "
        "(ghcr.io/acme/app: all its tags and digests), or a reference with a tag or a digest "
        "(ghcr.io/acme/app:1.0, ghcr.io/acme/app@sha256:<hex>)",
    )
    p.add_argument("--log", help="the log's name (a discovered shard: NAME@SHARD)")
    p.add_argument("--index", metavar="FROM..TO", help="index range, inclusive: 10..20, 10.., ..20")
    p.add_argument("--since", metavar="TIME", help="ISO 8601 time or unix seconds (inclusive)")
    p.add_argument("--until", metavar="TIME", help="ISO 8601 time or unix seconds (exclusive)")
    p.add_argument(
        "--all",
        action="store_true",
        help="search the index of every entry (logs with index_all: true) instead of the "
        "entries a rule matched",
    )
    add_page_options(p)
    p.set_defaults(handler=run)


def parse_range(text: str) -> tuple[int | None, int | None]:
    m = re.fullmatch(r"\s*(\d*)\s*(?:\.\.\s*(\d*))?\s*", text)
    if not m or not (m.group(1) or m.group(2)):
        raise MalformedInputError(f"not an index range: {text!r} (N, A..B, A.. or ..B)")
    lo = int(m.group(1)) if m.group(1) else None
    if m.group(2) is None and "." not in text:
        return lo, lo
    return lo, int(m.group(2)) if m.group(2) else None


def query_of(args: argparse.Namespace) -> HistoryQuery:
    from monitor.storage import HistoryQuery

    ext = None
    if args.ext:
        name, sep, value = args.ext.partition("=")
        if not sep or not name.strip() or not value:
            raise MalformedInputError(f"--ext takes NAME=VALUE, not {args.ext!r}")
        ext = (name.strip(), value)
    lo, hi = parse_range(args.index) if args.index else (None, None)
    if args.all and (ext is not None or args.subject):
        raise MalformedInputError(
            "--all searches every entry's index, which keeps no extensions or subjects: "
            "search matched entries instead (without --all)"
        )
    return HistoryQuery(
        san=args.san,
        issuer=args.issuer,
        ext=ext,
        fingerprint=args.fingerprint,
        digest=args.digest,
        subject=args.subject,
        image=args.image,
        log=args.log,
        index_min=lo,
        index_max=hi,
        since=parse_time(args.since) if args.since else None,
        until=parse_time(args.until) if args.until else None,
        limit=args.limit,
        cursor=args.cursor,
        all_entries=args.all,
    )


def _when(t: datetime | int | None) -> str:
    if t is None:
        return "?"
    if isinstance(t, int):
        t = datetime.fromtimestamp(t, UTC)
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _images(e: HistoryItem) -> str:
    """The images tied to an entry, the first few by name (every one is in --json)."""
    if not e.images:
        return "-"
    shown = ", ".join(str(i) for i in e.images[:2])
    return shown + (f" (+{len(e.images) - 2})" if len(e.images) > 2 else "")


def searched_lines(searched: list[Searched], all_entries: bool) -> list[str]:
    """What was searched, one line a log, and what the database cannot hold."""
    if not searched:
        return ["searched: no log yet (the monitor has stored nothing)"]
    lines = []
    for s in searched:
        name = f"{s.log} (index_all)" if all_entries else s.log
        if s.to_index is None:
            start = "" if s.from_index is None else f"; watching began at index {s.from_index}"
            lines.append(f"searched {name}: no entry yet{start}")
            continue
        span = f"indexes {s.from_index}..{s.to_index}"
        if s.from_index is None:
            span = f"indexes up to {s.to_index} (where watching began was not kept)"
        if all_entries:
            when = f"entries of {_when(s.from_time)} to {_when(s.to_time)} UTC"
        else:
            when = f"watched from {_when(s.from_time)} to {_when(s.to_time)} UTC"
        line = f"searched {name}: {span}, {when}"
        if s.backfilled:
            line += "; backfilled " + ", ".join(f"{a}..{b}" for a, b in s.backfilled)
        lines.append(line)
    if not all_entries and any(s.missing_start for s in searched):
        lines.append(
            "entries logged before the monitor began watching a log are not in the "
            "database unless backfilled (tlog-monitor backfill)"
        )
    elif all_entries:
        lines.append("index_all holds entries since it was turned on, less its retention")
    return lines


def run(args: argparse.Namespace) -> int:
    query = query_of(args)
    names = declared(args)

    async def search(store: HistoryReader) -> HistoryAnswer:
        from monitor.storage.query_check import history_answer

        return await history_answer(store, query, configured_logs=names.logs)

    result = with_store(existing_database_url(args), search)
    page = result.page
    if args.json:
        doc = {
            "items": [e.to_json() for e in page.items],
            "next_cursor": page.next_cursor,
            "searched": [s.to_json() for s in result.searched],
        }
        print(json.dumps(doc, indent=2))
        return 0
    rows: list[tuple[str, ...]] = [
        (e.log, str(e.index), _when(e.time), e.kind, e.san or "-", e.issuer or "-")
        for e in page.items
    ]
    head: tuple[str, ...] = ("LOG", "INDEX", "TIME (UTC)", "KIND", "SAN", "ISSUER")
    if any(e.images for e in page.items):  # only where registries are watched
        rows = [(*r, _images(e)) for r, e in zip(rows, page.items, strict=True)]
        head = (*head, "IMAGES")
    print_table(head, rows)
    for line in searched_lines(result.searched, query.all_entries):
        print(escape(line))
    if page.next_cursor:
        print(f"more: --cursor {page.next_cursor}")
    return 0
