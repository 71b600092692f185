"""Watched container images, on each repository's ``poll_interval``: a registry pass
(``monitor.images.scan_repository``) recorded in the store, and the findings it means.

- ``unsigned_image``: a digest a watched tag points at has no valid signature (or
  attestation, as ``require`` says) from an expected signer, once ``grace`` has passed since
  the monitor first saw it. Platform manifests of an index raise none of their own: the tag
  points at the index, and a signature on the index covers them.
- ``unexpected_signer``: a valid signature or attestation by a signer ``expect`` does not
  accept; ``invalid_signature``: one that fails verification, with the reason; both keyed by
  the digest the artifact signs, so an index's signature is one finding, not one per platform.
- ``tlog_mismatch`` (critical): the log holds another body at the index a signature names.
- ``orphan_signature`` (rules with ``orphans``): an entry of the rule that no registry
  signature is tied to, once its grace is over and a complete pass of every watched
  repository began after the entry was stored.

A pass that could not read a digest records it as ``unknown`` and raises nothing for it: an
unreachable registry is not an unsigned image. With several replicas, the replica leading the
first log (by name) watches the images, so that each registry is read once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client.core import GaugeMetricFamily

from monitor.alerts.routing import Routing
from monitor.config.durations import format_duration
from monitor.config.images import ImageSettings
from monitor.config.models import Settings
from monitor.core.errors import CheckpointError, MonitorError
from monitor.core.findings import (
    Finding,
    FindingImage,
    FindingKind,
    Severity,
    dedup_key,
)
from monitor.core.metrics import PREFIX, ClientMetrics
from monitor.daemon.source import LogSource
from monitor.images import (
    DigestReport,
    ImageChecker,
    Ours,
    RepositoryScan,
    SignatureReport,
    scan_repository,
    status_of,
)
from monitor.images.reports import mismatches, undecided
from monitor.images.setup import build_checker, load_image_trust
from monitor.imagesig import Role, Verdict
from monitor.registry.client import RegistryClient
from monitor.registry.setup import client_for
from monitor.storage import (
    ImageDigestRecord,
    ImageScanRecord,
    ImageSignatureRecord,
)
from monitor.storage.logs_state import LogState
from monitor.storage.ports import HealthStore, ImageStore
from monitor.tlog.checkpoint import SignedCheckpoint

__all__ = [
    "ImageCollector",
    "ImageWatch",
    "findings_of_scan",
    "image_watch_of",
    "ours_from",
    "scan_record",
]

if TYPE_CHECKING:
    from monitor.daemon.service import Monitor

log = logging.getLogger("monitor.images")

PAGE = 1000  # digests read back per page for their first-seen times


class WatchStore(ImageStore, HealthStore, Protocol):
    """What the image watch writes and reads."""

    async def log_state(self, name: str) -> LogState | None: ...


def _sans(v: Verdict) -> str | None:
    if v.signer is None or not v.signer.sans:
        return None
    return v.signer.sans[0].value


def _signature_record(s: SignatureReport) -> ImageSignatureRecord | None:
    tie, v = s.tie, s.verdict
    if tie is None:
        return None
    return ImageSignatureRecord(
        log=tie.log,
        log_index=tie.index,
        body_sha256=tie.body_sha256,
        role="attestation" if v.role is Role.ATTESTATION else "signature",
        status=str(v.status),
        signer=_sans(v),
        issuer=None if v.signer is None else v.signer.issuer,
        tie=tie.status,
        detail=tie.detail,
    )


def scan_record(scan: RepositoryScan) -> ImageScanRecord:
    """What the store keeps of a pass."""
    digests = []
    for r in scan.reports:
        sigs = tuple(x for x in (_signature_record(s) for s in r.signatures) if x is not None)
        summary: dict[str, Any] = {
            "signers": sorted({s for s in (_sans(v) for v in r.judgment.expected) if s}),
            "unexpected": sorted({s for s in (_sans(v) for v in r.judgment.unexpected) if s}),
            "invalid": [v.reason[:300] for v in r.judgment.invalid],
            "missing": [str(m) for m in r.judgment.missing],
        }
        if r.error is not None:
            summary = {"error": r.error[:500]}
        digests.append(
            ImageDigestRecord(
                digest=r.digest,
                status=status_of(r),
                tags=r.tags,
                index_digest=r.index_digest,
                platform=r.platform,
                summary=summary,
                signatures=sigs,
            )
        )
    return ImageScanRecord(
        repository=scan.repository,
        started_at=scan.started_at,
        finished_at=scan.finished_at,
        complete=scan.complete,
        digests=tuple(digests),
        error=scan.error,
    )


def _image(r: DigestReport, digest: str | None = None) -> FindingImage:
    return FindingImage(r.repository, r.tags[0] if r.tags else None, digest or r.digest)


def findings_of_scan(
    image: ImageSettings,
    scan: RepositoryScan,
    first_seen: dict[str, datetime],
    now: datetime,
) -> list[Finding]:
    """The findings a pass means, the grace period applied to unsigned digests."""
    out: dict[str, Finding] = {}
    for r in scan.reports:
        if r.error is not None:
            continue
        for f in _signature_findings(image, r):
            out.setdefault(f.dedup_key, f)
        if r.tags and r.judgment.missing and not undecided(r):
            seen = first_seen.get(r.digest, now)
            if now - seen >= image.grace:
                f = _unsigned(image, r, seen)
                out.setdefault(f.dedup_key, f)
    return list(out.values())


def _signature_findings(image: ImageSettings, r: DigestReport) -> Iterable[Finding]:
    for v in r.judgment.unexpected:
        who = _sans(v) or "a signer"
        yield Finding(
            kind=FindingKind.UNEXPECTED_SIGNER,
            severity=image.severity,
            dedup_key=dedup_key(
                FindingKind.UNEXPECTED_SIGNER, r.repository, v.image_digest, who, v.source
            ),
            matched=(("san", who),),
            detail=f"{r.repository}@{v.image_digest}: a valid {v.role or 'signature'} by "
            f"{who}, whom this repository's expect does not accept ({v.source})",
            image=_image(r, v.image_digest),
        )
    for v in r.judgment.invalid:
        yield Finding(
            kind=FindingKind.INVALID_SIGNATURE,
            severity=image.severity,
            # not the reason's text: a library's new wording must not raise it again
            dedup_key=dedup_key(
                FindingKind.INVALID_SIGNATURE, r.repository, v.image_digest, v.source
            ),
            detail=f"{r.repository}@{v.image_digest}: {v.source}: {v.reason}",
            image=_image(r, v.image_digest),
        )
    for s in mismatches(r):
        tie = s.tie
        assert tie is not None  # mismatches are tied
        yield Finding(
            kind=FindingKind.TLOG_MISMATCH,
            severity=Severity.CRITICAL,
            dedup_key=dedup_key(
                FindingKind.TLOG_MISMATCH, r.repository, tie.log, tie.index, tie.body_sha256
            ),
            log=tie.log,
            index=tie.index,
            detail=f"{r.repository}@{s.verdict.image_digest}: {s.verdict.source} names log "
            f"entry {tie.index} with body sha256:{tie.body_sha256}, but {tie.detail}",
            image=_image(r, s.verdict.image_digest),
        )


def _unsigned(image: ImageSettings, r: DigestReport, seen: datetime) -> Finding:
    wanted = " and ".join(str(m) for m in r.judgment.missing)
    others = ""
    if r.judgment.unexpected or r.judgment.invalid:
        others = (
            f" ({len(r.judgment.unexpected)} by unexpected signers, "
            f"{len(r.judgment.invalid)} invalid)"
        )
    tag = ", ".join(r.tags)
    return Finding(
        kind=FindingKind.UNSIGNED_IMAGE,
        severity=image.severity,
        dedup_key=dedup_key(FindingKind.UNSIGNED_IMAGE, r.repository, r.digest),
        detail=f"{r.repository}:{tag} points at {r.digest}, which has no valid {wanted} from "
        f"an expected signer{others}, first seen {seen.isoformat()}",
        image=_image(r),
    )


class _Runner(Protocol):
    @property
    def source(self) -> LogSource: ...


def ours_from(runners: Mapping[str, _Runner], store: WatchStore) -> Ours:
    """The monitor's latest verified checkpoint of a log, as stored, checked again with the
    log's key (None: none yet, or the log is not tailed here)."""

    async def ours(name: str) -> SignedCheckpoint | None:
        runner = runners.get(name)
        state = await store.log_state(name)
        if runner is None or state is None or state.verified_checkpoint is None:
            return None
        try:
            return runner.source.other_view(state.verified_checkpoint.encode()).head
        except CheckpointError:
            return None

    return ours


