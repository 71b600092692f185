"""What cosign leaves in a registry beside an image, as the registry client hands it over.

Three forms (``ArtifactForm``):

- ``simple-signing``: a layer of a legacy ``sha256-<hex>.sig`` manifest. The layer blob is a
  simple-signing payload naming the image digest; the annotations carry the signature
  (``dev.cosignproject.cosign/signature``), the leaf certificate and chain (PEM) and the
  log's promise (``dev.sigstore.cosign/bundle``: a Rekor v1 signed entry timestamp).
- ``dsse``: a layer of a legacy ``.att`` manifest: a DSSE envelope of an in-toto statement,
  with the same certificate and bundle annotations.
- ``bundle``: a Sigstore bundle (v0.3) stored as an OCI referrer; the layer blob is the bundle.

Everything here is read from a registry, so it is hostile: sizes are bounded and every
malformation becomes ``MalformedInputError``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from monitor.core.encoding import hexdecode_strict
from monitor.core.errors import MalformedInputError
from monitor.core.jsonread import JsonReader

MEDIA_SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
MEDIA_DSSE = "application/vnd.dsse.envelope.v1+json"
MEDIA_BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"

ANNOTATION_SIGNATURE = "dev.cosignproject.cosign/signature"
ANNOTATION_CERTIFICATE = "dev.sigstore.cosign/certificate"
ANNOTATION_CHAIN = "dev.sigstore.cosign/chain"
ANNOTATION_BUNDLE = "dev.sigstore.cosign/bundle"

SIMPLE_SIGNING_TYPE = "cosign container image signature"
# cosign 3 signs an image as a DSSE statement of this predicate type: a signature, not an
# attestation
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"

MAX_ARTIFACT_BYTES = 8 << 20  # a bundle or payload; cosign's are a few kilobytes
MAX_ANNOTATION_BYTES = 64 << 10


class ArtifactForm(StrEnum):
    SIMPLE_SIGNING = "simple-signing"  # legacy .sig layer
    DSSE = "dsse"  # legacy .att layer
    BUNDLE = "bundle"  # Sigstore bundle v0.3 (referrer or fallback tag)


_FORMS = {
    MEDIA_SIMPLE_SIGNING: ArtifactForm.SIMPLE_SIGNING,
    MEDIA_DSSE: ArtifactForm.DSSE,
    MEDIA_BUNDLE_V03: ArtifactForm.BUNDLE,
    "application/vnd.dev.sigstore.bundle+json;version=0.3": ArtifactForm.BUNDLE,
}


def form_for(media_type: str) -> ArtifactForm | None:
    """The form of a layer of ``media_type`` (``None``: none cosign writes)."""
    return _FORMS.get(media_type.strip().lower())


@dataclass(frozen=True)
class ImageArtifact:
    """One signature or attestation as the registry holds it: the layer's media type, its
    blob (``payload``) and the layer's annotations. ``source`` says where it was found (a
    tag or referrer digest), for messages only."""

    form: ArtifactForm
    media_type: str
    payload: bytes = field(repr=False)
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False)
    source: str = ""


def artifact_from_layer(descriptor: Any, blob: bytes, source: str = "") -> ImageArtifact:
    """The artifact a manifest layer holds: ``descriptor`` is the layer's OCI descriptor
    (``mediaType``, ``digest``, ``annotations``) as the manifest gives it, ``blob`` the bytes
    the registry served for it, which must have the descriptor's digest. Raises
    ``MalformedInputError`` for a layer no cosign form uses or whose blob is not the one
    named."""
    top = JsonReader(descriptor, "layer")
    media_type = top.get("mediaType").str()
    form = form_for(media_type)
    if form is None:
        raise MalformedInputError(f"layer: media type {media_type[:80]!r} is no cosign form")
    if len(blob) > MAX_ARTIFACT_BYTES:
        raise MalformedInputError(f"layer: larger than {MAX_ARTIFACT_BYTES} bytes")
    named = parse_digest(top.get("digest").str(), "layer.digest")
    if named != "sha256:" + hashlib.sha256(blob).hexdigest():
        raise MalformedInputError(f"layer: the blob served is not {named}")
    annotations: dict[str, str] = {}
    found = top.opt("annotations")
    for key, value in (found.obj() if found is not None else {}).items():
        if not isinstance(value, str):
            raise MalformedInputError(f"layer.annotations: {key[:60]!r} is not a string")
        annotations[key] = value
    return ImageArtifact(form, media_type, blob, annotations, source)


@dataclass(frozen=True)
class SimpleSigning:
    """The claims of a simple-signing payload."""

    docker_reference: str
    manifest_digest: str  # "sha256:<hex>"


@dataclass(frozen=True)
class CosignBundle:
    """``dev.sigstore.cosign/bundle``: Rekor v1's promise (SET) over one entry."""

    signed_entry_timestamp: bytes
    body: bytes  # the canonicalized entry body
    integrated_time: int
    log_index: int
    log_id: bytes


def check_size(artifact: ImageArtifact) -> None:
    if len(artifact.payload) > MAX_ARTIFACT_BYTES:
        raise MalformedInputError(f"the artifact is larger than {MAX_ARTIFACT_BYTES} bytes")
    for key, value in artifact.annotations.items():
        if len(key) + len(value) > MAX_ANNOTATION_BYTES:
            raise MalformedInputError(f"annotation {key[:60]!r} is too large")


def load_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise MalformedInputError(f"{what} is not JSON") from None


def parse_digest(text: str, what: str) -> str:
    """``sha256:<64 hex>``, lower-cased; anything else is refused."""
    alg, sep, value = text.partition(":")
    if sep != ":" or alg != "sha256" or len(value) != 64:
        raise MalformedInputError(f"{what}: not a sha256 digest: {text[:80]!r}")
    try:
        hexdecode_strict(value.lower())
    except ValueError:
        raise MalformedInputError(f"{what}: not a sha256 digest: {text[:80]!r}") from None
    return f"sha256:{value.lower()}"


def parse_simple_signing(payload: bytes) -> SimpleSigning:
    """The image a simple-signing payload names; raises ``MalformedInputError``."""
    top = JsonReader(load_json(payload, "the simple-signing payload"), "payload")
    critical = top.get("critical")
    kind = critical.get("type").str()
    if kind != SIMPLE_SIGNING_TYPE:
        raise critical.get("type").fail(f"not {SIMPLE_SIGNING_TYPE!r}: {kind[:80]!r}")
    reference = critical.get("identity").get("docker-reference").str()
    digest = critical.get("image").get("docker-manifest-digest").str()
    return SimpleSigning(reference, parse_digest(digest, "docker-manifest-digest"))


def annotation(artifact: ImageArtifact, name: str) -> str:
    value = artifact.annotations.get(name)
    if value is None:
        raise MalformedInputError(f"the layer has no {name} annotation")
    return value


def parse_cosign_bundle(text: str) -> CosignBundle:
    """The ``dev.sigstore.cosign/bundle`` annotation; raises ``MalformedInputError``."""
    top = JsonReader(load_json(text.encode(), "the cosign bundle annotation"), "bundle")
    payload = top.get("Payload")
    try:
        log_id = hexdecode_strict(payload.get("logID").str())
    except ValueError:
        raise payload.get("logID").fail("not hex") from None
    return CosignBundle(
        signed_entry_timestamp=top.get("SignedEntryTimestamp").b64(),
        body=payload.get("body").b64(),
        integrated_time=payload.get("integratedTime").int(),
        log_index=payload.get("logIndex").int(),
        log_id=log_id,
    )
