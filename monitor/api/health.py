"""``/healthz`` (the process answers), ``/readyz`` (the database answers and every tailed log
was verified recently) and ``/metrics``."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitor.api.logs import when
from monitor.api.pages import respond
from monitor.api.params import Params
from monitor.api.routing import Api
from monitor.errors import StorageError

DB_TIMEOUT = 5.0


async def healthz(api: Api, request: web.Request) -> web.StreamResponse:
    Params(request.query, ())
    return respond({"status": "ok"})


async def readyz(api: Api, request: web.Request) -> web.StreamResponse:
    Params(request.query, ())
    ready = True
    try:
        await asyncio.wait_for(api.ctx.store.ping(), DB_TIMEOUT)
        database = "ok"
    except (StorageError, TimeoutError) as e:
        ready, database = False, f"unreachable: {type(e).__name__}"
    now = api.ctx.clock()
    logs = {}
    for name, status in sorted(api.ctx.statuses().items()):
        ok_at = status.last_success_at
        why = f" ({status.lie or status.last_error})" if status.lie or status.last_error else ""
        if ok_at is None:
            ready, logs[name] = False, f"not verified yet{why or ' (first pass under way)'}"
        elif now - ok_at > api.ctx.ready_within:
            ready, logs[name] = False, f"not verified since {when(ok_at)}{why}"
        else:
            logs[name] = "ok"
    doc = {"status": "ready" if ready else "not_ready", "database": database, "logs": logs}
    return respond(doc, status=200 if ready else 503)


async def metrics(api: Api, request: web.Request) -> web.StreamResponse:
    Params(request.query, ())
    # on the loop, not a thread: collectors read the daemon's live state
    body = generate_latest(api.ctx.registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
