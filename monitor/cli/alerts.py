"""``tlog-monitor alerts``: prove the path to a sink (``test``), list what delivery gave up
on (``dead``), and send it again (``replay``)."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import TYPE_CHECKING

from monitor.config.load import DEFAULT_CONFIG_PATH
from monitor.escape import escape

if TYPE_CHECKING:
    from monitor.storage.store import Store


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("alerts", help="test alert sinks, list and replay dead letters")
    cmds = p.add_subparsers(dest="alerts_command", metavar="COMMAND", required=True)

    t = cmds.add_parser("test", help="send a clearly marked test alert to one sink, now")
    _config(t)
    t.add_argument("--sink", required=True, help="the sink's name in the config")
    t.set_defaults(handler=test)

    d = cmds.add_parser("dead", help="alerts delivery gave up on, newest first")
    _config(d)
    d.add_argument("--sink", help="only this sink")
    d.add_argument("--limit", type=int, default=50)
    d.add_argument("--json", action="store_true", help="one JSON object per line")
    d.set_defaults(handler=dead)

    r = cmds.add_parser("replay", help="deliver dead letters again (by the ids `dead` shows)")
    _config(r)
    r.add_argument("ids", type=int, nargs="+", metavar="ID")
    r.set_defaults(handler=replay)


def _config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=DEFAULT_CONFIG_PATH, metavar="FILE")


def test(args: argparse.Namespace) -> int:
    return asyncio.run(_test(args.config, args.sink))


async def _test(config: str, name: str) -> int:
    import aiohttp

    from monitor.alerts.deliver import send_test
    from monitor.config.load import load_settings
    from monitor.errors import ConfigError

    settings = load_settings(config)
    sink = next((s for s in settings.alerts.sinks if s.name == name), None)
    if sink is None:
        known = ", ".join(s.name for s in settings.alerts.sinks) or "none"
        raise ConfigError(f"{config}: no sink named {name!r} under alerts.sinks; known: {known}")
    async with aiohttp.ClientSession() as session:
        outcome = await send_test(session, sink)
    where = f"sink {sink.name} ({sink.type}, {sink.host})"
    if outcome.ok:
        print(escape(f"{where}: test alert accepted ({outcome.reason}, {outcome.duration:.2f}s)"))
        return 0
    print(escape(f"{where}: test alert FAILED: {outcome.reason}"))
    return 1


async def _store(config: str) -> Store:
    from monitor.config.load import load_settings
    from monitor.storage.store import Store

    db = load_settings(config).database
    url = db.sqlalchemy_url().render_as_string(hide_password=False)
    return await Store.open(url, migrate=False)


def dead(args: argparse.Namespace) -> int:
    return asyncio.run(_dead(args.config, args.sink, args.limit, args.json))


async def _dead(config: str, sink: str | None, limit: int, as_json: bool) -> int:
    store = await _store(config)
    try:
        items = await store.dead_letters(sink, limit)
    finally:
        await store.close()
    for item in items:
        payload = item.payload
        row = {
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
        if as_json:
            print(json.dumps(row))
        else:
            print(
                escape(
                    f"{item.id}  {item.sink}  {item.event}  {row['kind']}  rule={row['rule']}  "
                    f"{row['log']}#{row['index']}  attempts={item.attempts}  {item.last_error}"
                )
            )
    if not items and not as_json:
        print("no dead letters")
    return 0


def replay(args: argparse.Namespace) -> int:
    return asyncio.run(_replay(args.config, args.ids))


async def _replay(config: str, ids: list[int]) -> int:
    store = await _store(config)
    missing = []
    try:
        for outbox_id in ids:
            if not await store.replay(outbox_id):
                missing.append(outbox_id)
    finally:
        await store.close()
    done = len(ids) - len(missing)
    print(f"{done} dead letters queued again; the running monitor delivers them")
    if missing:
        print(f"not dead letters: {', '.join(str(i) for i in missing)}")
        return 1
    return 0
