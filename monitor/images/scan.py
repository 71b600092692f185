"""Checking images: one reference (a tag or a digest, an index with its platforms) or a whole
watched repository (its tags filtered by the configured globs, never the tags that hold
signatures). A platform manifest of an index carries the index's signatures too: a signature
on an index covers its platforms. One digest that cannot be checked is a report with an
error; it does not stop the others."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime

from monitor.config.images import ImageSettings
from monitor.core.errors import MonitorError, RegistryError
from monitor.core.imageref import ImageReference, Repository, match_tags
from monitor.images.checker import ImageChecker
from monitor.images.reports import DigestReport, RepositoryScan, SignatureReport
from monitor.imagesig import Expectation, Require
from monitor.registry.client import RegistryClient
from monitor.registry.media import Manifest

CONCURRENCY = 4  # tags or digests checked at once in one repository


def expectation_of(image: ImageSettings) -> Expectation:
    """What the configured entry expects of every image."""
    return Expectation(image.expect, Require(image.require))


async def check_reference(
    ref: ImageReference, client: RegistryClient, checker: ImageChecker, expectation: Expectation
) -> list[DigestReport]:
    """The reference's manifest (by digest, when it names one), and for an index each of its
    platforms. Raises ``RegistryError`` when the registry has no such manifest or cannot be
    read at all."""
    manifest = await client.manifest(ref.repository, ref.reference)
    if manifest is None:
        raise RegistryError(ref.repository.registry, str(ref), "no such manifest (HTTP 404)")
    tags = (ref.tag,) if ref.tag and not ref.digest else ()
    return await _Check(ref.repository, client, checker, expectation).manifest(manifest, tags)


async def scan_repository(
    image: ImageSettings, client: RegistryClient, checker: ImageChecker
) -> RepositoryScan:
    """Every watched tag of ``image`` read, and every digest they point at checked, with
    ``CONCURRENCY`` at once. ``complete`` only when every tag was read and every digest
    checked."""
    started = datetime.now(UTC)
    repo = image.repo
    check = _Check(repo, client, checker, expectation_of(image))
    try:
        tags = match_tags(await client.tags(repo), image.tags)
    except MonitorError as e:
        return RepositoryScan(image.repository, started, datetime.now(UTC), False, (), str(e))
    limit = asyncio.Semaphore(CONCURRENCY)

    async def read(tag: str) -> Manifest | None:
        async with limit:
            got = await client.manifest(repo, tag)
        # its bytes were checked against its digest: what is kept of thousands of tags is
        # what was read from them, not megabytes each
        return None if got is None else dataclasses.replace(got, raw=b"")

    manifests = await asyncio.gather(*(read(t) for t in tags), return_exceptions=True)
    by_digest: dict[str, tuple[Manifest, list[str]]] = {}
    problems: list[str] = []
    for tag, got in zip(tags, manifests, strict=True):
        if isinstance(got, MonitorError):
            problems.append(f"{tag}: {got}")
        elif isinstance(got, BaseException):
            raise got
        elif got is None:
            problems.append(f"{tag}: gone since the tag list was read")
        else:
            by_digest.setdefault(got.digest, (got, []))[1].append(tag)

    async def one(manifest: Manifest, tags: list[str]) -> list[DigestReport]:
        async with limit:
            return await check.manifest(manifest, tuple(tags))

    checked = await asyncio.gather(*(one(m, t) for m, t in by_digest.values()))
    reports = tuple(r for group in checked for r in group)
    complete = not problems and all(r.error is None for r in reports)
    error = "; ".join(problems)[:2000] or None
    return RepositoryScan(image.repository, started, datetime.now(UTC), complete, reports, error)


@dataclass(frozen=True)
class _Check:
    repo: Repository
    client: RegistryClient
    checker: ImageChecker
    expectation: Expectation

    async def manifest(self, manifest: Manifest, tags: tuple[str, ...]) -> list[DigestReport]:
        """The manifest's report; for an index, its own and one per platform. Errors become
        reports with ``error`` set."""
        own = await self.digest(manifest.digest, tags)
        if not manifest.is_index:
            return [own]
        try:
            children = await self.client.platforms(self.repo, manifest)
        except MonitorError as e:
            # a report about the index's platforms, which could not be read
            problem = f"the platforms of index {manifest.digest}: {e}"
            return [own, self.failed(manifest.digest, (), problem, index_digest=manifest.digest)]
        platform_of = {d.digest: d.platform for d in manifest.manifests}
        out = [own]
        for child in children:
            platform = platform_of.get(child.digest)
            out.append(
                await self.digest(
                    child.digest,
                    (),
                    index_digest=manifest.digest,
                    platform=str(platform) if platform else None,
                    inherited=own.signatures,
                )
            )
        return out

    async def digest(
        self,
        digest: str,
        tags: tuple[str, ...],
        *,
        index_digest: str | None = None,
        platform: str | None = None,
        inherited: tuple[SignatureReport, ...] = (),
    ) -> DigestReport:
        try:
            signatures = (*await self.checker.check(self.client, self.repo, digest), *inherited)
        except MonitorError as e:
            return self.failed(digest, tags, str(e), index_digest=index_digest, platform=platform)
        judgment = self.expectation.judge(digest, (s.verdict for s in signatures))
        repo = str(self.repo)
        return DigestReport(repo, tags, digest, index_digest, platform, signatures, judgment)

    def failed(
        self,
        digest: str,
        tags: tuple[str, ...],
        error: str,
        *,
        index_digest: str | None = None,
        platform: str | None = None,
    ) -> DigestReport:
        judgment = self.expectation.judge(digest, ())
        repo = str(self.repo)
        return DigestReport(repo, tags, digest, index_digest, platform, (), judgment, error)
