"""What checking an image finds, as frozen data: each signature's verdict and its log entry
tied to the log the monitor verifies, each digest's judgment, a repository's pass. Also the
status and findings a digest report means, and its JSON (the stable shape ``images check
--json`` prints and the daemon can store)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from monitor.imagesig import Judgment, Status, Verdict

# unvouched: the log holds another body, but nothing the log signed says it ever held the
# one named (an unverified claim of the registry's: no tlog_mismatch)
TieStatus = Literal["proven", "mismatch", "unavailable", "unknown_log", "unvouched"]
DigestStatus = Literal["signed", "unsigned", "unexpected", "invalid", "unknown"]


@dataclass(frozen=True)
class LogTie:
    """One signature's log entry, tied to the log the monitor verifies."""

    log: str | None  # the configured log's name (None: no configured log holds it)
    index: int  # global log index
    body_sha256: str  # hex SHA-256 of the canonicalized body the signature names
    status: TieStatus
    detail: str  # why, e.g. "the log holds another body at 123: sha256:..."
    log_body_sha256: str | None = None  # what the log holds there, when it was read


@dataclass(frozen=True)
class SignatureReport:
    verdict: Verdict
    tie: LogTie | None  # None: the verdict names no log entry


@dataclass(frozen=True)
class DigestReport:
    """One manifest (or index) checked. ``error`` set: it could not be checked, and
    ``judgment`` (of no verdicts) means nothing."""

    repository: str  # normalised, as ImageSettings.repository
    tags: tuple[str, ...]  # the watched tags pointing at it (empty: asked by digest)
    digest: str  # sha256:<hex> of the manifest (or index)
    index_digest: str | None  # the index it is a platform of (whose signatures cover it)
    platform: str | None  # "linux/amd64" etc. for a platform manifest
    signatures: tuple[SignatureReport, ...]  # its own and (for a platform) its index's
    judgment: Judgment
    error: str | None = None


@dataclass(frozen=True)
class RepositoryScan:
    repository: str
    started_at: datetime
    finished_at: datetime
    complete: bool  # every watched tag was read and checked
    reports: tuple[DigestReport, ...]
    error: str | None = None


def mismatches(report: DigestReport) -> tuple[SignatureReport, ...]:
    """The signatures whose log entry the log holds otherwise (``tlog_mismatch``)."""
    return tuple(s for s in report.signatures if s.tie is not None and s.tie.status == "mismatch")


def undecided(report: DigestReport) -> bool:
    """Whether what ``require`` misses may be the log's fault, not the image's: a signature
    left unproven because its log could not be read now. Such a digest is ``unknown``, never
    unsigned: a log outage must not turn every legacy-signed image into a finding."""
    return any(
        s.verdict.status is Status.UNPROVEN and s.tie is not None and s.tie.status == "unavailable"
        for s in report.signatures
    )


def findings_of(report: DigestReport) -> tuple[str, ...]:
    """The finding kinds this report means, no grace applied: ``unsigned_image``,
    ``unexpected_signer``, ``invalid_signature``, ``tlog_mismatch``; none when it could not
    be checked."""
    if report.error is not None:
        return ()
    j = report.judgment
    out = []
    if j.missing and not undecided(report):
        out.append("unsigned_image")
    if j.unexpected:
        out.append("unexpected_signer")
    if j.invalid:
        out.append("invalid_signature")
    if mismatches(report):
        out.append("tlog_mismatch")
    return tuple(out)


def status_of(report: DigestReport) -> DigestStatus:
    """One word for the digest: ``signed`` (what ``require`` asks, from an expected
    signer), else ``unexpected`` (only others signed), ``invalid`` (only failing
    signatures), ``unsigned``; ``unknown`` when it could not be checked."""
    if report.error is not None:
        return "unknown"
    j = report.judgment
    if not j.missing:
        return "signed"
    if undecided(report):
        return "unknown"
    if j.unexpected:
        return "unexpected"
    if j.invalid:
        return "invalid"
    return "unsigned"


def tie_json(tie: LogTie | None) -> dict[str, Any] | None:
    if tie is None:
        return None
    return {
        "log": tie.log,
        "index": tie.index,
        "body_sha256": tie.body_sha256,
        "status": tie.status,
        "detail": tie.detail,
        "log_body_sha256": tie.log_body_sha256,
    }


def signature_json(s: SignatureReport) -> dict[str, Any]:
    v = s.verdict
    signer = v.signer
    return {
        "form": str(v.form),
        "source": v.source,
        "image_digest": v.image_digest,
        "status": str(v.status),
        "reason": v.reason,
        "role": None if v.role is None else str(v.role),
        "predicate_type": v.predicate_type,
        "signer": None
        if signer is None
        else {
            "sans": [{"type": str(san.type), "value": san.value} for san in signer.sans],
            "issuer": signer.issuer,
            "fingerprint": signer.fingerprint,
            "chain": str(signer.chain),
        },
        "entry": None
        if v.entry is None
        else {
            "log_id": v.entry.log_id.hex(),
            "index": v.entry.log_index,
            "kind": v.entry.kind,
            "api_version": v.entry.api_version,
            "integrated_time": v.entry.integrated_time,
            "body_sha256": v.entry.body_sha256,
        },
        "tie": tie_json(s.tie),
    }


def report_json(report: DigestReport) -> dict[str, Any]:
    """The digest report as ``images check --json`` prints it (see docs/images.md)."""
    j = report.judgment
    return {
        "repository": report.repository,
        "tags": list(report.tags),
        "digest": report.digest,
        "index_digest": report.index_digest,
        "platform": report.platform,
        "status": status_of(report),
        "findings": list(findings_of(report)),
        "missing": [str(r) for r in j.missing] if report.error is None else [],
        "error": report.error,
        "signatures": [signature_json(s) for s in report.signatures],
    }
