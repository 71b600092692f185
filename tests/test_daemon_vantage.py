"""Other vantage points, end to end on the simulator: a Rekor v1 log compared with a
distributor, a Rekor v2 log compared with a witness's read endpoint and with another monitor
(a peer serving ``/api/v1/logs/<log>/checkpoint`` behind its read token). Each agrees while
the log is honest; each sees a split view the log shows it, which holds the log."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from monitor.core.findings import Finding, FindingKind, IntegrityType, Severity, dedup_key
from monitor.daemon.context import PassResult
from monitor.daemon.service import Monitor
from monitor.storage import FindingQuery
from monitor.tlog.witness import WitnessKey, verify_note_cosignatures
from tests.api_support import READ_TOKEN, TOKENS
from tests.daemon_support import write_config
from tests.simlog import Harness, harness, run


def config(tmp_path: Path, h: Harness, api: str, witnesses: dict[str, Any]) -> Path:
    fast = {"start": 0, "witnesses": witnesses}
    return write_config(
        tmp_path / "vantage.yaml",
        h.sim,
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path / 'vantage.db'}",
        v1=fast if api == "v1" else {"off": True},
        v2=fast if api == "v2" else {"off": True},
        server={"tokens": TOKENS},
    )


def cursor(results: dict[str, Any]) -> int:
    (result,) = results.values()
    assert isinstance(result, PassResult), result
    return result.cursor


async def split_views(m: Monitor) -> list[Any]:
    query = FindingQuery(kinds=(FindingKind.INTEGRITY_FAILURE,), limit=100)
    found = (await m.store.findings(query)).items
    return [sf.finding for sf in found if sf.finding.type == "split_view"]


async def evidence(m: Monitor, finding: Any) -> dict[str, Any]:
    detail = await m.store.finding(finding.id)
    assert detail is not None
    assert isinstance(detail.evidence, dict)
    return detail.evidence


def test_a_rekor_v1_log_is_compared_with_a_distributor(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path, entries=100, shards=1) as h:
            cfg = config(tmp_path, h, "v1", {"distributor": h.sim.base_url})
            async with Monitor.open(str(cfg), registry=CollectorRegistry()) as m:
                start = cursor(await m.once())
                await h.admin("append", {"v1": 20})
                assert cursor(await m.once()) == start + 20
                assert await split_views(m) == []  # the distributor holds our tree
                # the log hands the witnesses (and so the distributor) another tree of the
                # active shard, from its 50th entry on
                at = h.sim.state.v1.active.start + 50
                await h.admin("faults", {"split_at": at, "split_distributor": True})
                await h.admin("append", {"v1": 10})
                assert cursor(await m.once()) == start + 30
                (split,) = await split_views(m)
                assert split.severity is Severity.CRITICAL
                assert split.index == start + 30
                assert "the distributor" in split.detail
                ev = await evidence(m, split)
                assert ev["source_type"] == "distributor"
                assert ev["ours"].split("\n")[:2] == ev["theirs"].split("\n")[:2]  # same size
                assert ev["ours"] != ev["theirs"]
                # held until a person resolves it
                await h.admin("faults", {"split_distributor": False})
                await h.admin("append", {"v1": 5})
                assert cursor(await m.once()) == start + 30
                assert split.id is not None
                await m.store.resolve_finding(split.id, "oncall", "checked")
                assert cursor(await m.once()) == start + 35

    run(body)


def test_a_witness_read_endpoint_is_a_vantage_point(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path, entries=100, shards=1) as h:
            peer = {"url": h.sim.base_url, "type": "witness"}
            cfg = config(tmp_path, h, "v2", {"compare_with": [peer]})
            async with Monitor.open(str(cfg), registry=CollectorRegistry()) as m:
                assert cursor(await m.once()) == 100
                await h.admin("append", {"v2": 20})
                assert cursor(await m.once()) == 120
                assert await split_views(m) == []
                (view,) = (r.vantage for r in m.runners.values())
                assert view is not None
                assert {u: n for u, (n, _) in view.agreed.items()} == {h.sim.base_url + "/": 120}
                text = generate_latest(m.registry).decode()
                peer_label = f'log="{view.name}",peer="{h.sim.base_url}/"'
                assert f"tlog_monitor_vantage_consistent_size{{{peer_label}}} 120.0" in text
                assert f"tlog_monitor_vantage_consistent_age_seconds{{{peer_label}}}" in text
                await h.admin("faults", {"split_at": 110, "split_distributor": True})
                await h.admin("append", {"v2": 20})
                assert cursor(await m.once()) == 140
                (split,) = await split_views(m)
                assert "the witness" in split.detail
                assert (await evidence(m, split))["source_type"] == "witness"

    run(body)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@asynccontextmanager
async def peer_monitor(sim_url: str, view: str) -> AsyncIterator[tuple[str, list[str]]]:
    """Another monitor's checkpoint endpoint for the log ``v2``, behind its read token: it
    holds what the log showed it (``view``: "" the honest tree, "/view-b" the other one).
    Yields its URL and the Authorization headers it was sent."""
    seen: list[str] = []

    async def checkpoint(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != f"Bearer {READ_TOKEN}":
            return web.json_response({"error": "unauthorized"}, status=401)
        async with aiohttp.ClientSession() as session:
            shard = "log2025-sim"
            async with session.get(f"{sim_url}{view}/v2/{shard}/checkpoint") as r:
                note = await r.text()
        return web.Response(text=note, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/api/v1/logs/v2-there/checkpoint", checkpoint)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


def test_another_monitor_is_a_vantage_point_behind_its_read_token(
    tmp_path: Path, monkeypatch: Any
) -> None:
    async def body() -> None:
        async with (
            harness(tmp_path, entries=100, shards=1) as h,
            peer_monitor(h.sim.base_url, "/view-b") as (url, seen),
        ):
            monkeypatch.setenv("PEER_TOKEN", READ_TOKEN)
            peer = {"url": url, "type": "monitor", "log": "v2-there", "token_env": "PEER_TOKEN"}
            cfg = config(tmp_path, h, "v2", {"compare_with": [peer]})
            async with Monitor.open(str(cfg), registry=CollectorRegistry()) as m:
                assert cursor(await m.once()) == 100
                assert await split_views(m) == []  # no split yet: one tree
                await h.admin("faults", {"split_at": 60})  # the peer is shown view b
                await h.admin("append", {"v2": 10})
                assert cursor(await m.once()) == 110
                (split,) = await split_views(m)
                assert "the monitor" in split.detail
                assert seen
            assert set(seen) == {f"Bearer {READ_TOKEN}"}

    run(body)


def test_a_vantage_point_that_fails_proves_nothing(tmp_path: Path) -> None:
    async def body() -> None:
        async with (
            harness(tmp_path, entries=100, shards=1) as h,
            peer_monitor(h.sim.base_url, "/view-b") as (url, seen),
        ):
            dead = f"http://127.0.0.1:{free_port()}"
            peers = [
                {"url": url, "type": "monitor", "log": "v2-there", "token": "wrong"},  # 401
                {"url": dead, "type": "distributor"},  # nobody listens
                {"url": h.sim.base_url, "type": "monitor", "log": "nope", "token": "x"},
            ]
            cfg = config(tmp_path, h, "v2", {"compare_with": peers})
            async with Monitor.open(str(cfg), registry=CollectorRegistry()) as m:
                await h.admin("faults", {"split_at": 60})
                assert cursor(await m.once()) == 100
                await h.admin("append", {"v2": 10})
                assert cursor(await m.once()) == 110  # nothing held
                assert await split_views(m) == []
                assert seen == ["Bearer wrong", "Bearer wrong"]

    run(body)


def test_a_monitor_publishes_its_checkpoint_cosigned_and_a_peer_compares_with_it(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """Two monitors of one log: the first cosigns what it publishes with its own key (made by
    ``tlog-monitor cosign-key``); the second reads it behind the first's read token, checks
    the cosignature with the printed verifier key, and finds the two views consistent."""

    async def body() -> None:
        async with harness(tmp_path, entries=100, shards=1) as h:
            key_file = tmp_path / "monitor-a.key"
            vkey = cosign_key(key_file)
            a_dir = tmp_path / "a"
            a_dir.mkdir()
            a_cfg = config(a_dir, h, "v2", {})
            doc = yaml.safe_load(a_cfg.read_text())
            doc["trust"] = {k: str(tmp_path / Path(v).name) for k, v in doc["trust"].items()}
            doc["server"]["cosign_key"] = str(key_file)
            a_cfg.write_text(yaml.safe_dump(doc))
            stop = asyncio.Event()
            async with Monitor.open(str(a_cfg), registry=CollectorRegistry()) as a:
                assert cursor(await a.once()) == 100
                task = asyncio.create_task(a.run(stop))
                while a.api is None or a.api.url is None:
                    await asyncio.sleep(0.02)
                auth = {"Authorization": f"Bearer {READ_TOKEN}"}
                name = next(iter(a.runners))  # v2@<shard>, the same name in both monitors
                async with (
                    aiohttp.ClientSession() as http,
                    http.get(f"{a.api.url}/api/v1/logs/{name}/checkpoint", headers=auth) as r,
                ):
                    assert r.status == 200
                    published = await r.text()
                (ours,) = verify_note_cosignatures(published, [WitnessKey.parse(vkey)])
                assert (ours.witness, ours.status) == ("monitor-a.example", "verified")
                assert abs(int(time.time()) - (ours.time or 0)) < 60
                # the witnesses' cosignatures are still there, before the monitor's
                assert published.count("\u2014 witness-") == 3
                # while a split view of the log is open, the monitor cosigns nothing
                split = Finding(
                    kind=FindingKind.INTEGRITY_FAILURE,
                    severity=Severity.CRITICAL,
                    dedup_key=dedup_key("test split view", name),
                    log=name,
                    index=100,
                    type=str(IntegrityType.SPLIT_VIEW),
                    detail="split view",
                )
                await a.store.store_findings([split])
                async with (
                    aiohttp.ClientSession() as http,
                    http.get(f"{a.api.url}/api/v1/logs/{name}/checkpoint", headers=auth) as r,
                ):
                    held = await r.text()
                assert verify_note_cosignatures(held, [WitnessKey.parse(vkey)]) == ()
                assert held.count("\u2014 witness-") == 3
                stored = await a.store.finding_by_key(split.dedup_key)
                assert stored is not None
                assert stored.finding.id is not None
                await a.store.resolve_finding(stored.finding.id, "oncall", "checked")
                # a second monitor compares its view with the first's
                monkeypatch.setenv("PEER_TOKEN", READ_TOKEN)
                peer = {"url": a.api.url, "type": "monitor", "token_env": "PEER_TOKEN"}
                b_cfg = config(tmp_path, h, "v2", {"compare_with": [peer]})
                async with Monitor.open(str(b_cfg), registry=CollectorRegistry()) as b:
                    await h.admin("append", {"v2": 10})
                    assert cursor(await b.once()) == 110
                    assert await split_views(b) == []
                    view = b.runners[name].vantage
                    assert view is not None
                    # compared, and consistent
                    assert {u: n for u, (n, _) in view.agreed.items()} == {a.api.url + "/": 100}
                stop.set()
                await task

    run(body)


def cosign_key(path: Path) -> str:
    """A new key in ``path`` made by the command line, and the verifier key it printed."""
    out = subprocess.run(
        [sys.executable, "-m", "monitor.cli.main", "cosign-key", "monitor-a.example", "--out",
         str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert path.stat().st_mode & 0o777 == 0o600
    return out.stdout.strip()
