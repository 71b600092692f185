"""What verifying an image artifact concludes: its role, its status and the verdict. Apart
from ``verify`` so that reading a verdict does not load sigstore-python (about 50 MB), which
only a monitor that checks images needs."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from monitor.entries.record import CertificateSigner, Subject
from monitor.imagesig.artifacts import ArtifactForm
from monitor.imagesig.evidence import LogEntryRef

__all__ = ["Role", "Status", "Verdict"]


class Role(StrEnum):
    SIGNATURE = "signature"
    ATTESTATION = "attestation"


class Status(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    # the payload, its digest and its signature check out, but the log evidence is only the
    # log's promise: verify again with the entry's inclusion proof
    UNPROVEN = "unproven"
    # neither good nor forged: logged as an entry kind sigstore-python verifies none of (a
    # Rekor v1 intoto entry, cosign's older .att; a rekord, cosign 1's .sig; a Rekor v2
    # dsse), signed with a bare key (no certificate), or a bundle without a payload
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True)
class Verdict:
    """One artifact judged. ``role``, ``predicate_type`` and ``signer`` are what the artifact
    claims when it is not valid (``None`` when it could not even be read)."""

    form: ArtifactForm
    source: str
    image_digest: str
    status: Status
    reason: str
    role: Role | None = None
    predicate_type: str | None = None
    signer: CertificateSigner | None = None
    subjects: tuple[Subject, ...] = ()
    entry: LogEntryRef | None = None

    @property
    def valid(self) -> bool:
        return self.status is Status.VALID
