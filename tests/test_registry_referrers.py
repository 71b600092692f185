"""The OCI 1.1 referrers API (which distribution 2.8 lacks) and tag pagination by ``n`` and
``last`` with ``Link``, against a small OCI endpoint in the tests; a basic-auth challenge."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from monitor.core.errors import RegistryAuthError, RegistryError
from monitor.core.imageref import Repository, parse_repository
from monitor.core.metrics import ClientMetrics
from monitor.registry.auth import ANONYMOUS, Credentials, same_site
from monitor.registry.client import RegistryClient, RegistryPolicy
from monitor.registry.media import SIGSTORE_BUNDLE, Descriptor
from tests.oci_referrers import OCI_INDEX, OCI_MANIFEST, OciEndpoint, serving
from tests.simlog import FAST, run

SPDX = "application/spdx+json"
DEFAULT_POLICY = RegistryPolicy()
Body = Callable[[RegistryClient, Repository], Awaitable[None]]


def against(
    endpoint: OciEndpoint,
    body: Body,
    *,
    credentials: Credentials = ANONYMOUS,
    policy: RegistryPolicy = DEFAULT_POLICY,
) -> None:
    async def go() -> None:
        async with aiohttp.ClientSession() as session, serving(endpoint):
            repo = parse_repository(f"127.0.0.1:{endpoint.port}/acme/app")
            client = RegistryClient(
                repo,
                session,
                metrics=ClientMetrics(CollectorRegistry()),
                credentials=credentials,
                http_policy=FAST,
                policy=policy,
                insecure_http=True,
            )
            await body(client, repo)

    run(go)


def image_with_referrers(endpoint: OciEndpoint, bundles: int, sboms: int) -> tuple[str, list[str]]:
    """An image and ``bundles`` Sigstore bundle referrers and ``sboms`` SPDX ones."""
    config = endpoint.blob(b"{}")
    image, raw = endpoint.put(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": []}, "v1"
    )
    subject = {"mediaType": OCI_MANIFEST, "digest": image, "size": len(raw)}
    made = []
    for i in range(bundles + sboms):
        kind = SIGSTORE_BUNDLE if i < bundles else SPDX
        layer = endpoint.blob(f'{{"n": {i}}}'.encode())
        digest, _ = endpoint.put(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": kind,
                "config": config,
                "layers": [layer],
                "subject": subject,
                "annotations": {"n": str(i)},
            }
        )
        made.append(digest)
    return image, made


def test_referrers_api_pages_and_filter() -> None:
    endpoint = OciEndpoint(page_size=2)
    image, made = image_with_referrers(endpoint, bundles=3, sboms=2)

    async def body(client: RegistryClient, repo: Repository) -> None:
        every = await client.referrers(repo, image)
        assert every.source == "api"
        assert sorted(d.digest for d in every.descriptors) == sorted(made)  # three pages
        bundles = await client.referrers(repo, image, SIGSTORE_BUNDLE)
        assert bundles.source == "api"
        assert sorted(d.digest for d in bundles.descriptors) == sorted(made[:3])
        assert {d.artifact_type for d in bundles.descriptors} == {SIGSTORE_BUNDLE}
        none = await client.referrers(repo, "sha256:" + "2" * 64)
        assert none.source == "api"  # the API answers an empty index, not a 404
        assert none.descriptors == ()
        found = await client.attachments(repo, image, SIGSTORE_BUNDLE)
        assert len(found.referrers.descriptors) == 3
        assert found.signatures is None
        assert found.attestations is None

    against(endpoint, body)


def test_referrers_filtered_when_the_registry_ignores_the_filter() -> None:
    endpoint = OciEndpoint(mode="ignore_filter", page_size=10)
    image, made = image_with_referrers(endpoint, bundles=1, sboms=2)

    async def body(client: RegistryClient, repo: Repository) -> None:
        bundles = await client.referrers(repo, image, SIGSTORE_BUNDLE)
        assert [d.digest for d in bundles.descriptors] == [made[0]]

    against(endpoint, body)


def test_too_many_referrer_pages() -> None:
    endpoint = OciEndpoint(page_size=1)
    image, _ = image_with_referrers(endpoint, bundles=4, sboms=0)

    async def body(client: RegistryClient, repo: Repository) -> None:
        with pytest.raises(Exception, match=r"\(referrers\): more than 3 pages"):
            await client.referrers(repo, image)

    against(endpoint, body, policy=RegistryPolicy(max_referrer_pages=3))


def test_tags_paginated_by_link() -> None:
    endpoint = OciEndpoint()
    image, _ = image_with_referrers(endpoint, bundles=0, sboms=0)
    names = [f"v{i:02}" for i in range(11)]
    for name in names:
        endpoint.tags[name] = image

    async def body(client: RegistryClient, repo: Repository) -> None:
        assert await client.tags(repo) == sorted(["v1", *names])  # pages of 4: three Links

    against(endpoint, body, policy=RegistryPolicy(tag_page_size=4))


def test_basic_challenge() -> None:
    endpoint = OciEndpoint(basic=("ci", "pw"))
    image, _ = image_with_referrers(endpoint, bundles=1, sboms=0)

    async def ok(client: RegistryClient, repo: Repository) -> None:
        assert await client.tags(repo) == ["v1"]
        manifest = await client.manifest(repo, "v1")
        assert manifest is not None
        assert manifest.digest == image

    against(endpoint, ok, credentials=Credentials("ci", "pw"))

    async def anonymous(client: RegistryClient, repo: Repository) -> None:
        with pytest.raises(RegistryAuthError, match="wants basic credentials; none accepted"):
            await client.tags(repo)

    against(endpoint, anonymous)

    async def wrong(client: RegistryClient, repo: Repository) -> None:
        with pytest.raises(RegistryAuthError, match="HTTP 401 again"):
            await client.tags(repo)

    against(endpoint, wrong, credentials=Credentials("ci", "nope"))


def test_blobs_from_a_cdn_get_no_credentials() -> None:
    endpoint = OciEndpoint(mode="cdn", basic=("ci", "pw"))
    layer = endpoint.blob(b"signed payload")

    async def body(client: RegistryClient, repo: Repository) -> None:
        d = Descriptor(layer["mediaType"], layer["digest"], layer["size"])
        assert await client.blob(repo, d) == b"signed payload"
        # the registry's credentials stay with the registry (its 401, then the retry)
        assert endpoint.cdn_authorization == [None]

    against(endpoint, body, credentials=Credentials("ci", "pw"))


def test_rate_limited_answers_are_retried() -> None:
    endpoint = OciEndpoint(mode="flaky")
    image, _ = image_with_referrers(endpoint, bundles=1, sboms=0)

    async def body(client: RegistryClient, repo: Repository) -> None:
        assert await client.tags(repo) == ["v1"]
        manifest = await client.manifest(repo, "v1")
        assert manifest is not None
        assert manifest.digest == image
        assert len((await client.referrers(repo, image)).descriptors) == 1

    against(endpoint, body)


def test_a_token_realm_over_plain_http_off_loopback_is_refused() -> None:
    endpoint = OciEndpoint(mode="evil_realm")

    async def body(client: RegistryClient, repo: Repository) -> None:
        with pytest.raises(
            RegistryAuthError,
            match=r"refused a token realm over plain HTTP: http://realm\.example/token",
        ):
            await client.tags(repo)

    against(endpoint, body, credentials=Credentials("ci", "pw"))


def test_a_referrers_api_refused_with_405_falls_back_to_the_tag() -> None:
    endpoint = OciEndpoint(mode="no_api_405")
    image, made = image_with_referrers(endpoint, bundles=2, sboms=0)
    raw = {d: endpoint.manifests[d][0] for d in made}
    listed = [
        {
            "mediaType": OCI_MANIFEST,
            "digest": d,
            "size": len(raw[d]),
            "artifactType": SIGSTORE_BUNDLE,
        }
        for d in made
    ]
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": listed}
    endpoint.put(index, image.replace(":", "-"))

    async def body(client: RegistryClient, repo: Repository) -> None:
        found = await client.referrers(repo, image, SIGSTORE_BUNDLE)
        assert found.source == "fallback"
        assert [d.digest for d in found.descriptors] == made

    against(endpoint, body)

    async def capped(client: RegistryClient, repo: Repository) -> None:
        with pytest.raises(RegistryError, match=r":sha256-[0-9a-f]{64}: more than 1 referrers"):
            await client.referrers(repo, image)

    against(endpoint, capped, policy=RegistryPolicy(max_referrers=1))


def test_access_denied() -> None:
    async def body(client: RegistryClient, repo: Repository) -> None:
        with pytest.raises(RegistryAuthError, match=r"\(tags\): HTTP 403 for .*DENIED"):
            await client.tags(repo)

    against(OciEndpoint(mode="denied"), body)


def test_credentials_never_go_to_a_realm_on_another_site() -> None:
    endpoint = OciEndpoint(mode="foreign_realm")

    async def body(client: RegistryClient, repo: Repository) -> None:
        with pytest.raises(
            RegistryAuthError,
            match=r"refused to send credentials to a token realm on another site: localhost:\d+",
        ):
            await client.tags(repo)

    against(endpoint, body, credentials=Credentials("ci", "pw"))


@pytest.mark.parametrize(
    ("host", "other", "same"),
    [
        ("registry-1.docker.io", "auth.docker.io", True),
        ("ghcr.io", "ghcr.io", True),
        ("ghcr.io", "GHCR.IO:443", True),
        ("quay.io", "quay.io:8443", True),
        ("registry.example.com", "auth.example.com", True),
        ("ghcr.io", "evil.io", False),
        ("registry.example.com", "example.org", False),
        ("127.0.0.1:5000", "127.0.0.1:5001", True),
        ("127.0.0.1:5000", "127.0.0.2:5000", False),
        ("127.0.0.1:5000", "localhost:5000", False),
        ("[::1]:5000", "[::1]:80", True),
        ("localhost:5000", "evil.localhost", False),
    ],
)
def test_same_site(host: str, other: str, same: bool) -> None:
    assert same_site(host, other) is same
