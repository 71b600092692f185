"""Manifests and image indexes (OCI and Docker v2) as frozen data, parsed from bytes whose
digest was already checked. Only schema version 2 is read; anything else is refused."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from monitor.core.errors import MalformedInputError
from monitor.core.imageref import check_digest
from monitor.core.jsonread import JsonReader

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
# what a manifest GET asks for: every form we read, and nothing else (no schema 1)
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))

OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
SIGSTORE_BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"

# the annotations of a cosign legacy ``.sig`` layer
COSIGN_SIGNATURE = "dev.cosignproject.cosign/signature"
COSIGN_CERTIFICATE = "dev.sigstore.cosign/certificate"
COSIGN_CHAIN = "dev.sigstore.cosign/chain"
COSIGN_BUNDLE = "dev.sigstore.cosign/bundle"

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class Descriptor:
    """A pointer to content: its media type, digest and size, and what the pointer says of it
    (annotations, an artifact type, the platform of an index's child)."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    artifact_type: str | None = None
    platform: Platform | None = None

    def as_json(self) -> dict[str, Any]:
        """The descriptor as OCI JSON (``mediaType``, ``digest``, ``size``, ``annotations``,
        ``artifactType``): what a reader of manifest JSON takes."""
        doc: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest}
        doc |= {"size": self.size, "annotations": dict(self.annotations)}
        if self.artifact_type is not None:
            doc["artifactType"] = self.artifact_type
        if self.platform is not None:
            p = self.platform
            doc["platform"] = {"os": p.os, "architecture": p.architecture}
            if p.variant:
                doc["platform"]["variant"] = p.variant
        return doc


@dataclass(frozen=True)
class Manifest:
    """An image manifest (``config``, ``layers``) or an index (``manifests``), its digest
    checked against its bytes (``raw``)."""

    digest: str
    media_type: str
    raw: bytes
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: Mapping[str, str] = field(default_factory=lambda: _EMPTY)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


def parse_manifest(data: object, raw: bytes, digest: str, content_type: str | None) -> Manifest:
    """A decoded manifest or index. Its media type is the body's ``mediaType``, else the
    answer's ``Content-Type``; a body and header that disagree are refused (a client that
    trusted the header would read the bytes as something else)."""
    doc = JsonReader(data, "")
    obj = doc.obj()
    if obj.get("schemaVersion") != 2:
        raise doc.fail("schemaVersion is not 2 (only schema 2 manifests are read)")
    declared = doc.opt("mediaType")
    media_type = declared.str() if declared else None
    header = (content_type or "").split(";")[0].strip() or None
    if media_type and header and header in INDEX_TYPES | MANIFEST_TYPES and header != media_type:
        raise doc.fail(f"mediaType {media_type[:100]!r} but Content-Type {header[:100]!r}")
    media_type = media_type or header or (OCI_INDEX if "manifests" in obj else OCI_MANIFEST)
    if media_type in INDEX_TYPES:
        children = tuple(_descriptor(d) for d in doc.get("manifests").items())
        return Manifest(
            digest,
            media_type,
            raw,
            manifests=children,
            subject=_opt_descriptor(doc, "subject"),
            artifact_type=_opt_str(doc, "artifactType"),
            annotations=_annotations(doc),
        )
    if media_type not in MANIFEST_TYPES:
        raise doc.fail(f"media type {media_type[:100]!r} is no manifest or index")
    return Manifest(
        digest,
        media_type,
        raw,
        config=_descriptor(doc.get("config")),
        layers=tuple(_descriptor(d) for d in doc.get("layers").items()),
        subject=_opt_descriptor(doc, "subject"),
        artifact_type=_opt_str(doc, "artifactType"),
        annotations=_annotations(doc),
    )


def parse_index_descriptors(data: object) -> tuple[Descriptor, ...]:
    """The ``manifests`` of an index-shaped answer (the referrers API's)."""
    doc = JsonReader(data, "")
    return tuple(_descriptor(d) for d in doc.get("manifests").items())


def _descriptor(doc: JsonReader) -> Descriptor:
    field_ = doc.get("digest")
    digest = field_.str()
    try:
        check_digest(digest)
    except MalformedInputError as e:
        raise field_.fail(str(e)) from None
    platform = None
    p = doc.opt("platform")
    if p is not None:
        variant = p.opt("variant")
        platform = Platform(
            p.get("os").str(), p.get("architecture").str(), variant.str() if variant else None
        )
    return Descriptor(
        media_type=doc.get("mediaType").str(),
        digest=digest,
        size=doc.get("size").int(),
        annotations=_annotations(doc),
        artifact_type=_opt_str(doc, "artifactType"),
        platform=platform,
    )


def _opt_descriptor(doc: JsonReader, key: str) -> Descriptor | None:
    d = doc.opt(key)
    return _descriptor(d) if d is not None else None


def _opt_str(doc: JsonReader, key: str) -> str | None:
    v = doc.opt(key)
    return v.str() if v is not None else None


def _annotations(doc: JsonReader) -> Mapping[str, str]:
    a = doc.opt("annotations")
    if a is None:
        return _EMPTY
    return MappingProxyType({k: a.get(k).str() for k in a.obj()})
