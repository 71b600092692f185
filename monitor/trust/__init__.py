"""Trust material: the Sigstore trusted root and signing config."""

from monitor.trust.root import (
    CertificateAuthority,
    TransparencyLog,
    TrustRoot,
    build_trust_root,
    load_trust_root,
)

__all__ = [
    "CertificateAuthority",
    "TransparencyLog",
    "TrustRoot",
    "build_trust_root",
    "load_trust_root",
]
