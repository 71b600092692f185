"""Signing in to the console, and who a request comes from.

The bearer token itself is the credential, checked exactly as the API checks it
(``Authenticator.identify``): the cookie holds the token beside a random per-session nonce,
and nothing is kept on the server, so a session works on every replica and survives a
restart, and revoking a token (removing it from ``server.tokens``) ends every session that
holds it at the next request. The cookie is HttpOnly (no script reads it), SameSite=Strict (no
other site's page sends it) and Secure when the console is served over TLS (``over_tls``).

Every change (a POST) must also carry the session's CSRF token in a form field: an HMAC of
the nonce keyed by the bearer token, which no other site can compute, compared in constant
time. And its Origin (else its Referer) must be this server's own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from monitor.api.auth import Authenticator, Principal

COOKIE = "tlog_monitor_console"
CSRF_FIELD = "csrf"
MAX_COOKIE = 4096
NONCE_BYTES = 16
# a session cookie lasts as long as the browser does, at most this long (seconds)
MAX_AGE = 12 * 3600


class Refused(Exception):
    """A change refused: no valid CSRF token, or from another origin."""


@dataclass(frozen=True)
class Session:
    """A signed-in request: who, and the CSRF token its forms carry."""

    principal: Principal
    csrf: str

    def may(self, scope: str) -> bool:
        return scope in self.principal.scopes


def csrf_token(token: str, nonce: str) -> str:
    key = token.encode("utf-8", "surrogateescape")
    return hmac.new(
        key, b"tlog-monitor console csrf\x00" + nonce.encode(), hashlib.sha256
    ).hexdigest()


def new_cookie(token: str) -> str:
    """The cookie value of a new session of ``token``."""
    nonce = secrets.token_urlsafe(NONCE_BYTES)
    encoded = base64.urlsafe_b64encode(token.encode("utf-8", "surrogateescape")).decode()
    return f"{nonce}.{encoded}"


def _parse(value: str) -> tuple[str, str] | None:
    """(nonce, token) of a cookie value; None if it is not one of ours."""
    if len(value) > MAX_COOKIE:
        return None
    nonce, dot, encoded = value.partition(".")
    if not dot or not nonce or not encoded:
        return None
    try:
        token = base64.urlsafe_b64decode(encoded.encode("ascii")).decode("utf-8", "surrogateescape")
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    return nonce, token


def session_of(request: web.Request, auth: Authenticator) -> Session | None:
    """The session of ``request``: its cookie names a token that is configured now."""
    value = request.cookies.get(COOKIE)
    parsed = None if value is None else _parse(value)
    if parsed is None:
        return None
    nonce, token = parsed
    principal = auth.identify(token)
    if principal is None:
        return None
    return Session(principal, csrf_token(token, nonce))


def over_tls(request: web.Request) -> bool:
    """The browser reached the console over TLS: directly, or through a proxy that says so
    (``X-Forwarded-Proto: https``, ``Forwarded: proto=https``). A client that claims it falsely
    only makes its own cookie stricter: a Secure cookie is never sent back over plain HTTP."""
    if request.secure:
        return True
    if request.headers.get("X-Forwarded-Proto", "").strip().lower() == "https":
        return True
    return any(f.get("proto", "").lower() == "https" for f in request.forwarded)


def set_cookie(response: web.StreamResponse, request: web.Request, value: str, path: str) -> None:
    response.set_cookie(
        COOKIE,
        value,
        path=path,
        max_age=MAX_AGE,
        httponly=True,
        samesite="Strict",
        secure=over_tls(request),
    )


def clear_cookie(response: web.StreamResponse, request: web.Request, path: str) -> None:
    response.set_cookie(
        COOKIE,
        "",
        path=path,
        max_age=0,
        expires="Thu, 01 Jan 1970 00:00:00 GMT",
        httponly=True,
        samesite="Strict",
        secure=over_tls(request),
    )


def check_origin(request: web.Request) -> None:
    """Refuses a change whose Origin (or, without one, Referer) is not this server: a form
    another site posts carries that site's origin. Hosts are compared, not schemes, so that a
    proxy terminating TLS in front of the console does not refuse every change."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        origin = request.headers.get("Referer")
    if not origin:
        raise Refused("the request names no Origin or Referer")
    try:
        host = urlsplit(origin).netloc
    except ValueError:
        raise Refused("the request's Origin is not a URL") from None
    if not host or not hmac.compare_digest(host.lower().encode(), request.host.lower().encode()):
        raise Refused("the request comes from another site")


def check_csrf(session: Session, presented: str | None) -> None:
    """Refuses a change whose form does not carry the session's CSRF token."""
    if presented is None or not hmac.compare_digest(
        presented.encode("utf-8", "surrogateescape"), session.csrf.encode()
    ):
        raise Refused("the form's CSRF token is missing or not this session's")
