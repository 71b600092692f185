"""Container image signatures and attestations, as cosign stores them in a registry, verified
with sigstore-python and judged against a signer expectation. Pure functions over bytes: the
registry client fetches, this package decides.

Above rules: may import core, tlog, trust, entries and rules.
"""

from monitor.imagesig.artifacts import ArtifactForm, ImageArtifact, artifact_from_layer, form_for
from monitor.imagesig.evidence import InclusionProof, LogEntryRef, inclusion_proof_from_v1
from monitor.imagesig.judge import Expectation, Judgment, Require
from monitor.imagesig.verify import ImageVerifier, Role, Status, Verdict

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
