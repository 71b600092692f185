"""Trust material: the Sigstore trusted root and signing config.

Above tlog: may import core and tlog.
"""

from monitor.trust.root import (
    CertificateAuthority,
    TransparencyLog,
    TrustRoot,
    build_trust_root,
    load_trust_root,
    read_trusted_root,
)

__all__ = [
    "CertificateAuthority",
    "TransparencyLog",
    "TrustRoot",
    "build_trust_root",
    "load_trust_root",
    "read_trusted_root",
]
