"""Container image signatures and attestations, as cosign stores them in a registry, verified
with sigstore-python and judged against a signer expectation. Pure functions over bytes: the
registry client fetches, this package decides.

Above rules: may import core, tlog, trust, entries and rules.
"""

from typing import TYPE_CHECKING, Any

from monitor.imagesig.artifacts import ArtifactForm, ImageArtifact, artifact_from_layer, form_for
from monitor.imagesig.evidence import InclusionProof, LogEntryRef, inclusion_proof_from_v1
from monitor.imagesig.judge import Expectation, Judgment, Require
from monitor.imagesig.verdict import Role, Status, Verdict

if TYPE_CHECKING:
    from monitor.imagesig.verify import ImageVerifier


def __getattr__(name: str) -> Any:
    # sigstore-python (about 50 MB) is loaded only by a monitor that verifies images
    if name == "ImageVerifier":
        from monitor.imagesig.verify import ImageVerifier  # noqa: PLC0415

        return ImageVerifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ArtifactForm",
    "Expectation",
    "ImageArtifact",
    "ImageVerifier",
    "InclusionProof",
    "Judgment",
    "LogEntryRef",
    "Require",
    "Role",
    "Status",
    "Verdict",
    "artifact_from_layer",
    "form_for",
    "inclusion_proof_from_v1",
]
