"""The simulator signing images (its CA with embedded SCTs, its Rekor v1 log) and a verifier
against its trusted root, for the image-signature tests: ``sim = pytest.fixture(scope=
"module")(sim_world)``."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from monitor.imagesig import (
    ImageArtifact,
    ImageVerifier,
    Verdict,
)
from monitor.rules.spec import Selector
from monitor.sim.ca import GitHubWorkflow
from monitor.sim.images import ImageSigner
from monitor.sim.pool import EmailIdentity
from monitor.sim.run import SimConfig, build_state, trusted_root

OURS = GitHubWorkflow("acme", "app")
THEIRS = EmailIdentity("mallory@evil.example")
REF = "registry.sim/acme/app"
IMAGE = "sha256:" + hashlib.sha256(b"image manifest").hexdigest()
EXPECT = Selector.parse({"san": "https://github.com/acme/app/*", "issuer": OURS.issuer})
OTHER = "sha256:" + hashlib.sha256(b"another manifest").hexdigest()


@dataclasses.dataclass
class Sim:
    signer: ImageSigner
    root: dict[str, Any]
    verifier: ImageVerifier


def sim_world() -> Sim:
    state, ca = build_state(SimConfig(entries=30), 8080)
    root = trusted_root(state, ca, "http://127.0.0.1:8080")
    signer = ImageSigner.of(state, ca)
    return Sim(signer, root, ImageVerifier(json.dumps(root).encode()))


def check(sim: Sim, artifact: ImageArtifact, index: int, digest: str = IMAGE) -> Verdict:
    return sim.verifier.verify(artifact, digest, sim.signer.proof(index))
