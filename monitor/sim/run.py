"""Start the simulator: build its logs from a seed, write the trust files that describe them,
serve them, and (optionally) keep them growing."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from monitor.core.encoding import b64encode
from monitor.sim.ca import SimCA
from monitor.sim.ct import SimCTLog
from monitor.sim.factory import EntryFactory
from monitor.sim.faults import Faults
from monitor.sim.logs import SimV1Log, SimV2Log, check_key_name
from monitor.sim.server import V2_PREFIX, SimState, build_app
from monitor.sim.signing import NoteSigner, log_vkey
from monitor.sim.witnesses import WitnessSet

V2_SHARD = "log2025-sim"


@dataclass(frozen=True)
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 0
    entries: int = 1000  # initial entries in each log
    v2_entries: int | None = None  # default: same as entries
    seed: int = 1
    shards: int = 2  # v1 trees: shards - 1 frozen ones, then the active one
    rate: float = 0.0  # entries a second appended to each log while running
    v1_key_name: str = "host"  # host, netloc or a name: see ``v1_key_name``
    witnesses: int = 3  # cosigners of Rekor v2 checkpoints (``witnesses.py``)
    witness_quorum: int = 2  # how many of them the written policy requires


def v1_key_name(choice: str, host: str, port: int) -> str:
    """The name Rekor v1 signs its checkpoints under (and the origin's first part).

    Real Rekor v1 signs under its configured hostname (the machine's by default: a Kubernetes
    pod's name), so ``host`` is the URL's host without the port, as the public log's
    ``rekor.sigstore.dev``; ``netloc`` is host:port; anything else is taken as the name.
    """
    if choice == "host":
        return host
    if choice == "netloc":
        return f"{host}:{port}"
    return check_key_name(choice)


def build_state(config: SimConfig, port: int) -> tuple[SimState, SimCA]:
    host = f"{config.host}:{port}"
    ca = SimCA.create(config.seed)
    factory = EntryFactory(config.seed, ca)
    name = v1_key_name(config.v1_key_name, config.host, port)
    v1 = SimV1Log(NoteSigner.ecdsa(name, config.seed, "rekor-v1"), factory)
    v2_origin = f"{host}{V2_PREFIX}{V2_SHARD}"
    v2 = SimV2Log(v2_origin, NoteSigner.ed25519(v2_origin, config.seed, "rekor-v2"), factory)
    # earlier shards first: each frozen one holds an equal share of the v1 entries
    per_shard = config.entries // max(1, config.shards)
    for _ in range(config.shards - 1):
        v1.append(per_shard, backlog=True)
        v1.rotate()
    v1.append(config.entries - v1.size, backlog=True)
    v2.append(config.entries if config.v2_entries is None else config.v2_entries)
    log_id = hashlib.sha256(v1.signer.public_spki()).digest()
    witnesses = WitnessSet.seeded(config.seed, config.witnesses, config.witness_quorum, v1.clock)
    state = SimState(v1=v1, v2_shards={V2_SHARD: v2}, v1_log_id=log_id, witnesses=witnesses)
    return state, ca


def trusted_root(state: SimState, ca: SimCA, base_url: str) -> dict[str, Any]:
    start = (datetime.now(UTC) - timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ")
    v1 = {
        "baseUrl": base_url,
        "hashAlgorithm": "SHA2_256",
        "publicKey": {
            "rawBytes": b64encode(state.v1.signer.public_spki()),
            "keyDetails": "PKIX_ECDSA_P256_SHA_256",
            "validFor": {"start": start},
        },
        "logId": {"keyId": b64encode(state.v1_log_id)},
    }
    v2 = [
        {
            "baseUrl": f"{base_url}{V2_PREFIX}{name}",
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": b64encode(log.signer.public_spki()),
                "keyDetails": "PKIX_ED25519",
                "validFor": {"start": start},
            },
            # Rekor v2's log ID is the full C2SP key hash
            "logId": {"keyId": b64encode(_ed25519_key_hash(log.signer))},
        }
        for name, log in state.v2_shards.items()
    ]
    return {
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [v1, *v2],
        "certificateAuthorities": [ca.trust_root_ca_json()],
        "ctlogs": [SimCTLog.create(ca.seed).trust_root_json(start)],
        "timestampAuthorities": [],
    }


def _ed25519_key_hash(signer: NoteSigner) -> bytes:
    raw = signer.public_spki()[-32:]
    return hashlib.sha256(signer.name.encode() + b"\n\x01" + raw).digest()


def signing_config(state: SimState, base_url: str) -> dict[str, Any]:
    start = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def service(url: str, version: int) -> dict[str, Any]:
        return {
            "url": url,
            "majorApiVersion": version,
            "validFor": {"start": start},
            "operator": "tlog-monitor-sim",
        }

    v2 = [service(f"{base_url}{V2_PREFIX}{name}", 2) for name in reversed(state.v2_shards)]
    return {
        "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
        "caUrls": [],
        "oidcUrls": [],
        "rekorTlogUrls": [*v2, service(base_url, 1)],
        "tsaUrls": [],
        "rekorTlogConfig": {"selector": "ANY"},
        "tsaConfig": {"selector": "ANY"},
    }


def write_trust_files(out: Path, state: SimState, ca: SimCA, base_url: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "trusted_root.json").write_text(json.dumps(trusted_root(state, ca, base_url), indent=2))
    (out / "signing_config.json").write_text(json.dumps(signing_config(state, base_url), indent=2))
    # the witnesses: their vkeys, and a C2SP tlog-policy naming the v2 logs and the quorum
    logs = {
        log_vkey(log.signer): f"{base_url}{V2_PREFIX}{name}"
        for name, log in state.v2_shards.items()
    }
    (out / "witnesses.txt").write_text(state.witnesses.witnesses_txt())
    (out / "witness-policy.txt").write_text(state.witnesses.policy_txt(logs))


@dataclass
class RunningSim:
    """A started simulator (for tests and the demo): stop it with ``await sim.stop()``."""

    state: SimState
    base_url: str
    runner: web.AppRunner
    grower: asyncio.Task[None] | None

    async def stop(self) -> None:
        if self.grower is not None:
            self.grower.cancel()
        await self.runner.cleanup()


async def start(
    config: SimConfig, out: Path | None = None, faults: Faults | None = None
) -> RunningSim:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((config.host, config.port))
    except OSError:
        sock.close()
        raise
    port = sock.getsockname()[1]
    state, ca = build_state(config, port)
    if faults is not None:
        state.faults = faults
    state.publish()
    base_url = f"http://{config.host}:{port}"
    if out is not None:
        write_trust_files(out, state, ca, base_url)
        state.on_new_shard = lambda: write_trust_files(out, state, ca, base_url)
    # short: requests held open by the timeout fault must not hold up a stop
    runner = web.AppRunner(build_app(state), access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    grower = asyncio.create_task(_grow(state, config.rate)) if config.rate > 0 else None
    return RunningSim(state, base_url, runner, grower)


async def _grow(state: SimState, rate: float) -> None:
    tick = 0.1
    carry = 0.0
    while True:
        await asyncio.sleep(tick)
        carry += rate * tick
        n = int(carry)
        carry -= n
        if n:
            state.v1.append(n)
            state.v2.append(n)
            state.publish()
