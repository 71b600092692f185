"""The registry client against a real distribution registry on loopback: tags across pages,
manifests by tag and digest, an index and its platforms, cosign's legacy ``.sig`` and
``.att``, a bundle referrer through the fallback tag, blobs checked and capped."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from prometheus_client import CollectorRegistry

from monitor.core.errors import RegistryDigestError, RegistryError
from monitor.core.imageref import Repository, match_tags, parse_repository
from monitor.core.metrics import ClientMetrics
from monitor.registry.client import RegistryClient, RegistryPolicy
from monitor.registry.media import (
    COSIGN_BUNDLE,
    COSIGN_CERTIFICATE,
    COSIGN_SIGNATURE,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    DSSE_ENVELOPE,
    OCI_INDEX,
    SIGSTORE_BUNDLE,
    SIMPLESIGNING,
    Descriptor,
)
from tests.registry_support import (
    LegacySignature,
    Pusher,
    RunningRegistry,
    TokenIssuer,
    plain_registry,
    require_registry,
    simple_signing_payload,
)
from tests.simlog import FAST, run

registry = pytest.fixture(scope="module")(plain_registry)


DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DEFAULT_POLICY = RegistryPolicy()
Body = Callable[[Pusher, RegistryClient, Repository], Awaitable[None]]


def with_client(
    registry: RunningRegistry, name: str, body: Body, policy: RegistryPolicy = DEFAULT_POLICY
) -> None:
    async def go() -> None:
        async with aiohttp.ClientSession() as session:
            repo = parse_repository(f"{registry.host}/{name}")
            client = RegistryClient(
                repo,
                session,
                metrics=ClientMetrics(CollectorRegistry()),
                http_policy=FAST,
                policy=policy,
                insecure_http=True,
            )
            await body(Pusher(session, registry, name), client, repo)

    run(go)


def test_tags_across_pages_and_attached_tags_left_out(registry: RunningRegistry) -> None:
    async def body(push: Pusher, client: RegistryClient, repo: Repository) -> None:
        image = await push.image("v1.0")
        for tag in ("v1.1", "v2.0", "latest", "dev-3", "dev-4", "nightly"):
            await push.raw_manifest(tag, image.raw, image.media_type)
        await push.legacy_sig(image.digest, [LegacySignature(b"{}", "c2ln")])
        tags = await client.tags(repo)  # distribution 2.8 ignores ``n``: one page, no Link
        fallback = image.digest.replace(":", "-")
        assert sorted(tags) == sorted(
            ["v1.0", "v1.1", "v2.0", "latest", "dev-3", "dev-4", "nightly", f"{fallback}.sig"]
        )
        assert match_tags(tags, None) == [
            "dev-3", "dev-4", "latest", "nightly", "v1.0", "v1.1", "v2.0"
        ]  # fmt: skip
        assert match_tags(tags, ["v1.*", "latest"]) == ["latest", "v1.0", "v1.1"]
        assert match_tags(tags, ["sha256-*"]) == []  # never watched, whatever the globs

    with_client(registry, "acme/paged", body, RegistryPolicy(tag_page_size=3))


def test_too_many_tags_is_an_error(registry: RunningRegistry) -> None:
    async def body(push: Pusher, client: RegistryClient, repo: Repository) -> None:
        image = await push.image("a")
        for tag in "bcde":
            await push.raw_manifest(tag, image.raw, image.media_type)
        with pytest.raises(RegistryError, match=r"acme/many \(tags\): more than 4 tags"):
            await client.tags(repo)

    with_client(registry, "acme/many", body, RegistryPolicy(max_tags=4))


def test_manifests_by_tag_and_digest(registry: RunningRegistry) -> None:
    async def body(push: Pusher, client: RegistryClient, repo: Repository) -> None:
        image = await push.image("v1")
        by_tag = await client.manifest(repo, "v1")
        assert by_tag is not None
        assert by_tag.digest == image.digest
        assert by_tag.raw == image.raw
        assert not by_tag.is_index
        assert len(by_tag.layers) == 1
        assert by_tag.config is not None
        by_digest = await client.manifest(repo, image.digest)
        assert by_digest == by_tag
        assert await client.head(repo, "v1") == image.digest
        assert await client.manifest(repo, "absent") is None
        assert await client.head(repo, "absent") is None
        assert await client.manifest(repo, "sha256:" + "0" * 64) is None
        with pytest.raises(RegistryError, match="is not a sha256 or sha512 digest"):
            await client.manifest(repo, "sha256:abc")
        other = parse_repository("ghcr.io/acme/app")
        with pytest.raises(RegistryError, match="belongs to another registry"):
            await client.manifest(other, "v1")
        with pytest.raises(RegistryError, match=r"acme/none \(tags\): no such repository"):
            await client.tags(replace(repo, name="acme/none"))
        with pytest.raises(RegistryError, match="not a repository name"):
            await client.tags(replace(repo, name="../acme/app"))
        with pytest.raises(RegistryError, match=r"acme/app:v1\?n=1: not a tag or digest"):
            await client.manifest(repo, "v1?n=1")
        with pytest.raises(RegistryError, match="acme/app:a/b: not a tag or digest"):
            await client.head(repo, "a/b")

    with_client(registry, "acme/app", body)


def test_index_and_its_platforms(registry: RunningRegistry) -> None:
    async def body(push: Pusher, client: RegistryClient, repo: Repository) -> None:
        index, images = await push.multi_arch("multi", ("amd64", "arm64", "s390x"))
        got = await client.manifest(repo, "multi")
        assert got is not None
        assert got.is_index
        assert got.media_type == OCI_INDEX
        assert got.digest == index.digest
        assert [str(d.platform) for d in got.manifests] == [
            "linux/amd64",
            "linux/arm64",
            "linux/s390x",
        ]
        children = await client.platforms(repo, got)
        assert [c.digest for c in children] == [i.digest for i in images]
        with pytest.raises(RegistryError, match="is not an index"):
            await client.platforms(repo, children[0])

    with_client(registry, "acme/multi", body)


def test_legacy_signatures_and_attestations(registry: RunningRegistry) -> None:
    async def body(push: Pusher, client: RegistryClient, repo: Repository) -> None:
        image = await push.image("v1")
        payload = simple_signing_payload(str(repo), image.digest)
        bundle = json.dumps({"SignedEntryTimestamp": "TUVVQw==", "Payload": {"logIndex": 7}})
        cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
        await push.legacy_sig(
            image.digest,
            [LegacySignature(payload, "MEUCIQ==", cert, bundle), LegacySignature(payload, "MEQC")],
        )
        envelope = json.dumps({"payloadType": "application/vnd.in-toto+json"}).encode()
        await push.legacy_att(image.digest, [(envelope, "https://slsa.dev/provenance/v1")])

        found = await client.attachments(repo, image.digest)
        assert found.signatures is not None
        assert found.attestations is not None
        first, second = found.signatures.layers
        assert first.media_type == SIMPLESIGNING
        assert first.size == len(payload)
        assert first.annotations[COSIGN_SIGNATURE] == "MEUCIQ=="
        assert first.annotations[COSIGN_CERTIFICATE] == cert
        assert first.annotations[COSIGN_BUNDLE] == bundle
        assert second.annotations[COSIGN_SIGNATURE] == "MEQC"
        assert COSIGN_BUNDLE not in second.annotations
        assert await client.blob(repo, first) == payload
        assert first.as_json() == {
            "mediaType": SIMPLESIGNING,
            "digest": first.digest,
            "size": len(payload),
            "annotations": dict(first.annotations),
        }
        (att,) = found.attestations.layers
        assert att.media_type == DSSE_ENVELOPE
        assert att.annotations["predicateType"] == "https://slsa.dev/provenance/v1"
        assert await client.blob(repo, att) == envelope
        assert found.referrers.source == "none"
        assert found.referrers.descriptors == ()

        with pytest.raises(RegistryError, match=f"blob of {len(payload)} bytes exceeds 100"):
            await client.blob(repo, first, max_bytes=100)
        # a descriptor that names another size than the blob's
        with pytest.raises(RegistryDigestError, match=rf"{len(payload)} bytes, not the 10 named"):
            await client.blob(repo, replace(first, size=10))

        unsigned = await push.image("v2")
        nothing = await client.attachments(repo, unsigned.digest)
        assert nothing.signatures is None
        assert nothing.attestations is None

    with_client(registry, "acme/signed", body)


def test_bundle_referrer_through_the_fallback_tag(registry: RunningRegistry) -> None:
    async def body(push: Pusher, client: RegistryClient, repo: Repository) -> None:
        image = await push.image("v1")
        bundle = json.dumps({"mediaType": SIGSTORE_BUNDLE}).encode()
        first = await push.bundle_referrer(image, bundle)
        second = await push.bundle_referrer(image, bundle + b" ")
        other = await push.blob(b"{}", "application/vnd.oci.empty.v1+json")
        await push.add_to_fallback(
            image.digest, {**other.descriptor(), "artifactType": "application/spdx+json"}
        )
        got = await client.referrers(repo, image.digest)
        assert got.source == "fallback"  # distribution 2.8 has no referrers API
        assert [d.digest for d in got.descriptors] == [first.digest, second.digest, other.digest]
        bundles = await client.referrers(repo, image.digest, SIGSTORE_BUNDLE)
        assert [d.digest for d in bundles.descriptors] == [first.digest, second.digest]
        d = bundles.descriptors[0]
        assert d.annotations["dev.sigstore.bundle.predicateType"] == (
            "https://sigstore.dev/cosign/sign/v1"
        )
        referrer = await client.manifest(repo, d.digest)
        assert referrer is not None
        assert referrer.subject is not None
        assert referrer.subject.digest == image.digest
        assert referrer.artifact_type == SIGSTORE_BUNDLE
        assert await client.blob(repo, referrer.layers[0]) == bundle

    with_client(registry, "acme/bundled", body)


def test_fallback_tag_that_is_no_index(registry: RunningRegistry) -> None:
    async def body(push: Pusher, client: RegistryClient, repo: Repository) -> None:
        image = await push.image("v1")
        await push.raw_manifest(image.digest.replace(":", "-"), image.raw, image.media_type)
        with pytest.raises(RegistryError, match="fallback tag is not an index"):
            await client.referrers(repo, image.digest)

    with_client(registry, "acme/odd", body)


def test_blob_that_is_not_there(registry: RunningRegistry) -> None:
    async def body(push: Pusher, client: RegistryClient, repo: Repository) -> None:
        await push.image("v1")
        absent = Descriptor("application/octet-stream", "sha256:" + "1" * 64, 4)
        with pytest.raises(RegistryError, match="blob not found"):
            await client.blob(repo, absent)

    with_client(registry, "acme/blobs", body)


def test_digest_checked_on_a_blob(registry: RunningRegistry, tmp_path: Path) -> None:
    """A blob's bytes changed on the registry's disk behind its digest: refused."""

    async def body(push: Pusher, client: RegistryClient, repo: Repository) -> None:
        blob = await push.blob(b"the real bytes")
        hexdigest = blob.digest.split(":")[1]
        stored = next(registry.root.glob(f"data/**/blobs/sha256/{hexdigest[:2]}/{hexdigest}/data"))
        stored.write_bytes(b"other  bytes!!")  # same length, other content
        d = Descriptor("application/octet-stream", blob.digest, len(blob.raw))
        with pytest.raises(RegistryDigestError, match=r"registry_digest: .*bytes hash to sha256:"):
            await client.blob(repo, d)

    with_client(registry, "acme/tampered", body)


def test_docker_v2_manifests_and_lists(registry: RunningRegistry) -> None:
    async def body(push: Pusher, client: RegistryClient, repo: Repository) -> None:
        children = []
        for arch in ("amd64", "arm64"):
            layer = await push.blob(os.urandom(64), DOCKER_LAYER)
            config = await push.blob(
                json.dumps({"architecture": arch, "os": "linux"}).encode(), DOCKER_CONFIG
            )
            doc = {
                "schemaVersion": 2,
                "mediaType": DOCKER_MANIFEST,
                "config": config.descriptor(),
                "layers": [layer.descriptor()],
            }
            child = await push.manifest(None, doc, DOCKER_MANIFEST)
            children.append((child, arch))
        listed = [c.descriptor(platform={"os": "linux", "architecture": a}) for c, a in children]
        doc = {"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": listed}
        pushed = await push.manifest("latest", doc, DOCKER_LIST)
        got = await client.manifest(repo, "latest")
        assert got is not None
        assert got.digest == pushed.digest
        assert got.media_type == DOCKER_LIST
        assert got.is_index
        platforms = await client.platforms(repo, got)
        assert [m.media_type for m in platforms] == [DOCKER_MANIFEST, DOCKER_MANIFEST]
        assert [m.digest for m in platforms] == [c.digest for c, _ in children]
        assert [str(d.platform) for d in got.manifests] == ["linux/amd64", "linux/arm64"]
        assert got.manifests[1].as_json()["platform"] == {"os": "linux", "architecture": "arm64"}

    with_client(registry, "acme/docker", body)


def test_a_signed_image_carries_what_verification_needs(registry: RunningRegistry) -> None:
    """What the registry side hands on is enough to check the signature: the payload (by its
    digest), the signature and certificate annotations, and the image digest it names."""
    issuer = TokenIssuer()  # any EC key and its certificate will do for the registry side
    cert_pem = issuer.pem().decode()

    async def body(push: Pusher, client: RegistryClient, repo: Repository) -> None:
        image = await push.image("v1")
        payload = simple_signing_payload(str(repo), image.digest)
        signature = issuer.key.sign(payload, ec.ECDSA(hashes.SHA256()))
        await push.legacy_sig(
            image.digest,
            [LegacySignature(payload, base64.b64encode(signature).decode(), cert_pem)],
        )
        digest = await client.head(repo, "v1")
        assert digest is not None
        sig = await client.legacy_signatures(repo, digest)
        assert sig is not None
        (layer,) = sig.layers
        got = await client.blob(repo, layer)
        claimed = json.loads(got)["critical"]["image"]["docker-manifest-digest"]
        assert claimed == digest
        cert = x509.load_pem_x509_certificate(layer.annotations[COSIGN_CERTIFICATE].encode())
        public = cert.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        raw_signature = base64.b64decode(layer.annotations[COSIGN_SIGNATURE])
        public.verify(raw_signature, got, ec.ECDSA(hashes.SHA256()))
        with pytest.raises(InvalidSignature):
            public.verify(raw_signature, got + b" ", ec.ECDSA(hashes.SHA256()))

    with_client(registry, "acme/verified", body)


def test_a_missing_registry_program_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="CI must run the registry tests"):
        require_registry()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="docker-registry is not installed"):
        require_registry()


def test_plain_http_only_on_loopback() -> None:
    async def go() -> None:
        async with aiohttp.ClientSession() as session:
            only = r"^ghcr\.io/acme/app: plain HTTP is only for loopback$"
            with pytest.raises(RegistryError, match=only):
                RegistryClient(
                    parse_repository("ghcr.io/acme/app"),
                    session,
                    metrics=ClientMetrics(CollectorRegistry()),
                    insecure_http=True,
                )

    run(go)
