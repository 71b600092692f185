"""Verifying an image's signatures and attestations with sigstore-python, one verdict each.

``ImageVerifier.verify`` checks an artifact completely against the monitor's trusted root:
the signature over the payload, the payload's claim on the image digest, the certificate's
chain to the root's Fulcio CAs at the time the log gives, its embedded SCT against the root's
CT logs, and the transparency-log evidence as sigstore's bundle verification checks it
(inclusion proof, signed checkpoint, the log's promise). sigstore-python decides; this module
frames its answer as a ``Verdict`` and keeps what the monitor needs next: the signer as the
entries layer parses certificates (for ``expect``) and the log entry the artifact names.

What sigstore-python 4 demands, and so the monitor too: an embedded SCT that verifies against
a CT log of the trusted root (a root without CT logs verifies no certificate, so
``ImageVerifier`` refuses such a root); an inclusion
proof with a signed checkpoint for every entry (a legacy ``.sig``/``.att`` brings only the
log's promise: until its proof is supplied its verdict is ``unproven``); a verified time,
which for a Rekor v1 entry is its integrated time under the promise (dsse and hashedrekord
0.0.1 only: a legacy ``.att`` logged as ``intoto`` cannot be verified) and for a Rekor v2 entry
an RFC 3161 timestamp.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sigstore.errors import Error as SigstoreError
from sigstore.errors import MetadataError
from sigstore.models import Bundle, TrustedRoot
from sigstore.verify import Verifier
from sigstore_models.trustroot import v1 as trustroot_v1

from monitor.core.errors import MalformedInputError, ProofError, TrustRootError
from monitor.core.escape import one_line
from monitor.core.jsonread import JsonReader
from monitor.entries.record import CertificateSigner, ChainStatus, Digest, Subject
from monitor.entries.statement import pae, parse_statement
from monitor.entries.x509 import parse_certificate
from monitor.imagesig.artifacts import (
    ANNOTATION_BUNDLE,
    ANNOTATION_CERTIFICATE,
    ANNOTATION_SIGNATURE,
    COSIGN_SIGN_PREDICATE,
    ArtifactForm,
    CosignBundle,
    ImageArtifact,
    annotation,
    check_size,
    form_for,
    load_json,
    parse_cosign_bundle,
    parse_digest,
    parse_simple_signing,
)
from monitor.imagesig.evidence import (
    InclusionProof,
    LogEntryRef,
    dsse_bundle,
    load_pem_certificate,
    message_bundle,
    ref_of,
)
from monitor.imagesig.verdict import Role, Status, Verdict
from monitor.tlog.merkle import leaf_hash, verify_inclusion

IN_TOTO = "application/vnd.in-toto+json"
# sigstore raises these for what it refuses, and for input its models cannot read
# what sigstore-python and cryptography raise on artifacts a registry made up: a certificate
# without an extension sigstore reads (keyUsage), an algorithm it does not know, ...
_REFUSALS = (
    SigstoreError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    x509.ExtensionNotFound,
    x509.DuplicateExtension,
    UnsupportedAlgorithm,
    InvalidSignature,
)


class _AnyCertificate:
    """sigstore's identity policy: none here; ``expect`` judges the signer afterwards."""

    def verify(self, cert: x509.Certificate) -> None:
        return None


@dataclass
class _Claims:
    role: Role | None = None
    predicate_type: str | None = None
    signer: CertificateSigner | None = None
    subjects: tuple[Subject, ...] = ()
    entry: LogEntryRef | None = None


