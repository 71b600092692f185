"""Test helpers: a simulator on loopback and clients pointed at it by its trust files."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from monitor.core.metrics import ClientMetrics
from monitor.logclient.http import HttpPolicy, LogHttp
from monitor.logclient.v1 import RekorV1Client
from monitor.logclient.v2 import RekorV2Client
from monitor.sim.run import RunningSim, SimConfig, start
from monitor.trust import TrustRoot, load_trust_root

T = TypeVar("T")

FAST = HttpPolicy(
    requests_per_second=1000,
    burst=100,
    max_concurrency=8,
    timeout_seconds=2.0,
    max_attempts=8,
    backoff_base_seconds=0.01,
    backoff_cap_seconds=0.05,
)


async def admin(
    session: aiohttp.ClientSession, base_url: str, path: str, payload: dict[str, Any] | None
) -> Any:
    """A simulator's (or a hostile log's) ``/admin/<path>``: GET without a payload, else POST."""
    url = f"{base_url}/admin/{path}"
    if payload is None:
        async with session.get(url) as resp:
            return await resp.json()
    async with session.post(url, json=payload) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


@dataclass
class Harness:
    sim: RunningSim
    trust: TrustRoot
    session: aiohttp.ClientSession
    metrics: ClientMetrics
    v1: RekorV1Client
    v2: RekorV2Client

    async def admin(self, path: str, payload: dict[str, Any] | None = None) -> Any:
        return await admin(self.session, self.sim.base_url, path, payload)


@asynccontextmanager
async def harness(
    tmp_path: Path,
    *,
    entries: int = 600,
    shards: int = 2,
    policy: HttpPolicy = FAST,
    v1_key_name: str | None = None,
) -> AsyncIterator[Harness]:
    config = SimConfig(entries=entries, shards=shards, seed=5)
    if v1_key_name is not None:
        config = replace(config, v1_key_name=v1_key_name)
    sim = await start(config, out=tmp_path)
    trust = load_trust_root(
        str(tmp_path / "trusted_root.json"), str(tmp_path / "signing_config.json")
    )
    v1_log = trust.log_by_url(sim.base_url)
    (v2_log,) = trust.v2_shards()
    assert v1_log is not None
    metrics = ClientMetrics.standalone()
    session = aiohttp.ClientSession()
    try:
        v1 = RekorV1Client(
            LogHttp(v1_log.base_url, session, log="v1", metrics=metrics, policy=policy), v1_log
        )
        v2 = RekorV2Client(
            LogHttp(v2_log.base_url, session, log="v2", metrics=metrics, policy=policy), v2_log
        )
        yield Harness(sim, trust, session, metrics, v1, v2)
    finally:
        await session.close()
        await sim.stop()


def run(fn: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(_wrap(fn))


async def _wrap(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()


def v2_client_at(h: Harness, base_url: str) -> RekorV2Client:
    """A client of the harness's Rekor v2 log read from another URL (``/view-b/...``: view b
    of a split), verifying with the same trust as ``h.v2``."""
    http = LogHttp(base_url, h.session, log="v2", metrics=h.metrics, policy=h.v2.http.policy)
    return RekorV2Client(http, h.v2.log)
