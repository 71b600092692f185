"""Registry authentication: anonymous, basic, a configured bearer token, and the token flow of
the distribution spec.

A registry that wants a token answers 401 with ``WWW-Authenticate: Bearer realm="...",
service="...",scope="..."``; the client asks the realm for a token for that service and scope
(with the basic credentials, if any), caches it per scope until it expires, and retries once.
The realm is as hostile as the registry: its answer is bounded, must be JSON with a token of
plain printable characters (it goes into a header), and a token is never sent over plain HTTP
off loopback.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp

from monitor.core.errors import LogResponseError, MalformedInputError, RegistryAuthError
from monitor.core.escape import escape
from monitor.core.imageref import is_loopback_host
from monitor.core.jsonread import JsonReader
from monitor.core.metrics import ClientMetrics
from monitor.logclient.decode import decode_json
from monitor.logclient.http import RETURNED, HttpPolicy, LogHttp

MAX_TOKEN_ANSWER = 64 << 10
MAX_TOKEN = 16 << 10
MIN_LIFETIME = 60.0  # the spec's default when the realm names none
MAX_LIFETIME = 3600.0  # a token is fetched again after an hour, whatever the realm says
EXPIRY_MARGIN = 10.0  # renew a little early: a token must not expire in flight
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/=:]+")
_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*,?')


@dataclass(frozen=True)
class Credentials:
    """How to authenticate: nothing, a username and password (sent as basic auth or to a
    token realm), or a bearer token sent as is. The secrets never appear in ``repr``."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        return "bearer" if self.token else "basic" if self.username is not None else "anonymous"

    def basic(self) -> str:
        raw = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


ANONYMOUS = Credentials()


@dataclass(frozen=True)
class Challenge:
    """A parsed ``WWW-Authenticate``: its scheme (lowercase) and parameters."""

    scheme: str
    params: Mapping[str, str]

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")


def same_site(host: str, other: str) -> bool:
    """Whether two hosts (``name[:port]``) belong to one site: the same IP address or
    ``localhost``, or names that end in the same two labels (``registry-1.docker.io`` and
    ``auth.docker.io``; ``ghcr.io`` and itself). Ports do not matter."""
    a, b = _hostname(host), _hostname(other)
    if a == b:
        return True
    if any(c.isdigit() for c in a.rsplit(".", 1)[-1]) or ":" in a or ":" in b:
        return False  # an IP address: only itself
    return a.count(".") >= 1 and a.split(".")[-2:] == b.split(".")[-2:]


def _hostname(host: str) -> str:
    parsed = urlsplit(f"//{host}").hostname
    return (parsed or host).lower().rstrip(".")


def parse_challenge(header: str | None) -> Challenge | None:
    """The first challenge of a ``WWW-Authenticate`` header, or None if there is none."""
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if not m or m.end() == pos:
            break
        value = m.group(2) if m.group(2) is not None else m.group(3)
        params.setdefault(m.group(1).lower(), re.sub(r"\\(.)", r"\1", value))
        pos = m.end()
    return Challenge(scheme.lower(), params)


@dataclass
class _Cached:
    header: str
    expires: float