class _Invalid(Exception):
    def __init__(self, reason: str, status: Status = Status.INVALID) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class ImageVerifier:
    """Verifies image artifacts against one trusted root (the monitor's: production's or the
    simulator's), given as the JSON of a Sigstore TrustedRoot."""

    def __init__(self, trusted_root_json: bytes) -> None:
        try:
            root = TrustedRoot(trustroot_v1.TrustedRoot.from_json(trusted_root_json))
            self._verifier = Verifier(trusted_root=root)
        except _REFUSALS as e:
            raise TrustRootError(f"the trusted root is not usable for images: {e}") from None
        if not root._inner.ctlogs:
            # sigstore-python checks every certificate's SCT and fails without a CT key: say
            # so once, here, rather than as an invalid signature on every image
            raise TrustRootError(
                "the trusted root lists no CT log: sigstore-python verifies no certificate "
                "without an SCT checked against one, so no image signature could verify"
            )

    def verify(
        self, artifact: ImageArtifact, image_digest: str, proof: InclusionProof | None = None
    ) -> Verdict:
        """The verdict on ``artifact`` for the image ``image_digest`` (``sha256:<hex>``).
        ``proof``: the inclusion proof of the entry a legacy form names (bundles carry
        their own). Never raises for what the artifact holds."""
        digest = parse_digest(image_digest, "image digest")
        claims = _Claims()
        try:
            check_size(artifact)
            if form_for(artifact.media_type) is not artifact.form:
                raise _Invalid(
                    f"a {artifact.form} layer of media type {artifact.media_type[:80]!r}"
                )
            if artifact.form is ArtifactForm.SIMPLE_SIGNING:
                self._simple_signing(artifact, digest, proof, claims)
            elif artifact.form is ArtifactForm.DSSE:
                self._legacy_dsse(artifact, digest, proof, claims)
            else:
                self._bundle(artifact, digest, claims)
        except _Invalid as e:
            return _verdict(artifact, digest, e.status, e.reason, claims)
        except MalformedInputError as e:
            return _verdict(artifact, digest, Status.INVALID, f"malformed: {e}", claims)
        if claims.signer is not None:
            claims.signer = dataclasses.replace(claims.signer, chain=ChainStatus.VERIFIED)
        return _verdict(artifact, digest, Status.VALID, "verified", claims)

    # --- the three forms ------------------------------------------------------------------

    def _simple_signing(
        self, a: ImageArtifact, digest: str, proof: InclusionProof | None, claims: _Claims
    ) -> None:
        claims.role = Role.SIGNATURE
        signed = parse_simple_signing(a.payload)
        claims.subjects = (Subject(signed.docker_reference, (_digest(signed.manifest_digest),)),)
        cert = self._certificate(a, claims)
        if signed.manifest_digest != digest:
            raise _Invalid(f"signs {signed.manifest_digest}, not this image")
        signature = _b64(annotation(a, ANNOTATION_SIGNATURE), ANNOTATION_SIGNATURE)
        _precheck(cert, signature, a.payload)
        promise = self._promise(a, claims, "hashedrekord")
        if proof is None:
            raise _Invalid(_UNPROVEN, Status.UNPROVEN)
        _logged(promise, proof)
        bundle = self._load(message_bundle(cert, signature, a.payload, promise, proof))
        self._run(lambda: self._verifier.verify_artifact(a.payload, bundle, _AnyCertificate()))

    def _legacy_dsse(
        self, a: ImageArtifact, digest: str, proof: InclusionProof | None, claims: _Claims
    ) -> None:
        envelope = load_json(a.payload, "the DSSE envelope")
        top = JsonReader(envelope, "envelope")
        payload_type = top.get("payloadType").str()
        payload = top.get("payload").b64()
        sigs = top.get("signatures").items()
        if len(sigs) != 1:
            raise _Invalid(f"the envelope has {len(sigs)} signatures, not one")
        self._statement(payload_type, payload, digest, claims, check=False)
        cert = self._certificate(a, claims)
        _precheck(cert, sigs[0].get("sig").b64(), pae(payload_type, payload))
        self._statement(payload_type, payload, digest, claims)
        promise = self._promise(a, claims, "dsse")
        if proof is None:
            raise _Invalid(_UNPROVEN, Status.UNPROVEN)
        _logged(promise, proof)
        bundle = self._load(dsse_bundle(cert, envelope, promise, proof))
        self._run(lambda: self._verifier.verify_dsse(bundle, _AnyCertificate()))

    def _bundle(self, a: ImageArtifact, digest: str, claims: _Claims) -> None:
        bundle = self._load(a.payload)
        inner = bundle.log_entry._inner
        claims.entry = LogEntryRef(
            log_id=bytes(inner.log_id.key_id),
            log_index=int(inner.log_index),
            integrated_time=int(inner.integrated_time) if inner.integrated_time else None,
            kind=inner.kind_version.kind,
            api_version=inner.kind_version.version,
            body=bytes(inner.canonicalized_body),
        )
        claims.signer = _signer(bundle.signing_certificate)
        envelope = bundle._dsse_envelope
        if envelope is None:
            raise _Invalid(
                "a message-signature bundle carries no payload: it does not say which image "
                "it signs",
                Status.UNSUPPORTED,
            )
        payload_type, payload = envelope._inner.payload_type, bytes(envelope._inner.payload)
        self._statement(payload_type, payload, digest, claims, check=False)
        self._run(lambda: self._verifier.verify_dsse(bundle, _AnyCertificate()))
        self._statement(payload_type, payload, digest, claims)

    # --- pieces ---------------------------------------------------------------------------

    def _certificate(self, a: ImageArtifact, claims: _Claims) -> x509.Certificate:
        pem = a.annotations.get(ANNOTATION_CERTIFICATE)
        if pem is None:
            raise _Invalid(_BARE_KEY, Status.UNSUPPORTED)
        cert = load_pem_certificate(pem, ANNOTATION_CERTIFICATE)
        claims.signer = _signer(cert)
        return cert

    def _promise(self, a: ImageArtifact, claims: _Claims, kind: str) -> CosignBundle:
        """The log's promise, naming an entry of ``kind`` 0.0.1 (the one kind sigstore
        verifies for this form)."""
        text = a.annotations.get(ANNOTATION_BUNDLE)
        if text is None:
            raise _Invalid("no transparency-log evidence (no dev.sigstore.cosign/bundle)")
        promise = parse_cosign_bundle(text)
        claims.entry = ref = ref_of(promise)
        if (ref.kind, ref.api_version) != (kind, "0.0.1"):
            raise _Invalid(
                f"logged as {ref.kind[:40]} {ref.api_version[:20]}, which sigstore does not "
                f"verify (only {kind} 0.0.1)",
                Status.UNSUPPORTED,
            )
        return promise

    def _statement(
        self, payload_type: str, payload: bytes, digest: str, claims: _Claims, *, check: bool = True
    ) -> None:
        if payload_type != IN_TOTO:
            raise _Invalid(f"the envelope holds {payload_type[:80]!r}, not an in-toto statement")
        statement = parse_statement(payload)
        claims.predicate_type = statement.predicate_type
        signs = statement.predicate_type == COSIGN_SIGN_PREDICATE
        claims.role = Role.SIGNATURE if signs else Role.ATTESTATION
        claims.subjects = statement.subjects
        hex_ = digest.removeprefix("sha256:")
        if check and not any(
            d.algorithm == "sha256" and d.value == hex_
            for s in statement.subjects
            for d in s.digests
        ):
            named = ", ".join(str(d) for s in statement.subjects for d in s.digests[:1])
            raise _Invalid(f"signs {named[:200] or 'no subject'}, not this image")

    def _load(self, data: bytes) -> Bundle:
        try:
            return Bundle.from_json(data)
        except _REFUSALS as e:
            if "expected certificate" in str(e):
                raise _Invalid(_BARE_KEY, Status.UNSUPPORTED) from None
            raise _Invalid(f"not a bundle sigstore can read: {one_line(e)}") from None

    def _run(self, check: Callable[[], object]) -> None:
        try:
            check()
        except _REFUSALS as e:
            text = one_line(e)
            if any(needle in text for needle in _UNSUPPORTED):
                raise _Invalid(
                    f"sigstore verifies no log entry of this kind: {text}", Status.UNSUPPORTED
                ) from None
            raise _Invalid(self._reason(e)) from None

    def _reason(self, e: Exception) -> str:
        text = one_line(e)
        if isinstance(e, MetadataError) and "CTFE" in text:
            return (
                "the trust root lists no CT log valid now, and sigstore verifies no "
                "certificate without an SCT checked against one"
            )
        for needle, reason in _REASONS:
            if needle in text:
                return f"{reason}: {text}"
        return f"sigstore refused it: {text}"


