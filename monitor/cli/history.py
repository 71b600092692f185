"""``tlog-monitor history``: who signed what, from the monitor's database."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from monitor.cli.db import add_page_options, existing_database_url, read_store
from monitor.errors import MalformedInputError
from monitor.escape import escape
from monitor.timetext import parse_time

if TYPE_CHECKING:
    from monitor.storage import HistoryQuery


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "history",
        help="search stored entries by identity, key, digest, log, index or time",
        description=(
            "Search the entries the monitor stored (those that matched a rule; with --all, "
            "the compact index of every entry, if index_all is on). Filters are ANDed; "
            "results come in (log, index) order, one page at a time."
        ),
    )
    p.add_argument("--san", help="signer identity (SAN); a trailing * makes it a prefix")
    p.add_argument("--issuer", help="OIDC issuer")
    p.add_argument(
        "--ext",
        metavar="NAME=VALUE",
        help="a Fulcio certificate extension, e.g. source-repository-uri=https://github.com/o/r",
    )
    p.add_argument("--fingerprint", help="key or certificate fingerprint (sha256:<hex>, ...)")
    p.add_argument("--digest", help="artifact or subject digest (sha256:<hex>, or bare hex)")
    p.add_argument("--subject", help="in-toto subject name")
    p.add_argument("--log", help="log name")
    p.add_argument("--index", metavar="FROM..TO", help="index range, inclusive: 10..20, 10.., ..20")
    p.add_argument("--since", metavar="TIME", help="ISO 8601 time or unix seconds (inclusive)")
    p.add_argument("--until", metavar="TIME", help="ISO 8601 time or unix seconds (exclusive)")
    p.add_argument("--all", action="store_true", help="search index_all (every entry)")
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
        if not sep or not name:
            raise MalformedInputError(f"--ext takes NAME=VALUE, not {args.ext!r}")
        ext = (name.strip(), value)
    lo, hi = parse_range(args.index) if args.index else (None, None)
    return HistoryQuery(
        san=args.san,
        issuer=args.issuer,
        ext=ext,
        fingerprint=args.fingerprint,
        digest=args.digest,
        subject=args.subject,
        log=args.log,
        index_min=lo,
        index_max=hi,
        since=parse_time(args.since) if args.since else None,
        until=parse_time(args.until) if args.until else None,
        limit=args.limit,
        cursor=args.cursor,
        all_entries=args.all,
    )


def _when(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def run(args: argparse.Namespace) -> int:
    query = query_of(args)
    page = read_store(existing_database_url(args), lambda store: store.history(query))
    if args.json:
        doc = {"items": [e.to_json() for e in page.items], "next_cursor": page.next_cursor}
        print(json.dumps(doc, indent=2))
        return 0
    rows = [
        (e.log, str(e.index), _when(e.time), e.kind, e.san or "-", e.issuer or "-")
        for e in page.items
    ]
    head = ("LOG", "INDEX", "TIME (UTC)", "KIND", "SAN", "ISSUER")
    print_table(head, rows)
    if page.next_cursor:
        print(f"more: --cursor {page.next_cursor}")
    return 0


def print_table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    """Columns of cells, each escaped: values from a log may hold terminal controls."""
    if not rows:
        print("nothing found")
        return
    rows = [tuple(escape(c) for c in r) for r in rows]
    widths = [min(max(len(r[i]) for r in [head, *rows]), 80) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
