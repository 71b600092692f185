"""An async client for one registry's HTTP API v2 (the OCI distribution spec), read-only.

Over the log clients' ``LogHttp`` (rate limit, retries with ``Retry-After``, size caps,
timeouts, same-host redirects only), with the registry's authentication (``auth.py``). A
registry is hostile: every manifest and blob must hash to the digest asked for (a manifest
fetched by tag to the digest the registry claims, if it claims one), every answer is capped,
and paginated answers (tags, referrers) are bounded in pages and items and may not loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit

import aiohttp

from monitor.core.errors import (
    LogResponseError,
    MalformedInputError,
    RegistryAuthError,
    RegistryDigestError,
    RegistryError,
)
from monitor.core.escape import escape
from monitor.core.imageref import (
    Repository,
    attestation_tag,
    check_digest,
    fallback_tag,
    is_tag,
    parse_repository,
    signature_tag,
)
from monitor.core.jsonread import JsonReader
from monitor.core.metrics import ClientMetrics
from monitor.logclient.decode import decode_json
from monitor.logclient.http import RETURNED, HttpPolicy, LogHttp, Response
from monitor.registry.auth import ANONYMOUS, Authenticator, Credentials
from monitor.registry.media import (
    MANIFEST_ACCEPT,
    Descriptor,
    Manifest,
    parse_index_descriptors,
    parse_manifest,
)

_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?', re.IGNORECASE)
DEFAULT_HTTP = HttpPolicy()
ERROR_BODY = 4096
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


@dataclass(frozen=True)
class Referrers:
    """What refers to a digest: through the referrers API (``source="api"``), its fallback
    tag (``"fallback"``), or nothing found (``"none"``)."""

    subject: str
    descriptors: tuple[Descriptor, ...]
    source: str


@dataclass(frozen=True)
class Attachments:
    """Everything attached to one digest: its referrers and cosign's legacy ``.sig`` and
    ``.att`` manifests (None when the tag is absent). A legacy manifest's ``layers`` carry the
    signatures as data: media type, digest, size, annotations."""

    digest: str
    referrers: Referrers
    signatures: Manifest | None
    attestations: Manifest | None


DEFAULT_POLICY = RegistryPolicy()


class RegistryClient:
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
            credentials=credentials,
            metrics=metrics,
            policy=http_policy,
            insecure_http=insecure_http,
            clock=clock,
        )

    # -- tags --------------------------------------------------------------------------

    async def tags(self, repo: Repository) -> list[str]:
        """Every tag of ``repo``, across pages (``n``, then the ``Link`` header), deduplicated
        in the order served; bounded in pages and tags, and a page seen twice is a loop."""
        self._own(repo)
        what = f"{repo} (tags)"
        path: str | None = f"/v2/{repo.name}/tags/list?n={self.policy.tag_page_size}"
        seen_pages: set[str] = set()
        tags: dict[str, None] = {}
        while path is not None:
            if path in seen_pages:
                raise RegistryError(self.registry, what, "tag list pagination loops")
            seen_pages.add(path)
            if len(seen_pages) > self.policy.max_tag_pages:
                raise RegistryError(
                    self.registry, what, f"more than {self.policy.max_tag_pages} pages of tags"
                )
            resp = await self._send(repo, path, what, max_bytes=self.policy.max_page_bytes)
            if resp.status == 404:
                raise RegistryError(self.registry, what, "no such repository (HTTP 404)")
            for tag in self._page_of_tags(await self._json(resp, what), what):
                tags[tag] = None
            if len(tags) > self.policy.max_tags:
                raise RegistryError(self.registry, what, f"more than {self.policy.max_tags} tags")
            path = self._next_page(resp, path, repo, what)
        return list(tags)

    def _page_of_tags(self, data: object, what: str) -> list[str]:
        doc = JsonReader(data, "")
        try:
            page = doc.opt("tags")  # distribution answers null for a repository without tags
            found = [item.str() for item in page.items()] if page is not None else []
        except MalformedInputError as e:
            raise RegistryError(self.registry, what, f"malformed tag list: {e}") from None
        for tag in found:
            if not is_tag(tag):
                raise RegistryError(self.registry, what, f"bad tag {tag[:140]!r}")
        return found

    # -- manifests ---------------------------------------------------------------------

    async def manifest(self, repo: Repository, reference: str) -> Manifest | None:
        """The manifest or index at ``reference`` (a tag or a digest), or None if absent.
        Its bytes hash to the digest asked for (by digest) or claimed in
        ``Docker-Content-Digest`` (by tag; sha256 of the bytes when nothing is claimed)."""
        self._own(repo)
        by_digest = ":" in reference
        what = self._reference(repo, reference)
        resp = await self._send(
            repo,
            f"/v2/{repo.name}/manifests/{reference}",
            what,
            accept=MANIFEST_ACCEPT,
            max_bytes=self.policy.max_manifest_bytes,
        )
        if resp.status == 404:
            return None
        claimed = resp.headers.get("Docker-Content-Digest")
        if by_digest:
            expected = reference
        elif claimed:
            expected = self._digest(claimed, what)
        else:
            expected = "sha256:" + hashlib.sha256(resp.body).hexdigest()
        self._check_hash(resp.body, expected, what)
        if by_digest and claimed and claimed != reference:
            raise RegistryDigestError(
                self.registry, what, f"served with Docker-Content-Digest {escape(claimed[:140])}"
            )
        data = await self._json(resp, what)
        try:
            return parse_manifest(data, resp.body, expected, resp.headers.get("Content-Type"))
        except MalformedInputError as e:
            raise RegistryError(self.registry, what, f"malformed manifest: {e}") from None

    async def head(self, repo: Repository, reference: str) -> str | None:
        """The digest the registry claims for ``reference`` (HEAD, no body), or None if
        absent. A claim only, unchecked: cheap polling of a tag, never evidence."""
        self._own(repo)
        what = self._reference(repo, reference)
        resp = await self._send(
            repo, f"/v2/{repo.name}/manifests/{reference}", what, accept=MANIFEST_ACCEPT, head=True
        )
        if resp.status == 404:
            return None
        claimed = resp.headers.get("Docker-Content-Digest")
        if not claimed:
            raise RegistryError(self.registry, what, "HEAD answer without Docker-Content-Digest")
        return self._digest(claimed, what)

    async def platforms(self, repo: Repository, index: Manifest) -> list[Manifest]:
        """The manifests an index points to, each fetched by digest (and checked); an index's
        platform of each is on its descriptor in ``index.manifests``."""
        what = f"{repo}@{index.digest}"
        if not index.is_index:
            raise RegistryError(self.registry, what, "is not an index")
        if len(index.manifests) > self.policy.max_index_children:
            raise RegistryError(
                self.registry, what, f"index of more than {self.policy.max_index_children}"
            )
        children = []
        for d in index.manifests:
            child = await self.manifest(repo, d.digest)
            if child is None:
                raise RegistryError(self.registry, what, f"index child {d.digest} is missing")
            children.append(child)
        return children

    # -- blobs -------------------------------------------------------------------------

    async def blob(
        self, repo: Repository, descriptor: Descriptor, max_bytes: int | None = None
    ) -> bytes:
        """A blob's bytes, at most ``max_bytes`` (the policy's ``max_blob_bytes`` if None),
        checked against the descriptor's digest and size."""
        self._own(repo)
        what = f"{repo}@{descriptor.digest}"
        self._digest(descriptor.digest, what)
        cap = self.policy.max_blob_bytes if max_bytes is None else max_bytes
        if descriptor.size > cap:
            raise RegistryError(
                self.registry, what, f"blob of {descriptor.size} bytes exceeds {cap}"
            )
        # no more than the descriptor names, or a short error body (a 404's) past it
        resp = await self._send(
            repo,
            f"/v2/{repo.name}/blobs/{descriptor.digest}",
            what,
            max_bytes=max(descriptor.size, ERROR_BODY),
            off_host=True,  # registries serve blobs from a CDN; the digest is checked below
        )
        if resp.status == 404:
            raise RegistryError(self.registry, what, "blob not found (HTTP 404)")
        if len(resp.body) != descriptor.size:
            raise RegistryDigestError(
                self.registry, what, f"{len(resp.body)} bytes, not the {descriptor.size} named"
            )
        self._check_hash(resp.body, descriptor.digest, what)
        return resp.body

    # -- what is attached to a digest --------------------------------------------------

    async def referrers(
        self, repo: Repository, digest: str, artifact_type: str | None = None
    ) -> Referrers:
        """The manifests whose ``subject`` is ``digest``: the OCI 1.1 referrers API, or its
        fallback tag ``sha256-<hex>`` (an index) when the API answers 404. Filtered by
        ``artifact_type`` here too, whether or not the registry applied the filter."""
        self._own(repo)
        what = f"{repo}@{digest} (referrers)"
        self._digest(digest, what)
        path: str | None = f"/v2/{repo.name}/referrers/{digest}"
        if artifact_type:
            path = f"{path}?artifactType={quote(artifact_type, safe='')}"
        found: list[Descriptor] = []
        seen_pages: set[str] = set()
        while path is not None:
            if path in seen_pages:
                raise RegistryError(self.registry, what, "referrers pagination loops")
            seen_pages.add(path)
            if len(seen_pages) > self.policy.max_referrer_pages:
                raise RegistryError(
                    self.registry, what, f"more than {self.policy.max_referrer_pages} pages"
                )
            resp = await self._send(repo, path, what, max_bytes=self.policy.max_page_bytes)
            if resp.status == 404 and not found and len(seen_pages) == 1:
                return await self._fallback(repo, digest, artifact_type)
            if resp.status == 404:
                raise RegistryError(self.registry, what, "a later page answered 404")
            try:
                found.extend(parse_index_descriptors(await self._json(resp, what)))
            except MalformedInputError as e:
                raise RegistryError(self.registry, what, f"malformed referrers: {e}") from None
            if len(found) > self.policy.max_referrers:
                raise RegistryError(
                    self.registry, what, f"more than {self.policy.max_referrers} referrers"
                )
            path = self._next_page(resp, path, repo, what)
        return Referrers(digest, _of_type(found, artifact_type), "api")

    async def _fallback(
        self, repo: Repository, digest: str, artifact_type: str | None
    ) -> Referrers:
        index = await self.manifest(repo, fallback_tag(digest))
        if index is None:
            return Referrers(digest, (), "none")
        if not index.is_index:
            raise RegistryError(
                self.registry, f"{repo}:{fallback_tag(digest)}", "fallback tag is not an index"
            )
        return Referrers(digest, _of_type(index.manifests, artifact_type), "fallback")

    async def legacy_signatures(self, repo: Repository, digest: str) -> Manifest | None:
        """cosign's ``sha256-<hex>.sig`` manifest of ``digest``, or None."""
        return await self.manifest(repo, signature_tag(self._digest(digest, str(repo))))

    async def legacy_attestations(self, repo: Repository, digest: str) -> Manifest | None:
        """cosign's ``sha256-<hex>.att`` manifest of ``digest``, or None."""
        return await self.manifest(repo, attestation_tag(self._digest(digest, str(repo))))

    async def attachments(
        self, repo: Repository, digest: str, artifact_type: str | None = None
    ) -> Attachments:
        """Referrers (of ``artifact_type``, if given), ``.sig`` and ``.att`` of ``digest``."""
        referrers, sig, att = await asyncio.gather(
            self.referrers(repo, digest, artifact_type),
            self.legacy_signatures(repo, digest),
            self.legacy_attestations(repo, digest),
        )
        return Attachments(digest, referrers, sig, att)

    # -- plumbing ----------------------------------------------------------------------

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
    ) -> Response:
        """One request, answered once more after a 401 with the credentials the registry's
        challenge asks for. 200 and 404 are returned; anything else raises."""
        scope = f"repository:{repo.name}:pull"
        headers = {"Accept": accept} if accept else {}
        auth = self._auth.header(scope)
        statuses = RETURNED | {401}
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
                raise RegistryError(self.registry, what, message) from None
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


def _of_type(
    found: tuple[Descriptor, ...] | list[Descriptor], artifact_type: str | None
) -> tuple[Descriptor, ...]:
    if artifact_type is None:
        return tuple(found)
    return tuple(d for d in found if d.artifact_type == artifact_type)
