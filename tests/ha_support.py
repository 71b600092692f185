"""For the high-availability tests: replicas of the daemon in child processes, and the
simulator's logs they follow (their server and its audit: ``tests.ha_postgres``).

- ``Replica``: ``python -m tests.daemon_process`` with a config of its own (its ``ha:`` section
  names it); its JSON log lines are kept (the API's URL is read from "api listening").
- ``Fleet``: the replicas of one test, started, stopped and killed together.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.api_support import READ_TOKEN, TOKENS
from tests.daemon_support import ARTIFACT, MALLORY, SINKS, write_config
from tests.simlog import Harness

ROOT = Path(__file__).resolve().parent.parent
AUTH = {"Authorization": f"Bearer {READ_TOKEN}"}
# what a replica's children may need longer than its HTTP policy's defaults allow
HTTP_TUNING = {"backoff_base_seconds": 0.05, "backoff_cap_seconds": 0.5, "timeout_seconds": 2.0}


# ----------------------------------------------------------------------------- replicas


def replica_config(
    path: Path,
    h: Harness,
    trust_dir: Path,
    url: str,
    *,
    replica_id: str,
    hook: str,
    lease_ttl: str = "2s",
    v1: dict[str, Any] | None = None,
    v2: dict[str, Any] | None = None,
) -> Path:
    """A replica's config: both logs from index 0 with index_all, the webhook at ``hook``."""
    logs = {"start": 0, "index_all": True, "batch_size": 100, "poll_interval": "1s"}
    # findings go out within a second, none held back by the rate limit
    sink = {
        **SINKS[0],
        "url": hook,
        "timeout": "2s",
        "group_window": "1s",
        "rate_limit_per_minute": 6000,
    }
    write_config(
        path,
        h.sim,
        trust_dir,
        url,
        v1={**logs, **(v1 or {})},
        v2={**logs, **(v2 or {})},
        sinks=[sink],
        server={"tokens": TOKENS},
    )
    doc = yaml.safe_load(path.read_text())
    doc["ha"] = {"replica_id": replica_id, "lease_ttl": lease_ttl}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@dataclass
class Replica:
    """One daemon process (a replica restarted in its place is another ``Replica``)."""

    replica_id: str
    config: Path
    http: dict[str, Any] = field(default_factory=lambda: dict(HTTP_TUNING))
    proc: asyncio.subprocess.Process | None = None
    lines: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    url: str | None = None
    started_at: float = 0.0
    _listening: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.daemon_process",
            str(self.config),
            "--retry-base",
            "0.2",
            "--http",
            json.dumps(self.http),
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            limit=1 << 22,
        )
        self.started_at = time.time()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            try:
                doc = json.loads(raw)
            except ValueError:
                doc = {"message": raw.decode(errors="replace").rstrip(), "level": "raw"}
            self.lines.append((time.time(), doc))
            if doc.get("message") == "api listening":
                self.url = doc["url"]
                self._listening.set()

    async def base(self, timeout: float = 30.0) -> str:
        """The API's URL once it listens."""
        await asyncio.wait_for(self._listening.wait(), timeout)
        assert self.url is not None
        return self.url

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def kill(self) -> None:
        if self.alive:
            self.signal(signal.SIGKILL)
        await self._finish()

    async def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM; the exit code (a replica that will not stop is killed: -9)."""
        if self.alive:
            self.signal(signal.SIGCONT)  # a stopped process would never see SIGTERM
            self.signal(signal.SIGTERM)
            assert self.proc is not None
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                self.signal(signal.SIGKILL)
        await self._finish()
        assert self.proc is not None
        assert self.proc.returncode is not None
        return self.proc.returncode

    async def _finish(self) -> None:
        if self.proc is not None:
            await self.proc.wait()
        if self._reader is not None:
            await self._reader

    def messages(self, message: str) -> list[dict[str, Any]]:
        return [doc for _, doc in self.lines if doc.get("message") == message]

    def tail(self, n: int = 30) -> str:
        return "\n".join(json.dumps(doc) for _, doc in self.lines[-n:])


async def api_get(
    session: aiohttp.ClientSession, replica: Replica, path: str, timeout: float = 2.0
) -> tuple[int, Any]:
    """(status, body: JSON or text); (0, error) when the replica does not answer."""
    try:
        base = await replica.base()
        async with session.get(
            f"{base}{path}", headers=AUTH, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as r:
            body = await r.text()
            ctype = r.headers.get("Content-Type", "")
            return r.status, json.loads(body) if "json" in ctype else body
    except (aiohttp.ClientError, TimeoutError) as e:
        return 0, repr(e)


def samples(exposition: str, name: str) -> dict[str, float]:
    """The values of metric ``name`` (a sample name: counters end in _total) by ``log``."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            if s.name == name:
                out[s.labels.get("log", "")] = s.value
    return out


