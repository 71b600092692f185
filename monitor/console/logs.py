"""The logs page: each log's verified size, lag, last checkpoint and its cosigners, and the
integrity and health findings not yet resolved."""

from __future__ import annotations

from aiohttp import web

from monitor.api.logs import cosigners_shown, log_json
from monitor.console.render import render_page
from monitor.console.session import Session
from monitor.console.state import Console
from monitor.core.findings import FindingKind, FindingState
from monitor.storage import FindingQuery
from monitor.storage.findings_store import StoredFinding

# what says a log is lying or unwatched, rather than who signed what
LOG_KINDS = (
    FindingKind.INTEGRITY_FAILURE,
    FindingKind.HEALTH,
    FindingKind.UNWITNESSED_CHECKPOINT,
)
MAX_FINDINGS = 200


async def logs_page(c: Console, request: web.Request, s: Session) -> web.StreamResponse:
    ctx = c.api.ctx
    statuses = {n: st for n, st in ctx.statuses().items() if ctx.leads(n)}
    leaders = await ctx.leadership()
    unresolved = await ctx.store.findings(
        FindingQuery(
            states=(FindingState.OPEN, FindingState.ACKNOWLEDGED),
            kinds=LOG_KINDS,
            limit=MAX_FINDINGS,
        )
    )
    by_log: dict[str | None, list[StoredFinding]] = {}
    for f in unresolved.items:
        by_log.setdefault(f.finding.log, []).append(f)
    rows = []
    for state in await ctx.store.log_states():
        latest = await ctx.store.checkpoints(state.name, limit=1)
        cp = latest[0] if latest else None
        cosigned = None if cp is None else cosigners_shown(ctx, state.name, cp)
        doc = log_json(state, cp, statuses.get(state.name), leaders.get(state.name), cosigned)
        rows.append({"log": doc, "findings": by_log.pop(state.name, [])})
    # findings of the monitor itself (a sink failing) or of a log no longer stored
    other = [f for found in by_log.values() for f in found]
    return render_page(
        c.env,
        "logs.html",
        session=s,
        rows=rows,
        other=other,
        more=unresolved.next_cursor is not None,
    )
