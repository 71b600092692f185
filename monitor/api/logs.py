"""``/api/v1/logs``: where each log stands (stored state, latest checkpoint, the daemon's live
view: lag, last success, current errors), and each log's checkpoint history."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from aiohttp import web

from monitor.api.context import ApiContext
from monitor.api.errors import not_found
from monitor.api.pages import JSON, page, respond
from monitor.api.params import Params
from monitor.api.router import Api, limit_of
from monitor.core.findings import FindingKind, FindingState, IntegrityType
from monitor.core.status import Leader, LogStatus
from monitor.core.suggest import unknown_name
from monitor.storage import FindingQuery
from monitor.storage.logs_state import LogState, StoredCheckpoint


def when(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()


def checkpoint_json(c: StoredCheckpoint, cosigners: list[JSON] | None = None) -> JSON:
    return {
        "cosigners": cosigners or [],
        "origin": c.origin,
        "size": c.size,
        "root_hash": c.root.hex(),
        "verified": c.verified,
        "seen_at": c.seen_at.isoformat(),
        "note": c.raw,
    }


def cosigners_shown(ctx: ApiContext, log: str, c: StoredCheckpoint) -> list[JSON]:
    """Who cosigned ``c``: as recorded when it was stored, or, for a checkpoint stored while
    no witnesses were configured, checked now against the log's current policy."""
    if c.cosigners is not None:
        return [dataclasses.asdict(x) for x in c.cosigners]
    return ctx.cosigners(log, c.raw)


def log_json(
    state: LogState,
    latest: StoredCheckpoint | None,
    status: LogStatus | None,
    leader: Leader | None = None,
    cosigners: list[JSON] | None = None,
) -> JSON:
    lag = None if status is None else status.lag()
    if lag is None and latest is not None and latest.verified:
        lag = max(0, latest.size - state.cursor) if state.api == "v2" else None
    return {
        "name": state.name,
        "api": state.api,
        "url": state.url,
        "tailed": status is not None,  # configured and tailed by this daemon now
        "leader": None if leader is None else leader.to_json(),
        "cursor": state.cursor,
        "verified_size": state.verified_size,
        "verified_root_hash": None if state.verified_root is None else state.verified_root.hex(),
        "latest_checkpoint": None if latest is None else checkpoint_json(latest, cosigners),
        "lag_entries": lag,
        "log_size": None if status is None else status.log_size,
        "last_success_at": None if status is None else when(status.last_success_at),
        "last_progress_at": None if status is None else when(status.progress_at),
        "failing_since": None if status is None else when(status.failing_since),
        "last_error": None if status is None else status.last_error,
        "integrity_failure": None if status is None else status.lie,
        "frozen": False if status is None else status.frozen,
        "updated_at": state.updated_at.isoformat(),
    }


async def list_logs(api: Api, request: web.Request) -> web.StreamResponse:
    Params(request.query, ())
    ctx = api.ctx
    statuses = {n: s for n, s in ctx.statuses().items() if ctx.leads(n)}
    leaders = await ctx.leadership()
    out = []
    for state in await ctx.store.log_states():
        latest = await ctx.store.checkpoints(state.name, limit=1)
        status, leader = statuses.get(state.name), leaders.get(state.name)
        cp = latest[0] if latest else None
        cosigned = None if cp is None else cosigners_shown(ctx, state.name, cp)
        out.append(log_json(state, cp, status, leader, cosigned))
    return respond({"items": out})


async def log_checkpoint(api: Api, request: web.Request) -> web.StreamResponse:
    Params(request.query, ())
    name = request.match_info["log"]
    state = await api.ctx.store.log_state(name)
    if state is None:
        raise not_found(unknown_name("log", name, await api.ctx.store.log_names()))
    if state.verified_checkpoint is None:
        raise not_found(f"no checkpoint of {name} is verified yet")
    note, cosigner = state.verified_checkpoint, api.ctx.cosigner
    if cosigner is not None and not await _split_view_open(api, name):
        # a witness's statement: verified, and consistent with all the monitor saw before;
        # never made while the monitor holds evidence that the log shows two views
        note = cosigner.cosign(note, int(api.ctx.clock()))
    return web.Response(text=note, content_type="text/plain")


async def _split_view_open(api: Api, log: str) -> bool:
    query = FindingQuery(
        kinds=(FindingKind.INTEGRITY_FAILURE,),
        states=(FindingState.OPEN, FindingState.ACKNOWLEDGED),
        log=log,
        limit=1000,
    )
    found = (await api.ctx.store.findings(query)).items
    return any(sf.finding.type == IntegrityType.SPLIT_VIEW for sf in found)


async def log_checkpoints(api: Api, request: web.Request) -> web.StreamResponse:
    params = Params(request.query, ("limit", "cursor"))
    name = request.match_info["log"]
    limit = limit_of(params, api.ctx.server.max_page_size)
    if await api.ctx.store.log_state(name) is None:
        raise not_found(unknown_name("log", name, await api.ctx.store.log_names()))
    result = await api.ctx.store.checkpoint_page(name, limit, params.text("cursor"))
    return page(
        (checkpoint_json(c, cosigners_shown(api.ctx, name, c)) for c in result.items),
        result.next_cursor,
    )