# ----------------------------------------------------------------------------- the logs


@dataclass(frozen=True)
class Plants:
    """Planted entries by index (both logs share them): the rule each one matches."""

    rules: dict[int, str]

    def below(self, size: int) -> dict[int, str]:
        return {i: r for i, r in self.rules.items() if i < size}


async def plant_every(h: Harness, start: int, end: int, step: int) -> Plants:
    """A planted entry every ``step`` indexes of [start, end): mostly MALLORY, every fourth an
    ARTIFACT digest."""
    rules = {}
    for n, index in enumerate(range(start, end, step)):
        if n % 4 == 3:
            await h.admin("plant", {"index": index, "digest": ARTIFACT})
            rules[index] = "artifact"
        else:
            await h.admin("plant", {"index": index, "identity": MALLORY})
            rules[index] = "mallory"
    return Plants(rules)


async def sim_sizes(h: Harness) -> dict[str, int]:
    state = await h.admin("state")
    return {"v1": int(state["v1"]["size"]), "v2": int(state["v2"][0]["size"])}


@asynccontextmanager
async def growing(h: Harness, per_step: int = 10, every: float = 0.25) -> AsyncIterator[None]:
    """Both logs grow by ``per_step`` entries every ``every`` seconds until the block ends."""

    async def grow() -> None:
        while True:
            await h.admin("append", {"v1": per_step, "v2": per_step})
            await asyncio.sleep(every)

    task = asyncio.create_task(grow())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass
class Fleet:
    """The replicas r1, r2, ... on one database: ``current`` by replica id, ``every`` process
    ever started (their log lines stay readable after they end)."""

    configs: dict[str, Path]
    http: dict[str, Any] = field(default_factory=lambda: dict(HTTP_TUNING))
    current: dict[str, Replica] = field(default_factory=dict)
    every: list[Replica] = field(default_factory=list)

    async def start(self, replica_id: str) -> Replica:
        r = Replica(replica_id, self.configs[replica_id], dict(self.http))
        await r.start()
        self.current[replica_id] = r
        self.every.append(r)
        return r

    def live(self) -> list[Replica]:
        return [r for r in self.current.values() if r.alive]

    def by_pid(self, pid: int | None) -> Replica | None:
        return next((r for r in self.every if r.proc is not None and r.pid == pid), None)

    async def terminate_all(self) -> dict[str, int]:
        """SIGTERM to every current replica at once; their exit codes (one that died on its
        own has its own code: never 0 for the daemon, which runs until told to stop)."""
        now = list(self.current.values())
        codes = await asyncio.gather(*(r.terminate() for r in now))
        return {f"{r.replica_id}/{r.pid}": c for r, c in zip(now, codes, strict=True)}

    async def kill_all(self) -> None:
        for r in self.every:
            await r.kill()

    def tails(self, n: int = 15) -> str:
        return "\n".join(
            f"--- {r.replica_id} pid {r.pid} (exit code {r.proc and r.proc.returncode})\n"
            f"{r.tail(n)}"
            for r in self.current.values()
        )
