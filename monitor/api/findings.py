"""``/api/v1/findings``: list, one with its evidence, acknowledge and resolve (who and when
are recorded; resolving tells every sink that heard of the finding)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from monitor.api.body import json_body
from monitor.api.errors import ApiError, bad_param, not_found
from monitor.api.pages import page, respond
from monitor.api.params import Params
from monitor.api.router import PRINCIPAL, Api, limit_of
from monitor.core.findings import FindingKind, FindingState, Severity
from monitor.storage import FindingQuery
from monitor.storage.findings_store import StoredFinding
from monitor.storage.query_check import checked_findings

FILTERS = (
    "state",
    "severity",
    "kind",
    "rule",
    "log",
    "since",
    "until",
    "limit",
    "cursor",
    "order",
)
ORDERS = ("newest", "severity")
MAX_COMMENT = 4000
SEVERITIES = tuple(str(s) for s in Severity)


def _summary(f: StoredFinding) -> dict[str, object]:
    doc = f.to_json()
    doc.pop("evidence", None)  # pages stay small: evidence comes with the finding itself
    return doc


def finding_query(params: Params, max_page: int) -> FindingQuery:
    """The filters of a findings listing (the API's, and the console's queue)."""
    severity = params.text("severity")
    if severity is not None and severity not in SEVERITIES:
        raise bad_param(
            "severity", f"unknown severity {severity!r}; one of {', '.join(SEVERITIES)}"
        )
    since, until = params.time("since"), params.time("until")
    if since is not None and until is not None and since > until:
        raise bad_param("until", "until is before since")
    order = params.text("order") or "newest"
    if order not in ORDERS:
        raise bad_param("order", f"unknown order {order!r}; one of {', '.join(ORDERS)}")
    return FindingQuery(
        states=tuple(params.choices("state", FindingState)),
        min_severity=None if severity is None else Severity[severity.upper()],
        kinds=tuple(params.choices("kind", FindingKind)),
        rule=params.text("rule"),
        log=params.text("log"),
        since=since,
        until=until,
        limit=limit_of(params, max_page),
        cursor=params.text("cursor"),
        order="severity" if order == "severity" else "newest",
    )


async def list_findings(api: Api, request: web.Request) -> web.StreamResponse:
    params = Params(request.query, FILTERS, repeatable=("state", "kind"))
    query = finding_query(params, api.ctx.server.max_page_size)
    checked = await checked_findings(
        api.ctx.store,
        query,
        configured_rules=api.ctx.rules,
        configured_logs=api.ctx.configured_logs(),
    )
    result = await api.ctx.store.findings(checked)
    return page((_summary(f) for f in result.items), result.next_cursor)


async def get_finding(api: Api, request: web.Request) -> web.StreamResponse:
    Params(request.query, ())
    found = await api.ctx.store.finding(api.path_id(request))
    if found is None:
        raise not_found(f"no finding {request.match_info['id']}")
    return respond(found.to_json())


async def _comment(api: Api, request: web.Request) -> str | None:
    """The optional ``{"comment": "..."}`` body of a state change."""
    body = await json_body(request, api.ctx.server.body_timeout.total_seconds())
    if body is None:
        return None
    if not isinstance(body, dict) or set(body) - {"comment"}:
        raise ApiError(400, "bad_body", 'the body must be {"comment": "..."} (or empty)')
    comment = body.get("comment")
    if comment is None:
        return None
    if not isinstance(comment, str):
        raise ApiError(400, "bad_body", "comment must be a string", param="comment")
    if len(comment) > MAX_COMMENT:
        raise ApiError(
            400, "bad_body", f"comment is longer than {MAX_COMMENT} characters", param="comment"
        )
    return comment


async def acknowledge(api: Api, request: web.Request) -> web.StreamResponse:
    return await _change(api, request, api.ctx.store.acknowledge_finding)


async def resolve(api: Api, request: web.Request) -> web.StreamResponse:
    return await _change(api, request, api.ctx.store.resolve_finding)


async def _change(
    api: Api, request: web.Request, change: Callable[[int, str, str | None], Awaitable[bool]]
) -> web.StreamResponse:
    """Acknowledge or resolve: ``change`` refuses a finding that is resolved already."""
    Params(request.query, ())
    finding_id = api.path_id(request)
    comment = await _comment(api, request)
    if not await change(finding_id, request[PRINCIPAL].name, comment):
        if await api.ctx.store.finding(finding_id) is None:
            raise not_found(f"no finding {finding_id}")
        raise ApiError(409, "conflict", f"finding {finding_id} is resolved already")
    return await _current(api, finding_id)


async def _current(api: Api, finding_id: int) -> web.StreamResponse:
    found = await api.ctx.store.finding(finding_id)
    if found is None:  # deleted meanwhile (retention)
        raise not_found(f"no finding {finding_id}")
    return respond(found.to_json())
