"""Image references as the distribution reference grammar reads them.

``ghcr.io/acme/app:1.0``, ``localhost:5000/acme/app@sha256:...``, ``alpine`` (which is
``docker.io/library/alpine``). A name's first component is a registry host when it holds a
``.`` or a ``:`` or is ``localhost``; otherwise the name is on Docker Hub, whose one-component
names live under ``library/``. Tags that cosign and the OCI referrers fallback write beside an
image (``sha256-<hex>``, ``sha256-<hex>.sig``, ``.att``, ``.sbom``) are attachments, never
images to watch.

Here, below every layer, because the configuration validates the references it is given and
the registry client reads them.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from monitor.core.errors import MalformedInputError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"  # where docker.io's API answers
MAX_NAME = 255  # the grammar's bound on a repository name with its host

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:]+\])(?::[0-9]{{1,5}})?")
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGESTS = {"sha256": 64, "sha512": 128}
_DIGEST = re.compile(r"(sha256|sha512):([0-9a-f]+)")
# what cosign and the referrers fallback tag name after the digest they attach to
_ATTACHED = re.compile(r"(sha256|sha512)-([0-9a-f]{64}|[0-9a-f]{128})(\.sig|\.att|\.sbom)?")


@dataclass(frozen=True, order=True)
class Repository:
    """A repository on a registry: ``registry`` is the host (and port) as named,
    ``name`` the path under it."""

    registry: str
    name: str

    def __str__(self) -> str:
        return f"{self.registry}/{self.name}"

    @property
    def api_host(self) -> str:
        """The host that answers the registry API for this name."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.registry)


@dataclass(frozen=True)
class ImageReference:
    """A repository and a tag or a digest (or both: the digest is what counts)."""

    repository: Repository
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        text = str(self.repository)
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def reference(self) -> str:
        """What the manifest endpoint takes: the digest if known, else the tag."""
        ref = self.digest or self.tag
        if ref is None:
            raise MalformedInputError(f"{self}: names neither a tag nor a digest")
        return ref


def parse_repository(text: str) -> Repository:
    """A repository name (no tag, no digest), normalised: ``alpine`` is
    ``docker.io/library/alpine``, ``index.docker.io/x/y`` is ``docker.io/x/y``."""
    if len(text) > MAX_NAME:
        raise MalformedInputError(f"repository name longer than {MAX_NAME} characters")
    first, sep, rest = text.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        host, path = first, rest
        if not _HOST.fullmatch(host):
            raise MalformedInputError(f"{host!r} is not a registry host")
        if host == "index.docker.io":
            host = DOCKER_HUB
    else:
        host, path = DOCKER_HUB, text
    if host == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if not _PATH.fullmatch(path):
        raise MalformedInputError(
            f"{path!r} is not a repository name (lowercase components of letters "
            "and digits, separated by '/', '.', '_', '__' or '-')"
        )
    return Repository(host, path)


def parse_reference(text: str) -> ImageReference:
    """``[host/]name[:tag][@digest]``; a bare name is refused (it names no image)."""
    name, at, digest = text.partition("@")
    if at:
        check_digest(digest)
    tag = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:  # a colon after the last slash starts a tag, not a port
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise MalformedInputError(f"{tag!r} is not a tag")
    repository = parse_repository(name)
    if tag is None and not at:
        raise MalformedInputError(f"{text[:300]!r} names neither a tag nor a digest")
    return ImageReference(repository, tag, digest if at else None)


def check_digest(digest: str) -> str:
    """``digest`` if it is ``sha256:<64 hex>`` or ``sha512:<128 hex>`` (lowercase), else
    ``MalformedInputError``: only digests we can check are taken."""
    m = _DIGEST.fullmatch(digest)
    if not m or len(m.group(2)) != _DIGESTS[m.group(1)]:
        raise MalformedInputError(f"{digest[:140]!r} is not a sha256 or sha512 digest")
    return digest


def is_tag(text: str) -> bool:
    return _TAG.fullmatch(text) is not None


def is_attached_tag(tag: str) -> bool:
    """A tag that holds signatures, attestations or referrers of another digest."""
    return _ATTACHED.fullmatch(tag) is not None


def fallback_tag(digest: str) -> str:
    """The OCI referrers fallback tag of ``digest``: ``sha256-<hex>``."""
    return check_digest(digest).replace(":", "-", 1)


def signature_tag(digest: str) -> str:
    """cosign's legacy signature tag of ``digest``."""
    return f"{fallback_tag(digest)}.sig"


def attestation_tag(digest: str) -> str:
    """cosign's legacy attestation tag of ``digest``."""
    return f"{fallback_tag(digest)}.att"


def match_tags(tags: Iterable[str], globs: Sequence[str] | None) -> list[str]:
    """The image tags among ``tags`` that match any glob (all when ``globs`` is None or
    empty), attached tags left out, sorted."""
    chosen = set()
    for tag in tags:
        if is_attached_tag(tag):
            continue
        if not globs or any(fnmatch.fnmatchcase(tag, g) for g in globs):
            chosen.add(tag)
    return sorted(chosen)


def is_loopback_host(host: str) -> bool:
    """``localhost``, ``127.x.y.z`` or ``[::1]``, with or without a port."""
    if host.startswith("["):
        name = host[: host.find("]") + 1]
    else:
        name = host.rsplit(":", 1)[0] if ":" in host else host
    if name in ("localhost", "[::1]"):
        return True
    parts = name.split(".")
    return len(parts) == 4 and parts[0] == "127" and all(p.isdigit() for p in parts)
