"""A registry that lies or floods: every case a clear error, bounded in bytes and requests."""

from __future__ import annotations

import time

import pytest

from monitor.core.errors import RegistryDigestError, RegistryError
from monitor.core.imageref import Repository
from monitor.registry.client import RegistryClient, RegistryPolicy
from tests.oci_referrers import OCI_INDEX, OciEndpoint
from tests.test_registry_referrers import against, image_with_referrers


def test_manifest_bytes_that_do_not_match_the_digest() -> None:
    endpoint = OciEndpoint(mode="wrong_bytes")
    image, _ = image_with_referrers(endpoint, bundles=0, sboms=0)

    async def body(client: RegistryClient, repo: Repository) -> None:
        with pytest.raises(RegistryDigestError) as caught:
            await client.manifest(repo, image)
        assert str(caught.value).startswith(f"registry_digest: {repo}@{image}: bytes hash to")
        # by tag, the bytes must hash to the digest the registry claims for them
        with pytest.raises(RegistryDigestError, match=rf"{repo}:v1: bytes hash to .*not {image}"):
            await client.manifest(repo, "v1")

    against(endpoint, body)


def test_a_tag_served_with_another_digest_claimed() -> None:
    endpoint = OciEndpoint(mode="wrong_claim")
    image, _ = image_with_referrers(endpoint, bundles=0, sboms=0)

    async def body(client: RegistryClient, repo: Repository) -> None:
        with pytest.raises(RegistryDigestError, match=":v1: bytes hash to"):
            await client.manifest(repo, "v1")
        with pytest.raises(RegistryDigestError, match="served with Docker-Content-Digest"):
            await client.manifest(repo, image)

    against(endpoint, body)


def test_oversized_manifest() -> None:
    endpoint = OciEndpoint(mode="huge_manifest")
    image_with_referrers(endpoint, bundles=0, sboms=0)

    async def body(client: RegistryClient, repo: Repository) -> None:
        with pytest.raises(
            RegistryError, match=rf"{repo}:v1: response of \d+ bytes exceeds 4194304"
        ):
            await client.manifest(repo, "v1")

    against(endpoint, body)


def test_oversized_tag_list() -> None:
    endpoint = OciEndpoint(mode="huge_tags")

    async def body(client: RegistryClient, repo: Repository) -> None:
        with pytest.raises(RegistryError, match=r"\(tags\): response of \d+ bytes exceeds 65536"):
            await client.tags(repo)

    against(endpoint, body, policy=RegistryPolicy(max_page_bytes=65536))


@pytest.mark.parametrize(
    ("mode", "problem"),
    [
        ("tags_loop", "tag list pagination loops"),
        ("tags_endless", "more than 50 pages of tags"),
        ("off_host", "refused a next page off the repository: https://elsewhere.example/"),
    ],
)
def test_pagination_that_never_ends_or_leaves(mode: str, problem: str) -> None:
    endpoint = OciEndpoint(mode=mode)
    image_with_referrers(endpoint, bundles=0, sboms=0)

    async def body(client: RegistryClient, repo: Repository) -> None:
        started = time.monotonic()
        with pytest.raises(RegistryError, match=rf"^{repo} \(tags\): {problem}"):
            await client.tags(repo)
        assert time.monotonic() - started < 10

    against(endpoint, body, policy=RegistryPolicy(max_tag_pages=50))


def test_index_with_too_many_children_and_a_missing_one() -> None:
    endpoint = OciEndpoint()
    image_with_referrers(endpoint, bundles=0, sboms=0)
    child = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 10}
    children = [{**child, "digest": "sha256:" + f"{i:064x}"} for i in range(5)]
    endpoint.put({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}, "multi")

    async def body(client: RegistryClient, repo: Repository) -> None:
        index = await client.manifest(repo, "multi")
        assert index is not None
        with pytest.raises(RegistryError, match="index of more than 4"):
            await client.platforms(repo, index)

    against(endpoint, body, policy=RegistryPolicy(max_index_children=4))

    async def missing(client: RegistryClient, repo: Repository) -> None:
        index = await client.manifest(repo, "multi")
        assert index is not None
        with pytest.raises(RegistryError, match=f"index child {children[0]['digest']} is missing"):
            await client.platforms(repo, index)

    against(endpoint, missing)


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ({"schemaVersion": 1, "name": "x"}, "schemaVersion is not 2"),
        ({"schemaVersion": 2, "mediaType": "text/plain"}, "is no manifest or index"),
        (
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"digest": "md5:x"}]},
            "manifests\\[0\\].digest",
        ),
        ({"schemaVersion": 2, "config": {}, "layers": 3}, "config.digest: missing"),
    ],
)
def test_malformed_manifests(doc: dict[str, object], problem: str) -> None:
    endpoint = OciEndpoint()
    endpoint.put(doc, "bad")

    async def body(client: RegistryClient, repo: Repository) -> None:
        with pytest.raises(RegistryError, match=rf"{repo}:bad: malformed manifest: .*{problem}"):
            await client.manifest(repo, "bad")

    against(endpoint, body)


@pytest.mark.parametrize(
    ("mode", "problem"),
    [
        ("tags_not_strings", r"malformed tag list: tags\[1\]: expected a string, got int"),
        ("tags_bad", r"bad tag '-x\\x1b\[2J'"),
        ("tags_not_object", "malformed tag list: .*expected an object, got a list"),
    ],
)
def test_malformed_tag_lists(mode: str, problem: str) -> None:
    endpoint = OciEndpoint(mode=mode)

    async def body(client: RegistryClient, repo: Repository) -> None:
        with pytest.raises(RegistryError, match=rf"^{repo} \(tags\): {problem}"):
            await client.tags(repo)

    against(endpoint, body)
