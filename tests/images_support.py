"""A world for checking images: the simulator (its Rekor v1 log and trust files, its CA
signing as cosign does) and a real registry on loopback, with pushes of images and their
signatures in each form cosign leaves."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from monitor.config.load import parse_settings
from monitor.config.models import Settings
from monitor.core.imageref import Repository, parse_repository
from monitor.images import ImageChecker, LogTies, Ours
from monitor.imagesig import ImageArtifact, ImageVerifier
from monitor.imagesig.artifacts import ANNOTATION_BUNDLE
from monitor.registry.client import RegistryClient
from monitor.sim.ca import GitHubWorkflow, SimCA
from monitor.sim.images import ImageSigner, SignedArtifact
from monitor.sim.pool import EmailIdentity
from tests.registry_support import Layer, Pushed, Pusher, RunningRegistry
from tests.simlog import FAST, Harness, harness, run

OURS = GitHubWorkflow("acme", "app")
THEIRS = EmailIdentity("mallory@evil.example")
EXPECT = {"san": "https://github.com/acme/app/*", "issuer": OURS.issuer}
SEED = 5  # the harness's


def config_doc(h: Harness, trust_dir: Path, images: list[dict[str, Any]]) -> dict[str, Any]:
    """A configuration reading the simulator's Rekor v1 log, with ``images``."""
    return {
        "trust": {
            "trusted_root": str(trust_dir / "trusted_root.json"),
            "signing_config": str(trust_dir / "signing_config.json"),
        },
        "logs": [
            {
                "name": "sim-v1",
                "api": "v1",
                "url": h.sim.base_url,
                "requests_per_second": 100,
                "burst": 50,
                "timeout": "2s",
            },
            {"name": "sim-v2", "api": "v2", "discover": True, "requests_per_second": 100},
        ],
        "images": images,
    }


@dataclass
class World:
    h: Harness
    registry: RunningRegistry
    tmp: Path
    signer: ImageSigner
    settings: Settings
    session: aiohttp.ClientSession

    def checker(self, ours: Ours | None = None) -> ImageChecker:
        root = (self.tmp / "trusted_root.json").read_bytes()
        ties = LogTies(
            self.h.trust, self.settings.logs, self.session, metrics=self.h.metrics, ours=ours
        )
        return ImageChecker(ImageVerifier(root), ties)

    def client(self, repo: Repository) -> RegistryClient:
        return RegistryClient(
            repo, self.session, metrics=self.h.metrics, http_policy=FAST, insecure_http=True
        )

    def repo(self, name: str) -> tuple[Repository, Pusher]:
        return (
            parse_repository(f"{self.registry.host}/{name}"),
            Pusher(self.session, self.registry, name),
        )

    def write_config(self, images: list[dict[str, Any]]) -> Path:
        path = self.tmp / "monitor.yaml"
        path.write_text(yaml.safe_dump(config_doc(self.h, self.tmp, images), sort_keys=False))
        return path


@asynccontextmanager
async def world(tmp_path: Path, registry: RunningRegistry) -> AsyncIterator[World]:
    async with harness(tmp_path, entries=40, shards=2) as h:
        signer = ImageSigner.of(h.sim.state, SimCA.create(SEED))
        settings = parse_settings(yaml.safe_dump(config_doc(h, tmp_path, [])))
        yield World(h, registry, tmp_path, signer, settings, h.session)


def layer(a: ImageArtifact) -> Layer:
    return Layer(a.media_type, a.payload, a.annotations)


async def push_sig(pusher: Pusher, image: Pushed, *made: SignedArtifact) -> None:
    await pusher.legacy(image.digest, ".sig", [layer(m.artifact) for m in made])


async def push_att(pusher: Pusher, image: Pushed, *made: SignedArtifact) -> None:
    await pusher.legacy(image.digest, ".att", [layer(m.artifact) for m in made])


async def push_bundle(pusher: Pusher, image: Pushed, made: SignedArtifact, **kw: Any) -> None:
    """As cosign 3 does on a registry without the referrers API: the fallback tag."""
    await pusher.bundle_referrer(image, made.artifact.payload, **kw)


def renumbered(
    made: SignedArtifact, index: int, *, signed_by: ImageSigner | None = None
) -> ImageArtifact:
    """A legacy artifact whose log promise names ``index`` instead. Without ``signed_by``
    the SET no longer verifies (the registry claims an entry, the log never said so); with
    it, the log itself signs the promise of an entry it holds otherwise (the log lies)."""
    doc = json.loads(made.artifact.annotations[ANNOTATION_BUNDLE])
    doc["Payload"]["logIndex"] = index
    if signed_by is not None:
        body = base64.b64decode(doc["Payload"]["body"])
        doc["Payload"]["integratedTime"] = signed_by.log.integrated_time(index)
        sig = signed_by.log.set_for(index, body, signed_by.log_id)
        doc["SignedEntryTimestamp"] = base64.b64encode(sig).decode()
    annotations = {**made.artifact.annotations, ANNOTATION_BUNDLE: json.dumps(doc)}
    return ImageArtifact(
        made.artifact.form, made.artifact.media_type, made.artifact.payload, annotations
    )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def in_world(
    tmp_path: Path, registry: RunningRegistry, body: Callable[[World], Awaitable[None]]
) -> None:
    """``body`` run in a world of its own on ``registry``."""

    async def go() -> None:
        async with world(tmp_path, registry) as w:
            await body(w)

    run(go)
