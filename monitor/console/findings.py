"""The findings pages: the queue (open by default) with its filters, one finding with its
entry, signer, evidence and alert deliveries, and acknowledging or resolving it."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from monitor.api.errors import ApiError, not_found
from monitor.api.findings import FILTERS, MAX_COMMENT, SEVERITIES, finding_query
from monitor.api.params import Params
from monitor.api.router import Api
from monitor.console.render import age, render_page
from monitor.console.session import Session
from monitor.console.state import Console, filled
from monitor.core.findings import FindingKind, FindingState
from monitor.storage.query_check import checked_findings

ANY = "any"  # the queue's state filter: every state (without it, open findings only)


async def queue(c: Console, request: web.Request, s: Session) -> web.StreamResponse:
    query = filled(request.query)
    state = query.get("state")
    if state is None:
        query["state"] = str(FindingState.OPEN)
    elif state == ANY:
        del query["state"]
    query.setdefault("order", "severity")  # the queue: most severe first, oldest first within
    params = Params(query, FILTERS, repeatable=("state", "kind"))
    found = finding_query(params, c.api.ctx.server.max_page_size)
    checked = await checked_findings(
        c.api.ctx.store,
        found,
        configured_rules=c.api.ctx.rules,
        configured_logs=c.api.ctx.configured_logs(),
    )
    result = await c.api.ctx.store.findings(checked)
    now = c.api.ctx.clock()
    rows = [
        {"f": f.finding, "age": age(f.finding.created_at, now), "by": f.state_changed_by}
        for f in result.items
    ]
    kept = [(k, v) for k, v in filled(request.query).items() if k != "cursor"]
    return render_page(
        c.env,
        "findings.html",
        session=s,
        rows=rows,
        filters=dict(filled(request.query)),
        kept=kept,
        next_cursor=result.next_cursor,
        states=[ANY, *(str(x) for x in FindingState)],
        severities=SEVERITIES,
        kinds=[str(k) for k in FindingKind],
        rules=sorted(set(c.api.ctx.rules) | set(await c.api.ctx.store.finding_rules())),
        logs=await c.api.ctx.store.log_names(),
    )


def _finding_id(request: web.Request) -> int:
    return Api.path_id(request)


async def finding_page(c: Console, request: web.Request, s: Session) -> web.StreamResponse:
    store = c.api.ctx.store
    found = await store.finding(_finding_id(request))
    if found is None:
        raise not_found(f"no finding {request.match_info['id']}")
    f = found.finding
    entry = None
    if f.log is not None and f.index is not None:
        entry = await store.entry(f.log, f.index)
    deliveries = await store.deliveries(f.dedup_key)
    return render_page(
        c.env,
        "finding.html",
        session=s,
        f=f,
        stored=found,
        age=age(f.created_at, c.api.ctx.clock()),
        entry=entry,
        signers=[] if entry is None else entry.record.get("signers", []),
        evidence=None if found.evidence is None else json.dumps(found.evidence, indent=2),
        deliveries=deliveries,
        resolved=f.state is FindingState.RESOLVED,
        max_comment=MAX_COMMENT,
    )


async def acknowledge(c: Console, request: web.Request, s: Session) -> web.StreamResponse:
    return await _change(c, request, s, c.api.ctx.store.acknowledge_finding)


async def resolve(c: Console, request: web.Request, s: Session) -> web.StreamResponse:
    return await _change(c, request, s, c.api.ctx.store.resolve_finding)


async def _change(
    c: Console,
    request: web.Request,
    s: Session,
    change: Callable[[int, str, str | None], Awaitable[bool]],
) -> web.StreamResponse:
    finding_id = _finding_id(request)
    form = await request.post()
    raw = form.get("comment")
    comment = raw.strip() if isinstance(raw, str) and raw.strip() else None
    if comment is not None and len(comment) > MAX_COMMENT:
        raise ApiError(400, "bad_body", f"the comment is longer than {MAX_COMMENT} characters")
    if not await change(finding_id, s.principal.name, comment):
        if await c.api.ctx.store.finding(finding_id) is None:
            raise not_found(f"no finding {finding_id}")
        raise ApiError(409, "conflict", f"finding {finding_id} is resolved already")
    raise web.HTTPSeeOther(f"{c.prefix}/findings/{finding_id}")
