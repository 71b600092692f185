"""A Fulcio certificate authority as the trust root describes it.

Here, not in ``monitor.trust``, so that the parser's chain checks (on a parse worker too) name
it without loading the trusted root's pydantic models: a parse worker is about 15 MB smaller
and starts about 0.2 s sooner without them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509


@dataclass(frozen=True)
class CertificateAuthority:
    """A Fulcio CA: its chain (leaf-most first, as in the trust root) and validity."""

    uri: str
    chain: tuple[x509.Certificate, ...] = field(repr=False)
    valid_from: datetime | None
    valid_until: datetime | None
