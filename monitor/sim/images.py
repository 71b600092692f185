"""Container image signatures and attestations made by the simulator, in each form cosign
leaves in a registry: a legacy ``.sig`` layer (simple signing), a legacy ``.att`` layer (DSSE)
and a Sigstore bundle v0.3 (the referrer form). Each is signed by a leaf the simulator's CA
issues for the given identity, with an SCT from the simulator's CT log embedded, and its entry
is appended to the simulator's Rekor v1 log, so that its signed entry timestamp, inclusion
proof and checkpoint are the log's own.

Rekor v2 bundles are not made: sigstore-python takes the time of a Rekor v2 entry only from an
RFC 3161 timestamp, and the simulator has no timestamp authority.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from monitor.core.encoding import b64encode
from monitor.imagesig.artifacts import (
    ANNOTATION_BUNDLE,
    ANNOTATION_CERTIFICATE,
    ANNOTATION_CHAIN,
    ANNOTATION_SIGNATURE,
    COSIGN_SIGN_PREDICATE,
    MEDIA_BUNDLE_V03,
    MEDIA_DSSE,
    MEDIA_SIMPLE_SIGNING,
    SIMPLE_SIGNING_TYPE,
    ArtifactForm,
    CosignBundle,
    ImageArtifact,
)
from monitor.imagesig.evidence import InclusionProof, tlog_entry_json
from monitor.sim.bodies import INTOTO
from monitor.sim.ca import GitHubWorkflow, SimCA, derive_ec_key
from monitor.sim.ct import SimCTLog
from monitor.sim.drafts import Draft, dsse_v1, hashedrekord_v1, in_toto_statement, intoto_v1
from monitor.sim.factory import PlantEntry
from monitor.sim.logs import SimV1Log
from monitor.sim.pool import EmailIdentity, Identity, PoolCert, describe
from monitor.sim.server import SimState

SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"


@dataclass(frozen=True)
class SignedArtifact:
    """An artifact as a registry would hold it, and where its entry is in the v1 log."""

    artifact: ImageArtifact
    log_index: int
    certificate: x509.Certificate = field(repr=False)


@dataclass
class ImageSigner:
    """Signs images as cosign does, logging each entry in ``log`` (whose log ID is
    ``log_id``) with leaves from ``ca`` carrying SCTs from ``ct``."""

    log: SimV1Log
    log_id: bytes
    ca: SimCA
    ct: SimCTLog
    issued: int = 0

    @classmethod
    def of(cls, state: SimState, ca: SimCA) -> ImageSigner:
        """The signer of a running simulator: its v1 log, its CA, the CT log of its seed."""
        return cls(state.v1, state.v1_log_id, ca, SimCTLog.create(ca.seed))

    # --- the three forms ----------------------------------------------------------------------

    def signature(self, digest: str, identity: Identity, reference: str) -> SignedArtifact:
        """A legacy ``.sig`` layer: a simple-signing payload naming ``digest``."""
        payload = json.dumps(
            {
                "critical": {
                    "identity": {"docker-reference": reference},
                    "image": {"docker-manifest-digest": digest},
                    "type": SIMPLE_SIGNING_TYPE,
                },
                "optional": None,
            },
            separators=(",", ":"),
        ).encode()
        cert = self._issue(identity)
        draft = hashedrekord_v1("image/signature", cert, hashlib.sha256(payload).digest())
        sig, index = self._log(draft)
        artifact = ImageArtifact(
            ArtifactForm.SIMPLE_SIGNING,
            MEDIA_SIMPLE_SIGNING,
            payload,
            {ANNOTATION_SIGNATURE: b64encode(sig), **self._annotations(cert, index)},
            source=f"{digest.replace(':', '-')}.sig",
        )
        return SignedArtifact(artifact, index, _x509(cert))

    def attestation(
        self,
        digest: str,
        identity: Identity,
        reference: str,
        *,
        predicate_type: str = SLSA_PROVENANCE,
        predicate: str = "{}",
        entry_kind: Literal["dsse", "intoto"] = "dsse",
    ) -> SignedArtifact:
        """A legacy ``.att`` layer: a DSSE envelope, logged as a dsse 0.0.1 entry (cosign's
        default) or an intoto 0.0.2 entry (``--rekor-entry-type intoto``, and cosign before
        its dsse entries)."""
        statement = in_toto_statement(predicate_type, predicate, reference, _hex(digest))
        cert = self._issue(identity)
        build = dsse_v1 if entry_kind == "dsse" else intoto_v1
        sig, index = self._log(build("image/attestation", cert, statement))
        artifact = ImageArtifact(
            ArtifactForm.DSSE,
            MEDIA_DSSE,
            json.dumps(_envelope(statement, sig), separators=(",", ":")).encode(),
            self._annotations(cert, index),
            source=f"{digest.replace(':', '-')}.att",
        )
        return SignedArtifact(artifact, index, _x509(cert))

    def bundle(
        self,
        digest: str,
        identity: Identity,
        reference: str,
        *,
        predicate_type: str = COSIGN_SIGN_PREDICATE,
        predicate: str = "{}",
    ) -> SignedArtifact:
        """A Sigstore bundle v0.3 as cosign 3 stores it as a referrer: a DSSE statement about
        ``digest`` (predicate ``cosign/sign/v1`` for a signature), its full log evidence."""
        statement = in_toto_statement(predicate_type, predicate, reference, _hex(digest))
        cert = self._issue(identity)
        sig, index = self._log(dsse_v1("image/bundle", cert, statement))
        doc = {
            "mediaType": MEDIA_BUNDLE_V03,
            "verificationMaterial": {
                "certificate": {"rawBytes": b64encode(cert.der)},
                "tlogEntries": [tlog_entry_json(self.promise(index), self.proof(index))],
            },
            "dsseEnvelope": _envelope(statement, sig),
        }
        artifact = ImageArtifact(
            ArtifactForm.BUNDLE,
            MEDIA_BUNDLE_V03,
            json.dumps(doc).encode(),
            {"dev.sigstore.bundle.predicateType": predicate_type},
            source=f"referrer of {digest}",
        )
        return SignedArtifact(artifact, index, _x509(cert))

    # --- the log's evidence -------------------------------------------------------------------

    def promise(self, index: int) -> CosignBundle:
        """The log's signed entry timestamp over the entry at ``index``."""
        body = self.log.entry(index).body
        return CosignBundle(
            signed_entry_timestamp=self.log.set_for(index, body, self.log_id),
            body=body,
            integrated_time=self.log.integrated_time(index),
            log_index=index,
            log_id=self.log_id,
        )

    def proof(self, index: int) -> InclusionProof:
        """The inclusion proof of the entry at ``index`` in its shard as it stands now."""
        shard = self.log.shard_of(index)
        if shard is None:
            raise KeyError(index)
        local, size = index - shard.start, shard.store.size
        return InclusionProof(
            log_index=local,
            tree_size=size,
            root_hash=shard.store.root(size),
            hashes=tuple(shard.store.inclusion_proof(local, size)),
            checkpoint=self.log.checkpoint(shard, size),
        )

    # --- pieces -------------------------------------------------------------------------------

    def _issue(self, identity: Identity) -> PoolCert:
        """A fresh leaf for ``identity``, valid from a minute ago (the log's time falls in
        its ten minutes), its key derived from the CA's seed and a counter."""
        self.issued += 1
        key = derive_ec_key(self.ca.seed, f"image-leaf:{self.issued}", ec.SECP256R1())
        when = datetime.fromtimestamp(int(self.log.clock()) - 60, UTC)
        pub = key.public_key()
        if isinstance(identity, GitHubWorkflow):
            cert = self.ca.issue_github_actions(pub, identity, not_before=when, ct=self.ct)
        elif isinstance(identity, EmailIdentity):
            cert = self.ca.issue_email(
                pub, identity.email, identity.issuer, not_before=when, ct=self.ct
            )
        else:
            cert = self.ca.issue_username(
                pub, identity.username, identity.issuer, not_before=when, ct=self.ct
            )
        pem = cert.public_bytes(serialization.Encoding.PEM)
        label, subject = describe(identity)
        return PoolCert(
            identity=identity,
            der=cert.public_bytes(serialization.Encoding.DER),
            v1_key=b64encode(pem),
            v2_raw=b64encode(cert.public_bytes(serialization.Encoding.DER)),
            label=label,
            subject_name=subject,
            predicate_type=SLSA_PROVENANCE,
            predicate="{}",
            key=key,
        )

    def _log(self, draft: Draft) -> tuple[bytes, int]:
        """Signs ``draft`` and appends its entry to the log: (signature, global index)."""
        sig = draft.sign()
        index = self.log.size
        self.log.factory.plant(index, PlantEntry(draft.render(sig)))
        self.log.append(1)
        return sig, index

    def _annotations(self, cert: PoolCert, index: int) -> dict[str, str]:
        promise = self.promise(index)
        inter, root = (
            c.public_bytes(serialization.Encoding.PEM).decode()
            for c in (self.ca.intermediate, self.ca.root)
        )
        bundle = {
            "SignedEntryTimestamp": b64encode(promise.signed_entry_timestamp),
            "Payload": {
                "body": b64encode(promise.body),
                "integratedTime": promise.integrated_time,
                "logIndex": promise.log_index,
                "logID": promise.log_id.hex(),
            },
        }
        return {
            ANNOTATION_CERTIFICATE: _x509(cert).public_bytes(serialization.Encoding.PEM).decode(),
            ANNOTATION_CHAIN: inter + root,
            ANNOTATION_BUNDLE: json.dumps(bundle, separators=(",", ":")),
        }


def _x509(cert: PoolCert) -> x509.Certificate:
    return x509.load_der_x509_certificate(cert.der)


def _hex(digest: str) -> str:
    return digest.removeprefix("sha256:")


def _envelope(statement: bytes, sig: bytes) -> dict[str, object]:
    return {
        "payloadType": INTOTO,
        "payload": b64encode(statement),
        "signatures": [{"keyid": "", "sig": b64encode(sig)}],
    }
