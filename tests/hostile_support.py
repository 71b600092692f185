"""The hostile log (``tests.hostile_log``) and a daemon (``tests.daemon_process``), each in a
process of its own, and what the tests measure of the daemon from outside: its peak resident
memory (``VmHWM`` in ``/proc``), the latency of its ``/healthz``, and its API's view."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.api_support import READ_TOKEN, TOKENS
from tests.simlog import admin

AUTH = {"Authorization": f"Bearer {READ_TOKEN}"}


@dataclass(frozen=True)
class HostileServer:
    """The hostile log's process, where it serves, and its trust files."""

    proc: subprocess.Popen[bytes]
    url: str
    trust_dir: Path


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()


@contextlib.contextmanager
def hostile_server(trust_dir: Path, entries: int = 300) -> Iterator[HostileServer]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.hostile_log",
            "--out",
            str(trust_dir),
            "--entries",
            f"{entries}",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the server says where it serves, or ends
        if not line:
            raise AssertionError("the hostile log ended before it served")
        yield HostileServer(proc, json.loads(line)["url"], trust_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@dataclass
class HostileLog:
    """The hostile log's admin API, from a test's event loop."""

    server: HostileServer
    session: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def trust_dir(self) -> Path:
        return self.server.trust_dir

    async def admin(self, path: str, payload: dict[str, Any] | None = None) -> Any:
        return await admin(self.session, self.url, path, payload)

    async def attack(self, mode: str, first: int = 0) -> None:
        await self.admin("hostile", {"mode": mode, "from": first})


@asynccontextmanager
async def hostile_log(server: HostileServer) -> AsyncIterator[HostileLog]:
    async with aiohttp.ClientSession() as session:
        yield HostileLog(server, session)


def hostile_config(path: Path, log: HostileLog, db: Path, *, start: int | str = 0) -> Path:
    """A configuration reading both logs of ``log`` from ``start``, quickly."""
    fast = {"requests_per_second": 100, "burst": 50, "poll_interval": "1s", "timeout": "5s"}
    logs: list[dict[str, Any]] = [
        {"name": "v1", "api": "v1", "url": log.url, "start": start, **fast},
        {"name": "v2", "api": "v2", "discover": True, "start": start, **fast},
    ]
    doc: dict[str, Any] = {
        "trust": {
            "trusted_root": str(log.trust_dir / "trusted_root.json"),
            "signing_config": str(log.trust_dir / "signing_config.json"),
        },
        "logs": logs,
        "database": {"url": f"sqlite+aiosqlite:///{db}"},
        "watch": [
            {"name": "mallory", "match": {"san": "mallory@evil.example"}, "severity": "high"}
        ],
        "server": {"listen": "127.0.0.1:0", "tokens": TOKENS, "metrics_public": True},
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@dataclass
class Daemon:
    proc: asyncio.subprocess.Process
    url: str
    session: aiohttp.ClientSession
    lines: list[dict[str, Any]] = field(default_factory=list)  # what it logged (JSON)

    def status(self, key: str) -> int:
        """``VmHWM`` (peak) or ``VmRSS`` (now) of the daemon, in bytes."""
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        found = re.search(rf"^{key}:\s+(\d+) kB$", text, re.M)
        assert found is not None, text
        return int(found.group(1)) * 1024

    def peak_rss(self) -> int:
        return self.status("VmHWM")

    def reset_peak(self) -> None:
        """Start measuring the peak afresh (Linux: ``5`` to ``clear_refs``)."""
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")

    async def healthz(self) -> float:
        """Seconds ``/healthz`` took to answer."""
        started = time.perf_counter()
        async with self.session.get(f"{self.url}/healthz") as resp:
            await resp.read()
            assert resp.status == 200
        return time.perf_counter() - started

    async def logs(self) -> dict[str, dict[str, Any]]:
        async with self.session.get(f"{self.url}/api/v1/logs", headers=AUTH) as resp:
            assert resp.status == 200, await resp.text()
            return {doc["name"]: doc for doc in (await resp.json())["items"]}

    async def finding(self, finding_id: int) -> dict[str, Any]:
        """One finding, with its evidence."""
        url = f"{self.url}/api/v1/findings/{finding_id}"
        async with self.session.get(url, headers=AUTH) as resp:
            assert resp.status == 200, await resp.text()
            doc: dict[str, Any] = await resp.json()
            return doc

    async def findings(self) -> list[dict[str, Any]]:
        params = {"limit": "1000"}
        async with self.session.get(
            f"{self.url}/api/v1/findings", headers=AUTH, params=params
        ) as resp:
            assert resp.status == 200, await resp.text()
            items: list[dict[str, Any]] = (await resp.json())["items"]
            return items

    async def metrics(self) -> dict[str, float]:
        """Every sample of ``/metrics``, by its name and labels as exposed."""
        async with self.session.get(f"{self.url}/metrics") as resp:
            text = await resp.text()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    async def until(
        self, check: Callable[[dict[str, dict[str, Any]]], bool], timeout: float = 60
    ) -> dict[str, dict[str, Any]]:
        """Poll the API's view of the logs until ``check`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            logs = await self.logs()
            if check(logs):
                return logs
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; logs: {json.dumps(logs, indent=1)[:3000]}")
            await asyncio.sleep(0.1)


async def _read_log(proc: asyncio.subprocess.Process, lines: list[dict[str, Any]]) -> None:
    assert proc.stderr is not None
    async for raw in proc.stderr:
        try:
            lines.append(json.loads(raw))
        except ValueError:  # a traceback of a crash at start: kept to be shown
            lines.append({"message": raw.decode(errors="replace").rstrip()})


@asynccontextmanager
async def daemon(
    config: Path, *, http: dict[str, float] | None = None, retry_base: float = 0.05
) -> AsyncIterator[Daemon]:
    tuned = {"backoff_base_seconds": 0.05, "backoff_cap_seconds": 0.2, **(http or {})}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.daemon_process",
        str(config),
        "--retry-base",
        str(retry_base),
        "--http",
        json.dumps(tuned),
        stderr=asyncio.subprocess.PIPE,
    )
    lines: list[dict[str, Any]] = []
    reader = asyncio.create_task(_read_log(proc, lines))
    try:
        deadline = time.monotonic() + 60
        url = None
        while url is None:
            url = next((x.get("url") for x in lines if x.get("message") == "api listening"), None)
            if proc.returncode is not None or time.monotonic() > deadline:
                shown = "\n".join(str(x.get("message")) for x in lines[-30:])
                raise AssertionError(f"the daemon did not start:\n{shown}")
            await asyncio.sleep(0.05)
        async with aiohttp.ClientSession() as session:
            yield Daemon(proc, url, session, lines)
    finally:
        await _stop(proc)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


class LatencyProbe:
    """Times ``/healthz`` every ``every`` seconds while it runs (``async with``)."""

    def __init__(self, d: Daemon, every: float = 0.02) -> None:
        self.daemon = d
        self.every = every
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _probe(self) -> None:
        while True:
            self.samples.append(await self.daemon.healthz())
            await asyncio.sleep(self.every)

    async def __aenter__(self) -> LatencyProbe:
        self._task = asyncio.create_task(self._probe())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    @property
    def worst(self) -> float:
        return max(self.samples, default=0.0)

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else 0.0
