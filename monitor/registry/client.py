"""An async client for one registry's HTTP API v2 (the OCI distribution spec), read-only:
tags, manifests and indexes, blobs, and what is attached to a digest.

Over ``RegistryTransport`` (``transport.py``: the log clients' HTTP policy and the registry's
authentication). A registry is hostile: every manifest and blob must hash to the digest asked
for (a manifest fetched by tag to the digest the registry claims, if it claims one), every
answer is capped, and paginated answers (tags, referrers) are bounded in pages and items and
may not loop.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from urllib.parse import quote

from monitor.core.errors import MalformedInputError, RegistryDigestError, RegistryError
from monitor.core.escape import escape
from monitor.core.imageref import (
    Repository,
    attestation_tag,
    fallback_tag,
    is_tag,
    signature_tag,
)
from monitor.core.jsonread import JsonReader
from monitor.registry.media import (
    MANIFEST_ACCEPT,
    Descriptor,
    Manifest,
    parse_index_descriptors,
    parse_manifest,
)
from monitor.registry.transport import (
    DEFAULT_HTTP,
    DEFAULT_POLICY,
    ERROR_BODY,
    NO_REFERRERS_API,
    RegistryPolicy,
    RegistryTransport,
)

__all__ = ["DEFAULT_HTTP", "DEFAULT_POLICY", "Attachments", "Referrers", "RegistryClient"]
__all__ += ["RegistryPolicy"]


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


class RegistryClient(RegistryTransport):
    """Reads one registry. ``registry`` is the host as named in references (``docker.io``
    is read at its API host); ``insecure_http`` (plain HTTP) is only for loopback."""

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
            first = len(seen_pages) == 1
            resp = await self._send(
                repo,
                path,
                what,
                max_bytes=self.policy.max_page_bytes,
                also=NO_REFERRERS_API if first else frozenset(),
            )
            if resp.status in NO_REFERRERS_API and first:
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
        where = f"{repo}:{fallback_tag(digest)}"
        if not index.is_index:
            raise RegistryError(self.registry, where, "fallback tag is not an index")
        if len(index.manifests) > self.policy.max_referrers:
            raise RegistryError(
                self.registry, where, f"more than {self.policy.max_referrers} referrers"
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


def _of_type(
    found: tuple[Descriptor, ...] | list[Descriptor], artifact_type: str | None
) -> tuple[Descriptor, ...]:
    if artifact_type is None:
        return tuple(found)
    return tuple(d for d in found if d.artifact_type == artifact_type)
