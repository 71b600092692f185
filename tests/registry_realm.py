"""A token realm for the registry tests: the service a distribution registry with ``auth:
token:`` sends clients to (``WWW-Authenticate: Bearer realm=...``). It grants what the scope
asks, signed by the registry's ``TokenIssuer``; it can require basic credentials, and it can
misbehave (``mode``) as a hostile realm would."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web

from tests.registry_support import SERVICE, RunningRegistry

MISBEHAVIOURS = {
    "refuse": lambda: web.Response(status=403, text="no"),
    "garbage": lambda: web.Response(text="<html>login</html>", content_type="text/html"),
    "huge": lambda: web.Response(body=b'{"token": "' + b"a" * (1 << 20) + b'"}'),
    "no_token": lambda: web.json_response({"expires_in": 300}),
    "bad_token": lambda: web.json_response({"token": "abc\r\nX-Injected: 1"}),
}


@dataclass
class TokenRealm:
    registry: RunningRegistry
    # ``ok``; ``garbage`` (not JSON), ``huge`` (a megabyte), ``bad_token`` (a token that would
    # forge a header), ``no_token`` (JSON without one), ``expired`` (a token the registry
    # refuses), ``refuse`` (HTTP 403), ``hang`` (never answers)
    mode: str = "ok"
    username: str | None = None  # when set, basic credentials are required
    password: str | None = None
    expires_in: int | None = 300
    requests: list[dict[str, str]] = field(default_factory=list)

    async def token(self, request: web.Request) -> web.Response:
        self.requests.append(dict(request.query))
        if self.username is not None:
            wanted = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            if request.headers.get("Authorization") != f"Basic {wanted}":
                return web.Response(status=401, text="bad credentials")
        if request.query.get("service") != SERVICE:
            return web.Response(status=400, text="unknown service")
        if self.mode == "hang":
            await asyncio.sleep(3600)
        hostile = MISBEHAVIOURS.get(self.mode)
        if hostile is not None:
            return hostile()
        issuer = self.registry.issuer
        assert issuer is not None
        scope = request.query.get("scope", "")
        lifetime = -3600 if self.mode == "expired" else 300
        token = issuer.mint_for_scope(scope, lifetime, subject=self.username or "")
        answer: dict[str, object] = {"token": token}
        if self.expires_in is not None:
            answer["expires_in"] = self.expires_in
        return web.Response(body=json.dumps(answer).encode(), content_type="application/json")


@contextlib.asynccontextmanager
async def serving(realm: TokenRealm) -> AsyncIterator[TokenRealm]:
    """The realm on the port the registry's configuration names."""
    app = web.Application()
    app.router.add_get("/token", realm.token)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", realm.registry.realm_port)
    await site.start()
    try:
        yield realm
    finally:
        await runner.cleanup()
