"""``tlog-monitor alerts``: prove the path to a sink (``test``), list what delivery gave up
on (``dead``), and send it again (``replay``). ``dead`` and ``replay`` need only the
database (``--db``, or the ``database`` section of ``--config``)."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import TYPE_CHECKING, Any

from monitor.cli.database import declared, existing_database_url, with_store
from monitor.cli.options import add_config, add_database, add_json, add_limit
from monitor.core.escape import escape

if TYPE_CHECKING:
    from monitor.storage.outbox import OutboxItem
    from monitor.storage.ports import DeadLetters


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "alerts",
        help="test alert sinks, list and replay dead letters",
        description="Test the path to an alert sink, list the alerts delivery gave up on "
        "(dead letters), and queue them again.",
    )
    cmds = p.add_subparsers(dest="alerts_command", metavar="COMMAND", required=True)

    t = cmds.add_parser(
        "test",
        help="send a clearly marked test alert to one sink, now",
        description="Send a clearly marked test alert to one sink of the configuration, now, "
        "and say what came of it: accepted, or why not (DNS, connection refused, TLS, a "
        "timeout, the HTTP status). Exit 0 accepted, 1 refused or unreachable.",
    )
    add_config(t)
    t.add_argument("--sink", required=True, metavar="NAME", help="the sink's name in the config")
    add_json(t)
    t.set_defaults(handler=test)

    d = cmds.add_parser(
        "dead",
        help="alerts delivery gave up on, newest first",
        description="List the alerts delivery gave up on (dead letters), newest first, with "
        "the last error; `alerts replay ID...` queues them again.",
    )
    add_database(d)
    d.add_argument("--sink", metavar="NAME", help="only this sink's (an unknown sink is an error)")
    add_limit(d, "dead letters")
    add_json(d, lines="dead letter")
    d.set_defaults(handler=dead)

    r = cmds.add_parser(
        "replay",
        help="deliver dead letters again (by the ids `dead` shows)",
        description="Queue dead letters again, by the ids `alerts dead` shows: the running "
        "monitor delivers them (attempts counted from zero). Exit 1 if an id is not a dead "
        "letter.",
    )
    add_database(r)
    r.add_argument("ids", type=int, nargs="+", metavar="ID", help="dead letter ids")
    add_json(r)
    r.set_defaults(handler=replay)


def test(args: argparse.Namespace) -> int:
    return asyncio.run(_test(args.config, args.sink, args.json))


async def _test(config: str, name: str, as_json: bool) -> int:
    import aiohttp

    from monitor.alerts.deliver import send_test
    from monitor.config.load import load_settings
    from monitor.core.errors import ConfigError
    from monitor.core.suggest import unknown_name

    settings = load_settings(config)
    sink = next((s for s in settings.alerts.sinks if s.name == name), None)
    if sink is None:
        known = [s.name for s in settings.alerts.sinks]
        raise ConfigError(f"{config}: {unknown_name('sink', name, known)} (under alerts.sinks)")
    async with aiohttp.ClientSession() as session:
        outcome = await send_test(session, sink)
    cause = outcome.cause or outcome.reason
    if as_json:
        doc = {
            "sink": sink.name,
            "type": sink.type,
            "host": sink.host,
            "accepted": outcome.ok,
            "status": outcome.status,
            "cause": cause,
            "seconds": round(outcome.duration, 3),
        }
        print(json.dumps(doc))
        return 0 if outcome.ok else 1
    where = f"sink {sink.name} ({sink.type}, {sink.host})"
    if outcome.ok:
        print(escape(f"{where}: test alert accepted ({cause}, {outcome.duration:.2f}s)"))
        return 0
    print(escape(f"{where}: test alert FAILED: {cause}"))
    return 1


def dead(args: argparse.Namespace) -> int:
    url = existing_database_url(args)
    sinks = declared(args).sinks
    items = with_store(url, lambda store: _dead(store, args.sink, args.limit, sinks))
    rows = [_row(item) for item in items]
    if args.json:
        print(json.dumps({"items": rows}, indent=2))
    elif args.jsonl:
        for row in rows:
            print(json.dumps(row))
    else:
        for item, row in zip(items, rows, strict=True):
            print(
                escape(
                    f"{item.id}  {item.sink}  {item.event}  {row['kind']}  rule={row['rule']}  "
                    f"{row['log']}#{row['index']}  attempts={item.attempts}  {item.last_error}"
                )
            )
        if not items:
            print("no dead letters")
    return 0


async def _dead(
    store: DeadLetters, sink: str | None, limit: int, configured: tuple[str, ...]
) -> list[OutboxItem]:
    from monitor.storage.query_check import check_sink

    if sink is not None:
        await check_sink(store, sink, configured)
    return await store.dead_letters(sink, limit)


def _row(item: OutboxItem) -> dict[str, Any]:
    # a row dead-lettered because it cannot be read may hold anything: listed all the same
    payload = item.payload if isinstance(item.payload, dict) else {}
    return {
        "id": item.id,
        "sink": item.sink,
        "event": item.event,
        "dedup_key": item.dedup_key,
        "kind": payload.get("kind"),
        "rule": payload.get("rule"),
        "log": payload.get("log"),
        "index": payload.get("index"),
        "attempts": item.attempts,
        "created_at": item.created_at.isoformat(),
        "dead_at": None if item.dead_at is None else item.dead_at.isoformat(),
        "last_error": item.last_error,
    }


def replay(args: argparse.Namespace) -> int:
    missing = with_store(existing_database_url(args), lambda store: _replay(store, args.ids))
    queued = [i for i in args.ids if i not in missing]
    if args.json:
        print(json.dumps({"queued": queued, "not_dead_letters": missing}))
    else:
        print(f"{len(queued)} dead letters queued again; the running monitor delivers them")
        if missing:
            print(f"not dead letters: {', '.join(str(i) for i in missing)}")
    return 1 if missing else 0


async def _replay(store: DeadLetters, ids: list[int]) -> list[int]:
    return [outbox_id for outbox_id in ids if not await store.replay(outbox_id)]
