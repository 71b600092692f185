"""How the registry client talks to one registry: ``LogHttp`` (the log clients' rate limit,
retries, size caps and timeouts) with the registry's authentication, checked references,
bounded JSON, ``Link`` pages that stay on the repository, and digests checked."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import aiohttp

from monitor.core.errors import (
    LogResponseError,
    MalformedInputError,
    RegistryAuthError,
    RegistryDigestError,
    RegistryError,
)
from monitor.core.escape import escape
from monitor.core.imageref import Repository, check_digest, is_tag, parse_repository
from monitor.core.metrics import ClientMetrics
from monitor.logclient.decode import decode_json
from monitor.logclient.http import RETURNED, HttpPolicy, LogHttp, Response
from monitor.registry.auth import ANONYMOUS, Authenticator, Credentials

_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?', re.IGNORECASE)
DEFAULT_HTTP = HttpPolicy()
ERROR_BODY = 4096
# how registries without the referrers API answer it: 404 as the spec says; some older ones
# refuse the path instead (400, 405, 406, 501). Then the fallback tag is read.
NO_REFERRERS_API = frozenset({400, 404, 405, 406, 501})
_HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}


@dataclass(frozen=True)
class RegistryPolicy:
    """What one registry's answers may take, beyond the HTTP policy."""

    max_manifest_bytes: int = 4 << 20  # distribution's own limit on a manifest
    tag_page_size: int = 1000
    max_tag_pages: int = 100
    max_tags: int = 100_000
    max_page_bytes: int = 4 << 20  # a page of tags or referrers
    max_referrer_pages: int = 20
    max_referrers: int = 10_000
    max_index_children: int = 256
    max_blob_bytes: int = 16 << 20


DEFAULT_POLICY = RegistryPolicy()


class RegistryTransport:
    """Reads one registry. ``registry`` is the host as named in references (``docker.io``
    is read at its API host); ``insecure_http`` (plain HTTP) is only for loopback."""

    def __init__(
        self,
        repository: Repository,
        session: aiohttp.ClientSession,
        *,
        metrics: ClientMetrics,
        credentials: Credentials = ANONYMOUS,
        http_policy: HttpPolicy = DEFAULT_HTTP,
        policy: RegistryPolicy = DEFAULT_POLICY,
        insecure_http: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if insecure_http and not repository.is_loopback:
            raise RegistryError(
                repository.registry, str(repository), "plain HTTP is only for loopback"
            )
        self.registry = repository.registry
        self.policy = policy
        scheme = "http" if insecure_http else "https"
        self.base_url = f"{scheme}://{repository.api_host}"
        self._http = LogHttp(
            self.base_url, session, log=self.registry, metrics=metrics, policy=http_policy
        )
        self._auth = Authenticator(
            self.registry,
            session,
            api_host=repository.api_host,
            credentials=credentials,
            metrics=metrics,
            policy=http_policy,
            insecure_http=insecure_http,
            clock=clock,
        )

    async def _send(
        self,
        repo: Repository,
        path: str,
        what: str,
        *,
        accept: str | None = None,
        max_bytes: int | None = None,
        head: bool = False,
        off_host: bool = False,
        also: frozenset[int] = frozenset(),
    ) -> Response:
        """One request, answered once more after a 401 with the credentials the registry's
        challenge asks for. 200, 404 and ``also`` are returned; anything else raises."""
        scope = f"repository:{repo.name}:pull"
        headers = {"Accept": accept} if accept else {}
        auth = self._auth.header(scope)
        statuses = RETURNED | also | {401}
        for attempt in (1, 2):
            if auth:
                headers["Authorization"] = auth
            try:
                if head:
                    resp = await self._http.head(path, headers=headers, statuses=statuses)
                else:
                    resp = await self._http.get(
                        path,
                        headers=headers,
                        max_bytes=max_bytes,
                        statuses=statuses,
                        off_host=off_host,
                    )
            except LogResponseError as e:
                message = str(e).removeprefix(f"{self.registry}: ")
                kind = RegistryAuthError if e.status == 403 else RegistryError  # denied
                raise kind(self.registry, what, message) from None
            if resp.status != 401:
                return resp
            if attempt == 2:
                raise RegistryAuthError(
                    self.registry, what, "HTTP 401 again with the credentials it asked for"
                )
            auth = await self._auth.answer(
                resp.headers.get("WWW-Authenticate"), scope, what, headers.get("Authorization")
            )
        raise AssertionError("unreachable")

    async def _json(self, resp: Response, what: str) -> object:
        try:
            # bytes bound the values: a manifest of 4 MiB cannot hold more than 4M of them
            return await decode_json(resp.body, len(resp.body) + 1, what)
        except LogResponseError as e:
            raise RegistryError(self.registry, what, str(e).removeprefix(f"{what}: ")) from None

    def _next_page(self, resp: Response, path: str, repo: Repository, what: str) -> str | None:
        """The next page's path from the ``Link`` header: on this registry, under this
        repository's API path, or refused."""
        link = resp.headers.get("Link")
        if not link:
            return None
        m = _LINK.search(link)
        if not m:
            return None
        target = urljoin(urljoin(self.base_url, path), m.group(1))
        parts = urlsplit(target)
        if f"{parts.scheme}://{parts.netloc}" != self.base_url or not parts.path.startswith(
            f"/v2/{repo.name}/"
        ):
            shown = escape(target[:200])
            raise RegistryError(
                self.registry, what, f"refused a next page off the repository: {shown}"
            )
        query = f"?{parts.query}" if parts.query else ""
        return f"{parts.path}{query}"

    def _check_hash(self, body: bytes, digest: str, what: str) -> None:
        algorithm, _, want = digest.partition(":")
        got = _HASHES[algorithm](body).hexdigest()
        if got != want:
            raise RegistryDigestError(
                self.registry, what, f"bytes hash to {algorithm}:{got}, not {digest}"
            )

    def _digest(self, digest: str, what: str) -> str:
        try:
            return check_digest(digest)
        except MalformedInputError as e:
            raise RegistryError(self.registry, what, str(e)) from None

    def _own(self, repo: Repository) -> None:
        """``repo`` is on this registry and a name the grammar allows (it goes into paths)."""
        if repo.registry != self.registry:
            raise RegistryError(self.registry, str(repo), "belongs to another registry")
        try:
            valid = parse_repository(str(repo)) == repo
        except MalformedInputError:
            valid = False
        if not valid:
            raise RegistryError(self.registry, escape(str(repo)), "not a repository name")

    def _reference(self, repo: Repository, reference: str) -> str:
        """``repo`` and ``reference`` as messages name them, once ``reference`` is checked to
        be a tag or a digest (it goes into a path)."""
        if ":" in reference:
            what = f"{repo}@{reference}"
            self._digest(reference, what)
        else:
            what = f"{repo}:{escape(reference)}"
            if not is_tag(reference):
                raise RegistryError(self.registry, what, "not a tag or digest")
        return what