_BARE_KEY = (
    "signed with a bare key, not a certificate: the trust root's Fulcio vouches for no signer"
)
_UNPROVEN = (
    "the log evidence is the log's promise only (a signed entry timestamp): sigstore needs "
    "the entry's inclusion proof, from the log or the monitor's tree"
)
_UNSUPPORTED = ("Integrated time only supported", "Unsupported DSSE log entry type")
_REASONS = (
    (
        "failed to build timestamp certificate chain",
        "the certificate does not chain to the trust root's Fulcio CAs",
    ),
    ("SCT", "the certificate's SCT does not verify against the trust root's CT logs"),
    (
        "not enough sources of verified time",
        "no verified time (neither the log's promise nor an RFC 3161 timestamp)",
    ),
    ("invalid log entry", "the transparency-log evidence does not verify"),
    ("DSSE: invalid signature", "the signature does not verify over the payload"),
    ("Signature is invalid for input", "the signature does not verify over the payload"),
    ("inconsistent with other materials", "the log entry does not record this signature"),
    ("do not match bundle", "the log entry does not record this signature"),
    ("expired at time of signing", "the certificate was not valid when the log took the entry"),
)


def _verdict(
    a: ImageArtifact, digest: str, status: Status, reason: str, claims: _Claims
) -> Verdict:
    return Verdict(
        form=a.form,
        source=a.source,
        image_digest=digest,
        status=status,
        reason=reason,
        role=claims.role,
        predicate_type=claims.predicate_type,
        signer=claims.signer,
        subjects=claims.subjects,
        entry=claims.entry,
    )


def _signer(cert: x509.Certificate) -> CertificateSigner:
    return parse_certificate(cert.public_bytes(serialization.Encoding.DER))


def _digest(text: str) -> Digest:
    alg, _, value = text.partition(":")
    return Digest(alg, value)


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedInputError(f"{what} is not base64") from None


def _precheck(cert: x509.Certificate, signature: bytes, message: bytes) -> None:
    """The signature over ``message`` by the certificate's key, checked before the log
    evidence so that a wrong signature is invalid even without an inclusion proof: ECDSA
    over SHA-256, as cosign signs and sigstore-python checks; other keys are left to
    sigstore."""
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return
    try:
        key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise _Invalid("the signature does not verify over the payload") from None


def _logged(promise: CosignBundle, proof: InclusionProof) -> None:
    """The body the annotation carries must be the very leaf the proof proves: the monitor
    ties the signature to its log by these bytes, so it checks them itself (a bit-flip test
    found an altered body that was otherwise called valid)."""
    try:
        verify_inclusion(
            proof.log_index, proof.tree_size, leaf_hash(promise.body), proof.hashes, proof.root_hash
        )
    except ProofError:
        raise _Invalid(
            "the body the signature's log evidence carries is not the logged entry its "
            "inclusion proof proves"
        ) from None
