"""``tlog-monitor findings``: what the monitor found, from its database."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from monitor.cli.db import add_page_options, existing_database_url, read_store
from monitor.cli.history import print_table
from monitor.timetext import parse_time

if TYPE_CHECKING:
    from monitor.storage import FindingQuery

STATES = ("open", "acknowledged", "resolved")
SEVERITIES = ("info", "low", "medium", "high", "critical")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "findings",
        help="list findings by state, severity, kind, rule or log",
        description="List stored findings, newest first, one page at a time.",
    )
    p.add_argument("--state", action="append", choices=STATES, help="repeat for several")
    p.add_argument("--severity", choices=SEVERITIES, help="this severity or worse")
    p.add_argument("--kind", action="append", help="finding kind, e.g. unexpected_signer")
    p.add_argument("--rule", help="rule name")
    p.add_argument("--log", help="log name")
    p.add_argument("--since", metavar="TIME", help="created at or after (ISO 8601, unix s)")
    p.add_argument("--until", metavar="TIME", help="created before")
    add_page_options(p)
    p.set_defaults(handler=run)


def query_of(args: argparse.Namespace) -> FindingQuery:
    from monitor.errors import MalformedInputError
    from monitor.findings import FindingKind, FindingState
    from monitor.rules.spec import Severity
    from monitor.storage import FindingQuery

    kinds = []
    for k in args.kind or ():
        try:
            kinds.append(FindingKind(k))
        except ValueError:
            names = ", ".join(str(x) for x in FindingKind)
            raise MalformedInputError(f"unknown finding kind {k!r}; one of {names}") from None
    return FindingQuery(
        states=tuple(FindingState(s) for s in args.state or ()),
        min_severity=Severity.parse(args.severity) if args.severity else None,
        kinds=tuple(kinds),
        rule=args.rule,
        log=args.log,
        since=parse_time(args.since) if args.since else None,
        until=parse_time(args.until) if args.until else None,
        limit=args.limit,
        cursor=args.cursor,
    )


def run(args: argparse.Namespace) -> int:
    query = query_of(args)
    page = read_store(existing_database_url(args), lambda store: store.findings(query))
    if args.json:
        doc = {"items": [f.to_json() for f in page.items], "next_cursor": page.next_cursor}
        print(json.dumps(doc, indent=2))
        return 0
    rows = []
    for sf in page.items:
        f = sf.finding
        where = f"{f.log}#{f.index}" if f.log is not None and f.index is not None else f.log
        rows.append(
            (
                str(f.id),
                f.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                str(f.severity),
                str(f.state),
                f.kind + (f"/{f.type}" if f.type else ""),
                f.rule or "-",
                where or "-",
                f.detail[:80],  # escaped with every cell
            )
        )
    head = ("ID", "CREATED (UTC)", "SEVERITY", "STATE", "KIND", "RULE", "WHERE", "DETAIL")
    print_table(head, rows)
    if page.next_cursor:
        print(f"more: --cursor {page.next_cursor}")
    return 0
