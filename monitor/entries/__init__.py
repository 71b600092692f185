"""Rekor entries, v1 and v2, parsed into one typed signing record.

Above trust: may import core, tlog and trust (the Fulcio CAs of chain checks).
"""

from monitor.entries.parse import parse_entry
from monitor.entries.record import (
    CertificateSigner,
    ChainStatus,
    Digest,
    KeySigner,
    MalformedEntry,
    ParseResult,
    Signer,
    SigningRecord,
    Subject,
)

__all__ = [
    "CertificateSigner",
    "ChainStatus",
    "Digest",
    "KeySigner",
    "MalformedEntry",
    "ParseResult",
    "Signer",
    "SigningRecord",
    "Subject",
    "parse_entry",
]
