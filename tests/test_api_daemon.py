"""The daemon serves the API, /metrics and the health endpoints while it runs, and a listen
address it cannot take is a clear error naming the configuration file and field."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import aiohttp

from monitor.daemon.service import Monitor
from tests.api_support import READ_TOKEN, TOKENS
from tests.daemon_support import MALLORY, write_config
from tests.simlog import harness, run
from tests.test_daemon_cli import cli


async def _until_ready(session: aiohttp.ClientSession, base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        async with session.get(f"{base}/readyz") as resp:
            if resp.status == 200:
                return
            doc = await resp.json()
        assert time.monotonic() < deadline, doc
        await asyncio.sleep(0.2)


def test_the_daemon_serves_the_api_while_it_runs(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"

    async def body() -> None:
        async with harness(tmp_path, entries=200, shards=2) as h:
            await h.admin("plant", {"index": 203, "identity": MALLORY})
            await h.admin("append", {"v1": 50, "v2": 50})
            cfg = write_config(
                tmp_path / "m.yaml",
                h.sim,
                tmp_path,
                url,
                v1={"start": 0},
                v2={"start": 0},
                server={"tokens": TOKENS},
            )
            auth = {"Authorization": f"Bearer {READ_TOKEN}"}
            async with Monitor.open(str(cfg)) as m, aiohttp.ClientSession() as session:
                stop = asyncio.Event()
                task = asyncio.create_task(m.run(stop))
                while m.api is None or m.api.url is None:
                    await asyncio.sleep(0.05)
                base = m.api.url
                await _until_ready(session, base)
                params = {"san": "mallory@evil.example"}
                async with session.get(f"{base}/api/v1/entries", params=params, headers=auth) as r:
                    assert r.status == 200
                    found = await r.json()
                assert sorted(e["index"] for e in found["items"]) == [203, 203]
                async with session.get(f"{base}/api/v1/logs", headers=auth) as r:
                    logs = (await r.json())["items"]
                assert {log["tailed"] for log in logs} == {True}
                # the only monitor on its database leads every log, since it started
                assert {log["leader"]["replica"] for log in logs} == {socket.gethostname()}
                assert {log["lag_entries"] for log in logs} == {0}
                async with session.get(f"{base}/metrics", headers=auth) as r:
                    text = await r.text()
                assert "tlog_monitor_cursor{" in text
                stop.set()
                await asyncio.wait_for(task, 30)
                try:
                    async with session.get(f"{base}/healthz") as r:
                        raise AssertionError(f"still serving after stop: {r.status}")
                except aiohttp.ClientConnectionError:
                    pass  # stopped with the daemon

    run(body)


def test_a_taken_listen_address_is_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]

    async def body() -> None:
        async with harness(tmp_path, entries=10, shards=2) as h:
            cfg = write_config(
                tmp_path / "m.yaml", h.sim, tmp_path, url, server={"listen": f"127.0.0.1:{port}"}
            )
            code, _out, err = await cli("run", "--config", str(cfg))
            assert code == 2
            assert f"{cfg}: server.listen: cannot listen on 127.0.0.1:{port}" in err
            assert "Traceback" not in err

    try:
        run(body)
    finally:
        taken.close()
