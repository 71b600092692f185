"""Checking container images: a watched repository's tags or one reference read from its
registry, each digest's signatures and attestations verified and judged, and each signature's
log entry tied to the log the monitor verifies. No storage: the daemon records what it finds.

Beside bundles and storage: may import core, tlog, trust, entries, rules, imagesig, config,
logclient and registry.
"""

from monitor.images.checker import ImageChecker
from monitor.images.reports import (
    DigestReport,
    LogTie,
    RepositoryScan,
    SignatureReport,
    findings_of,
    report_json,
    status_of,
)
from monitor.images.scan import check_reference, expectation_of, scan_repository
from monitor.images.ties import LogTies, Ours, TieResult

__all__ = [
    "DigestReport",
    "ImageChecker",
    "LogTie",
    "LogTies",
    "Ours",
    "RepositoryScan",
    "SignatureReport",
    "TieResult",
    "check_reference",
    "expectation_of",
    "findings_of",
    "report_json",
    "scan_repository",
    "status_of",
]
