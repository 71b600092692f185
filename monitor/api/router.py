"""What wraps every route of the API (the table itself is ``app.routes()``): its scope (who
may call it), the route template that labels its metrics, authentication, request metrics
and JSON errors."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import Counter, Gauge, Histogram

from monitor.api.auth import Authenticator, Principal
from monitor.api.context import ApiContext
from monitor.api.errors import bad_param
from monitor.api.params import MAX_INDEX, Params
from monitor.core.metrics import PREFIX
from monitor.storage.paging import DEFAULT_PAGE_SIZE

# who may call a route: anyone, anyone when so configured, or a token with a scope
PUBLIC, HEALTH, METRICS, READ, WRITE = "public", "health", "metrics", "read", "write"

PRINCIPAL = web.RequestKey("principal", Principal)
DROP_REASONS = ("header_timeout", "evicted")


class ApiMetrics:
    def __init__(self, ctx: ApiContext) -> None:
        self.requests = Counter(
            f"{PREFIX}_api_requests",
            "HTTP API requests, by route template, method and status.",
            ["route", "method", "status"],
            registry=ctx.registry,
        )
        self.latency = Histogram(
            f"{PREFIX}_api_request_seconds",
            "Time to answer one HTTP API request, by route template.",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=ctx.registry,
        )
        self.connections = Gauge(
            f"{PREFIX}_api_connections",
            "Connections open to the API now.",
            registry=ctx.registry,
        )
        self.refused = Counter(
            f"{PREFIX}_api_connections_refused",
            "New connections refused (a 503) because server.max_connections were open and "
            "every one was mid-request.",
            registry=ctx.registry,
        )
        self.dropped = Counter(
            f"{PREFIX}_api_connections_dropped",
            "Connections the API closed before their request was complete, by reason: "
            "header_timeout, or evicted (waiting longest, closed to make room for a new one).",
            ["reason"],
            registry=ctx.registry,
        )
        for reason in DROP_REASONS:
            self.dropped.labels(reason)


class Api:
    """The state every handler shares."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self.auth = Authenticator(ctx.server.tokens)
        self.metrics = ApiMetrics(ctx)

    def scope_needed(self, scope: str) -> str | None:
        """The token scope a route of ``scope`` needs now; None if it is open."""
        if scope == PUBLIC:
            return None
        if scope == HEALTH:
            return None if self.ctx.server.health_public else READ
        if scope == METRICS:
            return None if self.ctx.server.metrics_public else READ
        return scope

    @staticmethod
    def path_index(request: web.Request) -> int:
        return _path_int(request, "index", "the index")

    @staticmethod
    def path_id(request: web.Request) -> int:
        return _path_int(request, "id", "a finding id")


def _path_int(request: web.Request, name: str, what: str) -> int:
    raw = request.match_info[name]
    if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_INDEX:
        raise bad_param(name, f"{what} must be a whole number, not {raw!r}")
    return int(raw)


def limit_of(params: Params, max_page: int) -> int:
    limit = params.integer("limit", low=1, high=max_page)
    return min(DEFAULT_PAGE_SIZE, max_page) if limit is None else limit


ApiHandler = Callable[[Api, web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: ApiHandler
    scope: str


def wrap(api: Api, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler for ``route``: checks the scope, then calls the handler."""

    async def handle(request: web.Request) -> web.StreamResponse:
        needed = api.scope_needed(route.scope)
        if needed is not None:
            request[PRINCIPAL] = api.auth.require(request, needed)
        return await route.handler(api, request)

    return handle


def metrics_middleware(
    api: Api, templates: dict[str, str], prefixes: tuple[str, ...] = ()
) -> Middleware:
    """Counts and times every request by its route template (bounded label values: never a
    raw path, which a client controls); a mounted application's routes by their own
    templates (under one of ``prefixes``)."""

    @web.middleware
    async def measure(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        start = time.perf_counter()
        info = request.match_info.route.resource
        route = "other"
        if info is not None:
            route = templates.get(info.canonical, "other")
            if route == "other" and info.canonical.startswith(prefixes):
                route = info.canonical
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as e:
            status = e.status
            raise
        finally:
            api.metrics.requests.labels(route, request.method, str(status)).inc()
            api.metrics.latency.labels(route).observe(time.perf_counter() - start)

    return measure
