"""The aiohttp application: routes, their scopes, and the middlewares around them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware

from monitor import __version__
from monitor.api import entries, findings, health, logs
from monitor.api.errors import json_errors
from monitor.api.openapi import document
from monitor.api.pages import respond
from monitor.api.router import (
    HEALTH,
    METRICS,
    PUBLIC,
    READ,
    WRITE,
    Api,
    Route,
    metrics_middleware,
    wrap,
)

V1 = "/api/v1"

# an application served beside the API under a path prefix (the console under /ui/), built
# with the API's shared state: its context, tokens and metrics
Mount = Callable[[Api], web.Application]


def routes() -> list[Route]:
    return [
        Route("GET", "/healthz", health.healthz, HEALTH),
        Route("GET", "/readyz", health.readyz, HEALTH),
        Route("GET", "/metrics", health.metrics, METRICS),
        Route("GET", f"{V1}/openapi.json", openapi, PUBLIC),
        Route("GET", f"{V1}/entries", entries.list_entries, READ),
        Route("GET", f"{V1}/entries/{{log}}/{{index}}", entries.get_entry, READ),
        Route("GET", f"{V1}/findings", findings.list_findings, READ),
        Route("GET", f"{V1}/findings/{{id}}", findings.get_finding, READ),
        Route("POST", f"{V1}/findings/{{id}}/ack", findings.acknowledge, WRITE),
        Route("POST", f"{V1}/findings/{{id}}/resolve", findings.resolve, WRITE),
        Route("GET", f"{V1}/logs", logs.list_logs, READ),
        Route("GET", f"{V1}/logs/{{log}}/checkpoint", logs.log_checkpoint, READ),
        Route("GET", f"{V1}/logs/{{log}}/checkpoints", logs.log_checkpoints, READ),
    ]


async def openapi(api: Api, request: web.Request) -> web.StreamResponse:
    server = api.ctx.server
    return respond(
        document(
            __version__,
            server.max_page_size,
            health_public=server.health_public,
            metrics_public=server.metrics_public,
        )
    )


def build_app(
    api: Api, outer: Sequence[Middleware] = (), mounts: Mapping[str, Mount] = {}
) -> web.Application:
    """The application; ``outer`` middlewares wrap all others (the connection guard's);
    ``mounts`` are applications served under their prefixes, inside the same middlewares."""
    table = routes()
    templates = {r.path: r.path for r in table}
    app = web.Application(
        client_max_size=api.ctx.server.max_request_bytes,
        middlewares=[
            *outer,
            metrics_middleware(api, templates, tuple(mounts)),
            json_errors,
        ],
    )
    for r in table:
        app.router.add_route(r.method, r.path, wrap(api, r))
    for prefix, mount in mounts.items():
        app.add_subapp(prefix.rstrip("/"), mount(api))
    return app