def image_watch_of(m: Monitor) -> ImageWatch | None:
    """The image watch of a monitor with ``images:`` (None without). With several replicas,
    the leader of the first log watches the images."""
    if not m.settings.images:
        return None
    return ImageWatch(
        m.settings,
        m.store,
        m.routing,
        m.session,
        metrics=m.client_metrics,
        ours=ours_from(m.runners, m.store),
        leads=lambda: not m.runners or m.lead.leads(min(m.runners)),
    )


class ImageWatch:
    """The registry passes of a monitor's ``images:``, and the orphan check of its rules."""

    def __init__(
        self,
        settings: Settings,
        store: WatchStore,
        routing: Routing,
        session: aiohttp.ClientSession,
        *,
        metrics: ClientMetrics,
        ours: Ours,
        leads: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.routing = routing
        self.session = session
        self.metrics = metrics
        self.ours = ours
        self.leads = leads
        self.clock = clock
        self._checker: ImageChecker | None = None
        self._clients: dict[str, RegistryClient] = {}
        self.started = clock()  # before any complete pass, ages count from here
        # by repository: when its last complete pass ended, and its digests by status
        self.passes: dict[str, tuple[float, dict[str, int]]] = {}

    def reset(self) -> None:
        """Build the checker afresh at the next pass (the trust root changed)."""
        self._checker = None

    async def checker(self) -> ImageChecker:
        if self._checker is None:
            trust = await asyncio.to_thread(load_image_trust, self.settings)
            self._checker = build_checker(
                self.settings, trust, self.session, metrics=self.metrics, ours=self.ours
            )
        return self._checker

    def jobs(self) -> list[tuple[str, float, Callable[[], Awaitable[None]]]]:
        """(job id, interval in seconds, what to run) for the scheduler."""
        out: list[tuple[str, float, Callable[[], Awaitable[None]]]] = []
        for image in self.settings.images:

            async def one(image: ImageSettings = image) -> None:
                if self.leads():
                    await self.scan(image)

            out.append((f"images {image.repository}", image.poll_interval.total_seconds(), one))
        if any(rule.orphans is not None for rule in self.settings.watch):

            async def orphans() -> None:
                if self.leads():
                    await self.orphans()

            every = min(i.poll_interval.total_seconds() for i in self.settings.images)
            out.append(("images orphans", every, orphans))
        return out

    def schedule(
        self,
        scheduler: AsyncIOScheduler,
        wrap: Callable[[Callable[[], Awaitable[None]]], Callable[[], Awaitable[None]]],
    ) -> None:
        """Add the passes and the orphan check to ``scheduler``, each run through ``wrap``
        (the daemon's job guard), the first at once."""
        for job_id, every, job in self.jobs():
            scheduler.add_job(
                wrap(job),
                "interval",
                seconds=every,
                id=job_id,
                coalesce=True,
                max_instances=1,
                next_run_time=datetime.now(UTC),
            )

    async def scan(self, image: ImageSettings) -> RepositoryScan | None:
        """One pass of ``image``'s repository: recorded, its findings stored."""
        try:
            # one client per repository for the daemon's life: its tokens and its rate limit
            # carry from one pass to the next
            client = self._clients.get(image.repository)
            if client is None:
                client = client_for(image, self.session, metrics=self.metrics)
                self._clients[image.repository] = client
            scan = await scan_repository(image, client, await self.checker())
            await self.store.record_image_scan(scan_record(scan))
            first = await self._first_seen(image.repository)
            now = datetime.fromtimestamp(self.clock(), UTC)
            findings = findings_of_scan(image, scan, first, now)
            if findings:
                await self.store.store_findings(findings, outbox=self.routing.outbox(findings))
            if scan.complete:
                counts: dict[str, int] = {}
                for r in scan.reports:
                    counts[status_of(r)] = counts.get(status_of(r), 0) + 1
                self.passes[image.repository] = (self.clock(), counts)
        except MonitorError as e:
            log.warning(
                "image pass failed: %s", e, extra={"fields": {"repository": image.repository}}
            )
            return None
        log.info(
            "image pass",
            extra={
                "fields": {
                    "repository": image.repository,
                    "digests": len(scan.reports),
                    "complete": scan.complete,
                    "findings": len(findings),
                }
            },
        )
        return scan

    async def _first_seen(self, repository: str) -> dict[str, datetime]:
        out: dict[str, datetime] = {}
        cursor = None
        while True:
            page = await self.store.image_digests(repository, PAGE, cursor)
            for d in page.items:
                known = out.get(d.digest)
                out[d.digest] = d.first_seen if known is None else min(known, d.first_seen)
            cursor = page.next_cursor
            if cursor is None:
                return out

    async def orphans(self) -> list[Finding]:
        """``orphan_signature`` findings of the rules that ask for them."""
        scans = [await self.store.last_complete_scan(i.repository) for i in self.settings.images]
        if not scans or any(s is None for s in scans):
            return []  # the grace ends only after a complete pass of every repository
        last = min(s for s in scans if s is not None)
        now = datetime.fromtimestamp(self.clock(), UTC)
        found: list[Finding] = []
        for rule in self.settings.watch:
            if rule.orphans is None:
                continue
            before = min(now - rule.orphans.grace, last)
            for log_name, index in await self.store.unlinked_entries(rule.name, before):
                found.append(_orphan(rule.name, rule.severity, log_name, index, rule.orphans.grace))
        if found:
            await self.store.store_findings(found, outbox=self.routing.outbox(found))
        return found


def _orphan(rule: str, severity: Severity, log_name: str, index: int, grace: timedelta) -> Finding:
    return Finding(
        kind=FindingKind.ORPHAN_SIGNATURE,
        severity=severity,
        dedup_key=dedup_key(FindingKind.ORPHAN_SIGNATURE, rule, log_name, index),
        rule=rule,
        log=log_name,
        index=index,
        detail=f"entry {index} of {log_name}, signed as rule {rule} watches, is tied to no "
        f"signature in the watched registries {format_duration(grace)} after it was stored and "
        "after a complete pass of each: something was signed with this identity and never "
        "shipped as an image we watch",
    )


class ImageCollector:
    """Each watched repository's last complete pass, read at scrape time: a registry that
    cannot be read any more shows as a growing age, not only in the logs."""

    STATUSES = ("signed", "unsigned", "unexpected", "invalid", "unknown")

    def __init__(self, watch: Callable[[], ImageWatch | None]) -> None:
        self.watch = watch

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return self._families()

    def collect(self) -> Iterable[GaugeMetricFamily]:
        age, digests = self._families()
        watch = self.watch()
        if watch is None:
            return [age, digests]
        now = watch.clock()
        for image in watch.settings.images:
            repo = image.repository
            at, counts = watch.passes.get(repo, (watch.started, {}))
            age.add_metric([repo], max(0.0, now - at))
            for status in self.STATUSES:
                if repo in watch.passes:
                    digests.add_metric([repo, status], counts.get(status, 0))
        return [age, digests]

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                f"{PREFIX}_image_pass_age_seconds",
                "Seconds since the repository's last complete registry pass ended (or since "
                "the monitor started, if none yet).",
                labels=["repository"],
            ),
            GaugeMetricFamily(
                f"{PREFIX}_image_digests",
                "The digests of the repository's last complete pass, by status (signed, "
                "unsigned, unexpected, invalid, unknown).",
                labels=["repository", "status"],
            ),
        )
