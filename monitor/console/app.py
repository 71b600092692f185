"""The console's application, mounted by the API server under ``/ui/``: its route table,
signing in and out, the security headers of every answer and errors as pages.

A page is a handler ``(Console, request, Session) -> response`` with the scope it needs; a new
page (images, say) is a module with its handlers, a template, rows in ``ROUTES`` and, to be
in the menu, in ``NAV``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web

from monitor.api.errors import ApiError
from monitor.api.router import READ, WRITE, Api
from monitor.console import findings, history, logs
from monitor.console.render import STATIC_FILES, environment, render_page, static_file
from monitor.console.session import (
    CSRF_FIELD,
    Refused,
    Session,
    check_csrf,
    check_origin,
    clear_cookie,
    new_cookie,
    session_of,
    set_cookie,
)
from monitor.console.state import Console, Handler
from monitor.core.errors import MalformedInputError, StorageError

log = logging.getLogger("monitor.console")

PREFIX = "/ui"
MAX_TOKEN = 1024

# script and style only from the console's own files: no inline code, no other origin
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

# (label, path) of the menu
NAV = (("Findings", "/findings"), ("History", "/history"), ("Logs", "/logs"))


@dataclass(frozen=True)
class Page:
    method: str
    path: str
    handler: Handler
    scope: str


ROUTES = (
    Page("GET", "/findings", findings.queue, READ),
    Page("GET", "/findings/{id}", findings.finding_page, READ),
    Page("POST", "/findings/{id}/ack", findings.acknowledge, WRITE),
    Page("POST", "/findings/{id}/resolve", findings.resolve, WRITE),
    Page("GET", "/history", history.search, READ),
    Page("GET", "/entries/{log}/{index}", history.entry_page, READ),
    Page("GET", "/entries/{log}/{index}/evidence", history.evidence, READ),
    Page("GET", "/logs", logs.logs_page, READ),
)


def console_app(api: Api) -> web.Application:
    """The console for the API's context and tokens (``build_app``'s ``Mount``)."""
    env = environment()
    env.globals.update(prefix=PREFIX, nav=NAV, csrf_field=CSRF_FIELD)
    console = Console(api, env, PREFIX)
    app = web.Application(middlewares=[_headers, _errors(console)])
    app.router.add_get("/", _home)
    app.router.add_get("/signin", _signin_form(console))
    app.router.add_post("/signin", _signin(console))
    app.router.add_post("/signout", _signout(console))
    app.router.add_get("/static/{name}", _static)
    for page in ROUTES:
        app.router.add_route(page.method, page.path, _guard(console, page))
    return app


def _guard(console: Console, page: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Signed in with the page's scope; a change also from this site with the form's CSRF
    token."""

    async def handle(request: web.Request) -> web.StreamResponse:
        session = session_of(request, console.api.auth)
        if session is None:
            if request.method != "GET":
                raise ApiError(401, "unauthorized", "sign in first")
            target = quote(request.rel_url.path_qs, safe="/")  # one parameter, whole
            raise web.HTTPSeeOther(f"{PREFIX}/signin?next={target}")
        if not session.may(page.scope):
            raise ApiError(
                403,
                "insufficient_scope",
                f"token {session.principal.name!r} lacks the {page.scope!r} scope",
            )
        if request.method != "GET":
            check_origin(request)
            form = await request.post()
            field = form.get(CSRF_FIELD)
            check_csrf(session, field if isinstance(field, str) else None)
        return await page.handler(console, request, session)

    return handle


async def _home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther(f"{PREFIX}/findings")


def _next_of(raw: object) -> str:
    """Where to go after signing in: a page of the console, never another site."""
    if (
        isinstance(raw, str)
        and raw.startswith(f"{PREFIX}/")
        and "//" not in raw
        and "\\" not in raw
    ):
        return raw
    return f"{PREFIX}/findings"


def _signin_form(console: Console) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        return render_page(
            console.env,
            "signin.html",
            next=_next_of(request.query.get("next")),
            error=None,
            session=None,
            configured=console.api.auth.configured,
        )

    return handle


def _signin(console: Console) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        check_origin(request)  # no session yet: a form from another site must not sign in
        form = await request.post()
        token, target = form.get("token"), _next_of(form.get("next"))
        principal = None
        if isinstance(token, str) and 0 < len(token) <= MAX_TOKEN:
            principal = console.api.auth.identify(token.strip())
        if principal is None or not isinstance(token, str):
            return render_page(
                console.env,
                "signin.html",
                status=401,
                next=target,
                error="Unknown token.",
                session=None,
                configured=console.api.auth.configured,
            )
        response = _see_other(target)
        set_cookie(response, request, new_cookie(token.strip()), f"{PREFIX}/")
        log.info("console sign-in", extra={"fields": {"token": principal.name}})
        return response

    return handle


def _signout(console: Console) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        session = session_of(request, console.api.auth)
        response = _see_other(f"{PREFIX}/signin")
        if session is not None:
            check_origin(request)
            form = await request.post()
            field = form.get(CSRF_FIELD)
            check_csrf(session, field if isinstance(field, str) else None)
        clear_cookie(response, request, f"{PREFIX}/")
        return response

    return handle


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


async def _static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in STATIC_FILES:
        raise web.HTTPNotFound()
    data, _version = static_file(name)
    kind = {"css": "text/css", "js": "text/javascript", "svg": "image/svg+xml"}[
        name.rsplit(".", 1)[1]
    ]
    # URLs carry the file's hash (?v=): a new version is a new URL
    return web.Response(
        body=data,
        content_type=kind,
        charset="utf-8",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@web.middleware
async def _headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as e:
        e.headers.update(HEADERS)
        raise
    response.headers.update(HEADERS)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _errors(console: Console) -> Any:
    """Errors as pages (the API's are JSON): a refusal says what was wrong; anything else is
    a 500 whose detail goes only to the log."""

    @web.middleware
    async def errors(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        session = session_of(request, console.api.auth)
        try:
            return await handler(request)
        except web.HTTPException as e:
            if e.status < 400:
                raise
            return _error(console.env, e.status, e.reason, session)
        except StorageError:
            log.exception("database error serving %s %s", request.method, request.path)
            return _error(console.env, 503, "The database did not answer.", session)
        except (ApiError, Refused, MalformedInputError) as e:
            status, message, headers = _refusal(e)
            return _error(console.env, status, message, session, headers)
        except Exception:
            log.exception("error serving %s %s", request.method, request.path)
            return _error(console.env, 500, "Internal error (logged by the monitor).", session)

    return errors


def _refusal(e: Exception) -> tuple[int, str, dict[str, str]]:
    """The status and message of a request refused for what it asked."""
    if isinstance(e, ApiError):
        return e.status, e.message, e.headers
    if isinstance(e, Refused):
        return 403, f"Refused: {e}.", {}
    return 400, str(e), {}


def _error(
    env: jinja2.Environment,
    status: int,
    message: str,
    session: Session | None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    response = render_page(env, "error.html", status=status, message=message, session=session)
    for k, v in (headers or {}).items():
        if k.lower() != "www-authenticate":  # a browser would prompt for Basic credentials
            response.headers[k] = v
    return response
