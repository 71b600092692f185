"""Image references as distribution's reference grammar reads them, and the tags that are
attachments rather than images."""

from __future__ import annotations

import pytest

from monitor.core.errors import MalformedInputError
from monitor.core.imageref import (
    ImageReference,
    Repository,
    attestation_tag,
    fallback_tag,
    is_attached_tag,
    is_loopback_host,
    match_tags,
    parse_reference,
    parse_repository,
    signature_tag,
)

HEX = "ab" * 32
DIGEST = f"sha256:{HEX}"


@pytest.mark.parametrize(
    ("text", "registry", "name"),
    [
        ("ghcr.io/acme/app", "ghcr.io", "acme/app"),
        ("localhost:5000/acme/app", "localhost:5000", "acme/app"),
        ("localhost/app", "localhost", "app"),
        ("127.0.0.1:5000/a/b/c", "127.0.0.1:5000", "a/b/c"),
        ("[::1]:5000/app", "[::1]:5000", "app"),
        ("alpine", "docker.io", "library/alpine"),
        ("acme/app", "docker.io", "acme/app"),
        ("docker.io/alpine", "docker.io", "library/alpine"),
        ("index.docker.io/acme/app", "docker.io", "acme/app"),
        ("registry.example.com/a.b/c_d/e__f/g-h--i", "registry.example.com", "a.b/c_d/e__f/g-h--i"),
    ],
)
def test_repositories_normalised(text: str, registry: str, name: str) -> None:
    assert parse_repository(text) == Repository(registry, name)


def test_docker_hub_is_read_at_its_api_host() -> None:
    assert parse_repository("alpine").api_host == "registry-1.docker.io"
    assert parse_repository("ghcr.io/a/b").api_host == "ghcr.io"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("ghcr.io/Acme/app", "is not a repository name"),
        ("ghcr.io/acme//app", "is not a repository name"),
        ("ghcr.io/acme/app-", "is not a repository name"),
        ("-bad.io/app", "is not a registry host"),
        ("ghcr.io/acme/\x1b[2Japp", "is not a repository name"),
        ("a" * 300, "longer than 255"),
    ],
)
def test_bad_repositories(text: str, problem: str) -> None:
    with pytest.raises(MalformedInputError, match=problem) as caught:
        parse_repository(text)
    assert "\x1b" not in str(caught.value)  # escaped when shown


def test_references() -> None:
    assert parse_reference("ghcr.io/acme/app:1.0") == ImageReference(
        Repository("ghcr.io", "acme/app"), "1.0"
    )
    ref = parse_reference(f"localhost:5000/app:v1@{DIGEST}")
    assert ref == ImageReference(Repository("localhost:5000", "app"), "v1", DIGEST)
    assert ref.reference == DIGEST
    assert str(ref) == f"localhost:5000/app:v1@{DIGEST}"
    assert parse_reference(f"alpine@{DIGEST}").repository.name == "library/alpine"
    with pytest.raises(MalformedInputError, match="names neither a tag nor a digest"):
        parse_reference("localhost:5000/app")
    with pytest.raises(MalformedInputError, match="is not a sha256 or sha512 digest"):
        parse_reference("app@sha256:ABC")
    with pytest.raises(MalformedInputError, match="is not a tag"):
        parse_reference("app:-x")


def test_attached_tags() -> None:
    assert fallback_tag(DIGEST) == f"sha256-{HEX}"
    assert signature_tag(DIGEST) == f"sha256-{HEX}.sig"
    assert attestation_tag(DIGEST) == f"sha256-{HEX}.att"
    for tag in (f"sha256-{HEX}", f"sha256-{HEX}.sig", f"sha256-{HEX}.att", f"sha256-{HEX}.sbom"):
        assert is_attached_tag(tag)
    for tag in ("sha256-abc", f"sha256-{HEX}.txt", "latest", f"v1-sha256-{HEX}"):
        assert not is_attached_tag(tag)
    tags = ["latest", "v1.0", "v1.1", "v2", f"sha256-{HEX}.sig", f"sha256-{HEX}"]
    assert match_tags(tags, None) == ["latest", "v1.0", "v1.1", "v2"]
    assert match_tags(tags, []) == ["latest", "v1.0", "v1.1", "v2"]
    assert match_tags(tags, ["v1.*"]) == ["v1.0", "v1.1"]
    assert match_tags(tags, ["*"]) == ["latest", "v1.0", "v1.1", "v2"]
    assert match_tags(tags, ["V1*"]) == []  # globs are case-sensitive, as tags are


def test_loopback_hosts() -> None:
    for host in ("localhost", "localhost:5000", "127.0.0.1", "127.0.0.1:80", "[::1]:5000"):
        assert is_loopback_host(host)
    for host in ("ghcr.io", "10.0.0.1:5000", "localhost.example.com", "[::2]:5000"):
        assert not is_loopback_host(host)
