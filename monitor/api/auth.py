"""Bearer tokens: configured by their SHA-256 with scopes (``read``, ``write``).

The presented token is hashed and compared with every configured hash in constant time, all
of them every time, so neither the answer's timing nor its content tells how close a guess
came or which token exists.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from monitor.api.errors import ApiError
from monitor.config.models import TokenSettings

REALM = 'Bearer realm="tlog-monitor"'


@dataclass(frozen=True)
class Principal:
    """Who made a request: a token's configured name and scopes."""

    name: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class _Token:
    digest: bytes
    principal: Principal


class Authenticator:
    def __init__(self, tokens: Sequence[TokenSettings]) -> None:
        self._tokens = tuple(
            _Token(t.digest(), Principal(t.name, frozenset(t.scopes))) for t in tokens
        )

    @property
    def configured(self) -> bool:
        return bool(self._tokens)

    def identify(self, token: str) -> Principal | None:
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        found = None
        for t in self._tokens:
            if hmac.compare_digest(digest, t.digest):
                found = t.principal  # no break: every comparison runs, every time
        return found

    def require(self, request: web.Request, scope: str) -> Principal:
        """The principal of ``request`` if it holds ``scope``; else a 401 or 403."""
        header = request.headers.get("Authorization")
        if header is None:
            raise ApiError(
                401,
                "unauthorized",
                "this endpoint needs a bearer token (Authorization: Bearer <token>)",
                headers={"WWW-Authenticate": REALM},
            )
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(
                401,
                "unauthorized",
                "the Authorization header must be: Bearer <token>",
                headers={"WWW-Authenticate": f'{REALM}, error="invalid_request"'},
            )
        principal = self.identify(token)
        if principal is None:
            raise ApiError(
                401,
                "invalid_token",
                "unknown token",
                headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
            )
        if scope not in principal.scopes:
            raise ApiError(
                403,
                "insufficient_scope",
                f"token {principal.name!r} lacks the {scope!r} scope",
                headers={
                    "WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{scope}"'
                },
            )
        return principal
