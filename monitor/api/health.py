"""``/healthz`` (the process answers), ``/readyz`` (the database answers and every tailed log
was verified recently) and ``/metrics``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitor.api.logs import when
from monitor.api.pages import respond
from monitor.api.params import Params
from monitor.api.router import Api
from monitor.core.errors import StorageError
from monitor.core.findings import FindingKind, FindingState
from monitor.core.status import Leader
from monitor.storage import FindingQuery
from monitor.storage.ports import Readiness

DB_TIMEOUT = 5.0


async def healthz(api: Api, request: web.Request) -> web.StreamResponse:
    Params(request.query, ())
    return respond({"status": "ok"})


async def readyz(api: Api, request: web.Request) -> web.StreamResponse:
    """Ready: the database takes writes (a full disk answers reads), and every tailed log was
    verified recently and has no integrity failure open. Reasons are classified: this page may
    be public, and an error's full text can hold SQL, URLs or what a hostile log sent."""
    Params(request.query, ())
    ready = True
    store = api.ctx.store
    try:
        await asyncio.wait_for(_database_writes(store), DB_TIMEOUT)
        database = "ok"
    except (StorageError, TimeoutError) as e:
        reason = "database_timeout" if isinstance(e, TimeoutError) else "database_unavailable"
        ready, database = False, reason
    lies = await _open_lies(store) if database == "ok" else {}
    now = api.ctx.clock()
    logs = {}
    leaders = await _leaders(api) if database == "ok" else {}
    for name, status in sorted(api.ctx.statuses().items()):
        if not api.ctx.leads(name):
            # another replica's: it is enough that one leads it
            leader = leaders.get(name)
            if leader is None:
                ready, logs[name] = False, "no replica leads it"
            else:
                logs[name] = f"led by {leader.replica}"
            continue
        ok_at = status.last_success_at
        why = f" ({status.last_reason})" if status.last_reason else ""
        if name in lies:
            ready, logs[name] = False, f"integrity failure open ({', '.join(lies[name])})"
        elif status.lie:
            ready, logs[name] = False, f"integrity failure ({status.lie})"
        elif ok_at is None:
            ready, logs[name] = False, f"not verified yet{why or ' (first pass under way)'}"
        elif now - ok_at > api.ctx.ready_within:
            ready, logs[name] = False, f"not verified since {when(ok_at)}{why}"
        else:
            logs[name] = "ok"
    doc: dict[str, object] = {
        "status": "ready" if ready else "not_ready",
        "database": database,
        "logs": logs,
    }
    if api.ctx.replica is not None:
        doc["replica"] = api.ctx.replica
        doc["leads"] = sorted(n for n in api.ctx.statuses() if api.ctx.leads(n))
    return respond(doc, status=200 if ready else 503)


async def _leaders(api: Api) -> Mapping[str, Leader]:
    try:
        return await asyncio.wait_for(api.ctx.leadership(), DB_TIMEOUT)
    except (StorageError, TimeoutError):
        return {}  # then no log of another replica counts as led: not ready


async def _database_writes(store: Readiness) -> None:
    await store.ping()
    await store.probe_write(store.holder.name)


async def _open_lies(store: Readiness) -> dict[str, list[str]]:
    """Each log's open (or acknowledged) integrity failures, by type: until a pass resolves
    them, or a person does, the log is not trusted and the monitor not ready."""
    query = FindingQuery(
        kinds=(FindingKind.INTEGRITY_FAILURE,),
        states=(FindingState.OPEN, FindingState.ACKNOWLEDGED),
        limit=1000,
    )
    out: dict[str, list[str]] = {}
    try:
        page = await store.findings(query)
    except StorageError:
        return out  # the database check above says so
    for sf in page.items:
        f = sf.finding
        if f.log is not None and f.type is not None and f.type not in out.get(f.log, []):
            out.setdefault(f.log, []).append(f.type)
    return out


async def metrics(api: Api, request: web.Request) -> web.StreamResponse:
    Params(request.query, ())
    # on the loop, not a thread: collectors read the daemon's live state
    body = generate_latest(api.ctx.registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
