"""Helpers for the API tests: a database filled by a real pass over the simulator, and the API
served over loopback on it."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry

from monitor.api import ApiContext, ApiServer
from monitor.api.app import Mount
from monitor.config.models import ServerSettings
from monitor.core.status import LogStatus
from monitor.daemon.service import Monitor
from monitor.entries.record import MalformedEntry
from monitor.storage.batch import Batch
from monitor.storage.store import Store
from tests.daemon_support import ARTIFACT, MALLORY, RULES, write_config
from tests.simlog import harness

READ_TOKEN = "tlm_read_8a1f6a0b5d1e4c2f"
WRITE_TOKEN = "tlm_write_0c9e2b7d3f6a4e15"
ADMIN_TOKEN = "tlm_admin_5b2d8e1c7a3f9d40"


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


TOKENS = [
    {"name": "reader", "sha256": sha256_hex(READ_TOKEN), "scopes": ["read"]},
    {"name": "writer", "sha256": sha256_hex(WRITE_TOKEN), "scopes": ["write"]},
    {"name": "oncall", "sha256": sha256_hex(ADMIN_TOKEN), "scopes": ["read", "write"]},
]
ACME = {"github": {"owner": "acme", "repo": "app"}}
ACME_RULE = {
    "name": "acme",
    "match": {"extensions": {"source-repository-owner-uri": "https://github.com/acme"}},
    "severity": "low",
}
# the same entries, signed as this rule expects: expected uses, records not in the open queue
ACME_RELEASE_RULE = {
    "name": "acme-release",
    "match": {"extensions": {"source-repository-owner-uri": "https://github.com/acme"}},
    "expect": {"issuer": "https://token.actions.githubusercontent.com"},
    "severity": "high",
}
MALLORY_AT = (3, 40, 77)  # after the first 200 entries, in both logs
ARTIFACT_AT = 50
ACME_AT = 60
SCRATCH = "scratch"  # a log holding one malformed entry


@dataclass(frozen=True)
class Filled:
    url: str
    logs: tuple[str, ...]  # the simulator's two logs, as the store names them


async def fill(tmp: Path, url: str) -> Filled:
    """Three passes over the simulator (so each log has several checkpoints) with planted
    entries, then one malformed entry in a log of its own."""
    async with harness(tmp, entries=200, shards=2) as h:
        for i in MALLORY_AT:
            await h.admin("plant", {"index": 200 + i, "identity": MALLORY})
        await h.admin("plant", {"index": 200 + ARTIFACT_AT, "digest": ARTIFACT})
        await h.admin("plant", {"index": 200 + ACME_AT, "identity": ACME})
        logs = {"start": 0, "index_all": True}
        cfg = write_config(
            tmp / "fill.yaml",
            h.sim,
            tmp,
            url,
            v1=logs,
            v2=logs,
            rules=[*RULES, ACME_RULE, ACME_RELEASE_RULE],
        )
        async with Monitor.open(str(cfg)) as m:
            for grow in (0, 100, 20):
                if grow:
                    await h.admin("append", {"v1": grow, "v2": grow})
                await m.once()
            names = tuple(sorted(m.runners))
            await m.store.register_log(SCRATCH, "v1", "http://scratch.invalid")
            await m.store.store_batch(
                Batch(
                    log=SCRATCH,
                    cursor=8,
                    malformed=(MalformedEntry(SCRATCH, 7, "not JSON", b"\xff\x00garbage"),),
                )
            )
    return Filled(url, names)


@dataclass
class Client:
    base: str
    session: aiohttp.ClientSession
    store: Store
    registry: CollectorRegistry

    async def call(
        self,
        method: str,
        path: str,
        params: Any = None,
        *,
        token: str | None = READ_TOKEN,
        json: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any, Mapping[str, str]]:
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        async with self.session.request(
            method, self.base + path, params=params, json=json, data=data, headers=h
        ) as resp:
            text = await resp.text()
            body: Any = text
            if resp.content_type == "application/json":
                body = await resp.json()
            return resp.status, body, resp.headers

    async def get(self, path: str, params: Any = None, **kw: Any) -> tuple[int, Any]:
        status, body, _ = await self.call("GET", path, params, **kw)
        return status, body

    async def pages(self, path: str, params: Any) -> list[dict[str, Any]]:
        """Every item of a paged listing, following next_cursor (``params``: a mapping or a
        list of pairs, for repeated parameters)."""
        out: list[dict[str, Any]] = []
        cursor = None
        base = list(params.items()) if isinstance(params, dict) else list(params)
        while True:
            status, body = await self.get(path, base + ([("cursor", cursor)] if cursor else []))
            assert status == 200, body
            out.extend(body["items"])
            cursor = body["next_cursor"]
            if cursor is None:
                return out


@asynccontextmanager
async def served(
    url: str,
    *,
    statuses: Mapping[str, LogStatus] | None = None,
    clock: Callable[[], float] = time.time,
    ready_within: float = 900.0,
    mounts: Mapping[str, Mount] | None = None,
    **server: Any,
) -> AsyncIterator[Client]:
    store = await Store.open(url, migrate=False)
    settings = ServerSettings.model_validate({"listen": "127.0.0.1:0", "tokens": TOKENS, **server})
    registry = CollectorRegistry()
    ctx = ApiContext(
        store,
        settings,
        registry,
        statuses=lambda: dict(statuses or {}),
        ready_within=ready_within,
        clock=clock,
    )
    srv = ApiServer(ctx, mounts or {})
    try:
        base = await srv.start()
        async with aiohttp.ClientSession() as session:
            yield Client(base, session, store, registry)
    finally:
        await srv.stop()
        await store.close()
