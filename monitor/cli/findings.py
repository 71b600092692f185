"""``tlog-monitor findings``: what the monitor found, from its database."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from monitor.cli.database import declared, existing_database_url, with_store
from monitor.cli.options import add_page_options
from monitor.cli.table import print_table
from monitor.core.timetext import parse_time

if TYPE_CHECKING:
    from monitor.storage import FindingQuery, Page, StoredFinding
    from monitor.storage.ports import FindingsReader

# = monitor.core.findings.FindingState and Severity (not imported at start)
STATES = ("open", "acknowledged", "recorded", "resolved")
SEVERITIES = ("info", "low", "medium", "high", "critical")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "findings",
        help="list findings by state, severity, kind, rule, log or time",
        description=(
            "List stored findings, newest first, one page at a time. The triage queue is "
            "--state open: expected uses (signatures a rule allows) are never in it, they "
            "are recorded (--kind expected_use lists them). An unknown rule or log is an "
            "error, not an empty list."
        ),
    )
    p.add_argument(
        "--state",
        action="append",
        choices=STATES,
        help="open, acknowledged, recorded (expected uses) or resolved; repeat for several",
    )
    p.add_argument("--severity", choices=SEVERITIES, help="this severity or worse")
    p.add_argument(
        "--kind", action="append", help="a finding kind, e.g. unexpected_signer; repeat for several"
    )
    p.add_argument("--rule", help="the rule's name (as in the configuration)")
    p.add_argument("--log", help="the log's name (a discovered shard: NAME@SHARD)")
    p.add_argument(
        "--since", metavar="TIME", help="made at or after TIME (ISO 8601 or unix seconds)"
    )
    p.add_argument("--until", metavar="TIME", help="made before TIME (ISO 8601 or unix seconds)")
    add_page_options(p)
    p.set_defaults(handler=run)


def query_of(args: argparse.Namespace) -> FindingQuery:
    from monitor.core.errors import MalformedInputError
    from monitor.core.findings import FindingKind, FindingState, Severity
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
    names = declared(args)

    async def find(store: FindingsReader) -> Page[StoredFinding]:
        from monitor.storage.query_check import checked_findings

        checked = await checked_findings(
            store, query, configured_rules=names.rules, configured_logs=names.logs
        )
        return await store.findings(checked)

    page = with_store(existing_database_url(args), find)
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
