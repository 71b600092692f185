"""What the demo plants in the simulated logs, and when.

A round is four entries: a release of tlog-demo/app by its release workflow (expected: the
monitor records it and stays quiet), then the three surprises that ``config/demo.yaml``'s
rules catch: the app signed by another workflow of its repository, a use of the watched
release key, and an image of the app attested by the workflow of another repository. The
first round comes quickly, so that a newcomer sees every kind of alert within half a
minute; later rounds are slower, so that the output stays readable.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from monitor.core.aio import wait_any
from monitor.sim.ca import GitHubWorkflow, derive_ec_key
from monitor.sim.factory import Plan, PlantIdentity, PlantImage, PlantKey
from monitor.sim.server import SimState

IMAGE = "ghcr.io/tlog-demo/app"

RELEASE = GitHubWorkflow(
    owner="tlog-demo",
    repo="app",
    workflow_file="release.yml",
    ref="refs/tags/v1.4.2",
    workflow_name="Release",
    trigger="push",
    repository_id="700100",
    owner_id="700000",
)
"""The legitimate signer of tlog-demo/app."""

ROGUE = GitHubWorkflow(
    owner="tlog-demo",
    repo="app",
    workflow_file="debug.yml",
    ref="refs/heads/patch-1",
    workflow_name="Debug",
    trigger="workflow_dispatch",
    repository_id="700100",
    owner_id="700000",
)
"""The same repository, another workflow on a branch: someone with push access signing."""

WRONG_WORKFLOW = GitHubWorkflow(
    owner="tlog-demo",
    repo="website",
    workflow_file="deploy.yml",
    ref="refs/heads/main",
    workflow_name="Deploy",
    trigger="push",
    repository_id="700200",
    owner_id="700000",
)
"""Another repository's workflow, which has no business attesting the app's images."""


@cache
def release_key_pem() -> bytes:
    """The release key's private key (PKCS#8 PEM): the simulator signs the planted entries
    with it, as the release process would. The demo's rule watches its public half."""
    key = derive_ec_key(0, "demo:release-key", ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def release_key_fingerprint() -> str:
    """``sha256:<hex>`` of the public key's DER SubjectPublicKeyInfo, as rules and findings
    name it (``config/demo.yaml``'s release-key rule)."""
    key = serialization.load_pem_private_key(release_key_pem(), password=None)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"sha256:{hashlib.sha256(der).hexdigest()}"


@dataclass(frozen=True)
class Planted:
    """One entry to plant: the plan, what it is in words, and the rule that should alert."""

    plan: Plan
    what: str
    alert_rule: str | None  # None: an expected use, recorded without an alert


def _digest(round_no: int, label: str) -> str:
    return hashlib.sha256(f"tlog-monitor demo:{label}:{round_no}".encode()).hexdigest()


def rounds() -> Iterator[Planted]:
    """The plants, round after round, each with artifacts of its own."""
    n = 0
    while True:
        n += 1
        release = _digest(n, "release")
        yield Planted(
            PlantImage(IMAGE, release, RELEASE),
            f"{IMAGE}@sha256:{release[:12]}... attested by its release workflow",
            None,
        )
        yield Planted(
            PlantIdentity(ROGUE, "hashedrekord", _digest(n, "rogue")),
            f"tlog-demo/app signed by {ROGUE.workflow_file} on {ROGUE.ref}",
            "app-release-signing",
        )
        yield Planted(
            PlantKey(release_key_pem(), _digest(n, "key")),
            "an artifact signed with the watched release key",
            "release-key",
        )
        yield Planted(
            PlantImage(IMAGE, _digest(n, "image"), WRONG_WORKFLOW),
            f"{IMAGE} attested by tlog-demo/website's {WRONG_WORKFLOW.workflow_file}",
            "app-image",
        )


ROUND = 4  # plants in a round


class Planter:
    """Plants the next entry every so often, just past the end of both logs (they grow
    together, and a planted index holds the same entry in each)."""

    def __init__(
        self,
        state: SimState,
        emit: Callable[[str], None],
        *,
        first_gap: float = 3.0,
        gap: float = 10.0,
    ) -> None:
        self.state = state
        self.emit = emit
        self.first_gap = first_gap
        self.gap = gap
        self.planted: list[tuple[int, Planted]] = []

    def plant(self, item: Planted) -> int:
        index = max(self.state.v1.size, self.state.v2.size) + 1
        self.state.v1.factory.plant(index, item.plan)
        self.planted.append((index, item))
        return index

    async def run(self, stop: asyncio.Event) -> None:
        for n, item in enumerate(rounds()):
            await wait_any([stop], self.first_gap if n < ROUND else self.gap)
            if stop.is_set():
                return
            index = self.plant(item)
            if item.alert_rule is None:
                expect = "expected: recorded, no alert"
            else:
                expect = f"rule {item.alert_rule} should alert"
            self.emit(f"  planted  #{index}: {item.what} ({expect})")
