"""The daemon under a slowloris flood of its API port: 2,000 connections that trickle request
heads and never finish them, reopened as soon as they are closed, against a daemon allowed
1,024 open files. With the default limits its log passes, database and alert deliveries keep
working, and ``/healthz`` answers a fresh connection during the flood and after it."""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.alert_receivers import HOOK, Receiver
from tests.api_support import READ_TOKEN, TOKENS
from tests.daemon_support import MALLORY, SINKS, write_config
from tests.simlog import harness, run
from tests.test_alerts_cli import SECRET
from tests.test_daemon_cli import TLOG_MONITOR

ROOT = Path(__file__).resolve().parent.parent
OPEN_FILES = 1024
SLOW_CONNECTIONS = 2000
FLOOD_SECONDS = 8.0
END = 530  # the simulator's size after the entries appended during the flood
AUTH = {"Authorization": f"Bearer {READ_TOKEN}"}


def _limit_open_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))


async def _api_url(proc: asyncio.subprocess.Process, log: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            doc = json.loads(line)
            if doc.get("message") == "api listening":
                return str(doc["url"])
        if proc.returncode is not None:
            break
        await asyncio.sleep(0.1)
    raise AssertionError(f"the daemon did not listen:\n{log.read_text()[-4000:]}")


async def _fresh(method: str, url: str, **kw: Any) -> tuple[int, Any, float]:
    """One request on a connection of its own: status, JSON body, seconds taken."""
    start = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=10)
    connector = aiohttp.TCPConnector(force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
        session.request(method, url, **kw) as resp,
    ):
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body, time.monotonic() - start


async def _cursors(base: str) -> dict[str, int]:
    status, body, _ = await _fresh("GET", f"{base}/api/v1/logs", headers=AUTH)
    assert status == 200, body
    return {log["name"]: log["cursor"] for log in body["items"] if log["tailed"]}


def _sample(text: str, name: str, labels: str = "") -> float:
    m = re.search(rf"^{re.escape(name + labels)} ([0-9.e+]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


@pytest.mark.slow
def test_a_slowloris_flood_leaves_the_daemon_working(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"

    async def body() -> None:
        async with harness(tmp_path, entries=200, shards=2) as h, Receiver(secret=SECRET) as rx:
            sink = {**SINKS[0], "url": rx.url(HOOK), "group_window": "0s"}
            server = {"tokens": TOKENS, "metrics_public": True}  # and the default limits
            cfg = write_config(
                tmp_path / "m.yaml", h.sim, tmp_path, url, sinks=[sink], server=server
            )
            log = tmp_path / "daemon.log"
            with log.open("wb") as err:
                proc = await asyncio.create_subprocess_exec(
                    TLOG_MONITOR,
                    "run",
                    "--config",
                    str(cfg),
                    "--log-format",
                    "json",
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=err,
                    preexec_fn=_limit_open_files,
                )
            flood: asyncio.subprocess.Process | None = None
            try:
                base = await _api_url(proc, log)
                host, port = base.removeprefix("http://").rsplit(":", 1)
                while set((await _cursors(base)).values()) != {200}:
                    await asyncio.sleep(0.2)

                flood = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "tests.slowloris",
                    host,
                    port,
                    str(SLOW_CONNECTIONS),
                    str(FLOOD_SECONDS),
                    cwd=ROOT,
                    stdout=asyncio.subprocess.PIPE,
                )
                flood_end = time.monotonic() + FLOOD_SECONDS
                # the flood is on once the cap is reached and connections are being evicted
                while True:
                    _, metrics, _ = await _fresh("GET", f"{base}/metrics")
                    if _sample(
                        metrics, "tlog_monitor_api_connections_dropped_total", '{reason="evicted"}'
                    ):
                        break
                    await asyncio.sleep(0.1)
                flooded_at = await _cursors(base)
                await h.admin("append", {"v1": 300, "v2": 300})
                await h.admin("plant", {"index": 520, "identity": MALLORY})
                await h.admin("append", {"v1": END - 500, "v2": END - 500})
                appended = time.monotonic()

                latencies: list[float] = []
                peak_fds = 0
                progressed: dict[str, int] = {}
                caught_up = alerted = None
                while time.monotonic() < flood_end - 0.5:
                    status, doc, took = await _fresh("GET", f"{base}/healthz")
                    assert status == 200, doc
                    latencies.append(took)
                    peak_fds = max(peak_fds, len(os.listdir(f"/proc/{proc.pid}/fd")))
                    progressed = await _cursors(base)
                    if caught_up is None and min(progressed.values()) >= END:
                        caught_up = round(time.monotonic() - appended, 2)
                    if alerted is None and rx.processed(HOOK):
                        alerted = round(time.monotonic() - appended, 2)
                    await asyncio.sleep(0.2)
                _, metrics, _ = await _fresh("GET", f"{base}/metrics")
                delivered_during_flood = len(rx.processed(HOOK))

                assert flood is not None
                out, _ = await asyncio.wait_for(flood.communicate(), 30)
                stats = json.loads(out)
                status, doc, after = await _fresh("GET", f"{base}/healthz")
                assert status == 200, doc

                evicted = _sample(
                    metrics, "tlog_monitor_api_connections_dropped_total", '{reason="evicted"}'
                )
                report = {
                    "attacker": stats,
                    "evicted": evicted,
                    "open_connections": _sample(metrics, "tlog_monitor_api_connections"),
                    "healthz_probes": len(latencies),
                    "healthz_max_seconds": round(max(latencies), 3),
                    "healthz_median_seconds": round(sorted(latencies)[len(latencies) // 2], 3),
                    "healthz_after_seconds": round(after, 3),
                    "peak_open_files": peak_fds,
                    "cursors": {"flooded_at": flooded_at, "during_flood": progressed},
                    "caught_up_seconds": caught_up,
                    "first_alert_seconds": alerted,
                    "alerts_during_flood": delivered_during_flood,
                }
                print(json.dumps(report))
                assert stats["opened"] > SLOW_CONNECTIONS, report  # reopened after closes
                assert evicted > 0, report
                assert _sample(metrics, "tlog_monitor_api_connections") <= 256, report
                assert peak_fds < OPEN_FILES, report
                assert latencies, report
                assert max(latencies) < 2.0, report
                # the log passes went on: past the planted entry, in both logs
                assert all(progressed[n] > flooded_at[n] for n in flooded_at), report
                assert caught_up is not None, report
                # ...and its alerts were delivered
                assert delivered_during_flood >= 1, report
                # no error line, nor any line that is not the daemon's own (asyncio's "accept()
                # out of system resource" tracebacks, had the descriptors run out)
                bad = [
                    ln
                    for ln in log.read_text().splitlines()
                    if not ln.startswith("{") or '"level": "error"' in ln
                ]
                assert bad == [], bad[:5]
            finally:
                for p in (flood, proc):
                    if p is not None and p.returncode is None:
                        p.send_signal(signal.SIGTERM)
                        await asyncio.wait_for(p.wait(), 30)
            assert proc.returncode == 0, log.read_text()[-4000:]

    run(body)