class Authenticator:
    """The ``Authorization`` header for each request to one registry: a static one for basic
    or bearer credentials, else a token per scope from the realm the registry names."""

    def __init__(
        self,
        registry: str,
        session: aiohttp.ClientSession,
        *,
        api_host: str,
        credentials: Credentials,
        metrics: ClientMetrics,
        policy: HttpPolicy,
        insecure_http: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registry = registry
        self._api_host = api_host
        self._session = session
        self._credentials = credentials
        self._metrics = metrics
        self._policy = policy
        self._insecure = insecure_http
        self._clock = clock
        self._tokens: dict[str, _Cached] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._realms: dict[str, LogHttp] = {}
        self._basic_asked = False  # the registry asked for basic auth once: send it always

    def header(self, scope: str) -> str | None:
        """What to send before any challenge: a configured token, basic credentials once
        the registry asked for them, or a cached token for ``scope``."""
        if self._credentials.token:
            return f"Bearer {self._credentials.token}"
        if self._basic_asked:
            return self._credentials.basic()
        cached = self._tokens.get(scope)
        if cached and cached.expires > self._clock():
            return cached.header
        return None

    async def answer(
        self, challenge_header: str | None, scope: str, what: str, refused: str | None
    ) -> str:
        """The header to retry with after a 401 carrying ``challenge_header`` (``refused``:
        the header that request sent); raises ``RegistryAuthError`` when the challenge cannot
        be answered. Requests refused together share one token fetch."""
        challenge = parse_challenge(challenge_header)
        if challenge is None:
            raise self._fail(what, "HTTP 401 without a WWW-Authenticate challenge")
        if self._credentials.token:
            raise self._fail(what, "the registry refused the configured bearer token")
        if challenge.scheme == "basic":
            if self._credentials.username is None or self._basic_asked:
                raise self._fail(what, "the registry wants basic credentials; none accepted")
            self._basic_asked = True
            return self._credentials.basic()
        if challenge.scheme != "bearer" or not challenge.realm:
            raise self._fail(what, f"unusable challenge {str(challenge_header)[:200]!r}")
        async with self._locks.setdefault(scope, asyncio.Lock()):
            cached = self._tokens.get(scope)
            if cached and cached.header != refused and cached.expires > self._clock():
                return cached.header  # fetched while this request waited
            self._tokens.pop(scope, None)
            token, lifetime = await self._fetch(challenge, scope, what)
            header = f"Bearer {token}"
            self._tokens[scope] = _Cached(header, self._clock() + lifetime - EXPIRY_MARGIN)
            return header

    async def _fetch(self, challenge: Challenge, scope: str, what: str) -> tuple[str, float]:
        realm = challenge.realm or ""
        parts = urlsplit(realm)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise self._fail(what, f"token realm {realm[:200]!r} is no http(s) URL")
        if parts.scheme == "http" and not (self._insecure and is_loopback_host(parts.netloc)):
            raise self._fail(what, f"refused a token realm over plain HTTP: {escape(realm[:200])}")
        origin = f"{parts.scheme}://{parts.netloc}"
        http = self._realms.get(origin)
        if http is None:
            http = LogHttp(
                origin, self._session, log=parts.netloc, metrics=self._metrics, policy=self._policy
            )
            self._realms[origin] = http
        params = {k: v for k in ("service",) if (v := challenge.params.get(k))}
        params["scope"] = challenge.params.get("scope") or scope
        headers = {}
        if self._credentials.username is not None:
            if not same_site(self._api_host, parts.netloc):
                # a registry could name any realm: our password goes only to its own site
                raise self._fail(
                    what,
                    f"refused to send credentials to a token realm on another site: {parts.netloc}",
                )
            headers["Authorization"] = self._credentials.basic()
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            resp = await http.get(
                path or "/",
                params=params,
                headers=headers,
                max_bytes=MAX_TOKEN_ANSWER,
                statuses=RETURNED | {401, 403},
            )
        except LogResponseError as e:
            problem = str(e).removeprefix(f"{parts.netloc}: ")
            raise self._fail(what, f"token realm {parts.netloc}: {problem}") from None
        if resp.status != 200:
            raise self._fail(what, f"token realm {parts.netloc} answered HTTP {resp.status}")
        try:
            doc = JsonReader(await decode_json(resp.body, 64, "token"), "token answer")
            value = doc.opt("token") or doc.opt("access_token")
            if value is None:
                raise doc.fail("holds neither token nor access_token")
            token = value.str()
            expires_in = doc.opt("expires_in")
            lifetime = float(expires_in.int()) if expires_in is not None else MIN_LIFETIME
        except (LogResponseError, MalformedInputError) as e:
            raise self._fail(what, f"token realm {parts.netloc}: {e}") from None
        if not 0 < len(token) <= MAX_TOKEN or not _TOKEN.fullmatch(token):
            raise self._fail(what, f"token realm {parts.netloc} sent a malformed token")
        return token, min(max(lifetime, MIN_LIFETIME), MAX_LIFETIME)

    def _fail(self, what: str, message: str) -> RegistryAuthError:
        return RegistryAuthError(self._registry, what, message)
