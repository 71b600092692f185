"""Witnessed checkpoints, end to end on the simulator (its three witnesses cosign each Rekor v2
checkpoint, 2 of 3 make its policy's quorum): cosignatures are checked on every checkpoint,
recorded in the metrics and shown by the API; under ``warn`` an unwitnessed checkpoint is
accepted and, once the episode lasts, a medium finding raised; under ``require`` nothing moves
until a witnessed one comes, and the finding is high; a witnessed checkpoint resolves it."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from monitor.core.findings import FindingKind, FindingState, Severity
from monitor.daemon.context import PassResult
from monitor.daemon.service import Monitor
from monitor.storage import FindingQuery
from tests.api_support import READ_TOKEN, TOKENS
from tests.daemon_support import write_config
from tests.simlog import harness, run

WITNESSES = ("witness-a.sim.example", "witness-b.sim.example", "witness-c.sim.example")


def config(tmp_path: Path, sim: Any, mode: str, *, keys: bool = False) -> Path:
    cfg = write_config(
        tmp_path / f"{mode}.yaml",
        sim,
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path / (mode + '.db')}",
        v1={"off": True},
        v2={"start": 0},
        server={"tokens": TOKENS},
    )
    doc = yaml.safe_load(cfg.read_text())
    if keys:  # the witnesses by their keys, 2 of them
        vkeys = (tmp_path / "witnesses.txt").read_text().split()
        witnesses: dict[str, Any] = {"keys": vkeys, "quorum": 2}
    else:  # the simulator's C2SP tlog-policy file
        witnesses = {"policy": str(tmp_path / "witness-policy.txt")}
    doc["logs"][0]["witnesses"] = {**witnesses, "mode": mode, "unwitnessed_after": "1s"}
    cfg.write_text(yaml.safe_dump(doc))
    return cfg


async def unwitnessed(m: Monitor) -> list[Any]:
    query = FindingQuery(kinds=(FindingKind.UNWITNESSED_CHECKPOINT,), limit=100)
    return [sf.finding for sf in (await m.store.findings(query)).items]


def cursor(results: dict[str, Any]) -> int:
    (result,) = results.values()
    assert isinstance(result, PassResult), result
    return result.cursor


def later(m: Monitor, seconds: float) -> None:
    """Move the witness clocks of ``m`` on by ``seconds`` (the episode's age)."""
    for runner in m.runners.values():
        gate = runner.witnesses
        assert gate is not None
        # a clock stopped ``seconds`` ahead of now (bound per gate, not per loop variable)
        gate.clock = functools.partial(float.__add__, gate.clock() + seconds, 0.0)


@pytest.mark.parametrize("keys", [False, True], ids=["policy-file", "inline-keys"])
def test_cosignatures_are_checked_recorded_and_shown(tmp_path: Path, keys: bool) -> None:
    async def body() -> None:
        async with harness(tmp_path, entries=100, shards=1) as h, aiohttp.ClientSession() as http:
            cfg = config(tmp_path, h.sim, "warn", keys=keys)
            async with Monitor.open(str(cfg), registry=CollectorRegistry()) as m:
                assert cursor(await m.once()) == 100
                assert await unwitnessed(m) == []
                text = generate_latest(m.registry).decode()
                name = next(iter(m.runners))
                for w in WITNESSES:
                    size = f'tlog_monitor_witness_cosigned_size{{log="{name}",witness="{w}"}}'
                    assert f"{size} 100.0" in text
                assert "tlog_monitor_witness_cosigned_age_seconds{" in text
                # the stored checkpoint records who cosigned it, as checked when stored
                stored = (await m.store.checkpoints(name))[0]
                assert stored.cosigners is not None
                assert sorted(c.witness for c in stored.cosigners) == list(WITNESSES)
                assert {c.status for c in stored.cosigners} == {"verified"}
                # the API shows who cosigned each stored checkpoint, and serves the latest
                stop = asyncio.Event()
                task = asyncio.create_task(m.run(stop))
                while m.api is None or m.api.url is None:
                    await asyncio.sleep(0.02)
                auth = {"Authorization": f"Bearer {READ_TOKEN}"}
                name = next(iter(m.runners))
                async with http.get(
                    f"{m.api.url}/api/v1/logs/{name}/checkpoints", headers=auth
                ) as r:
                    page = await r.json()
                cosigners = page["items"][0]["cosigners"]
                assert sorted(c["witness"] for c in cosigners) == list(WITNESSES)
                assert {c["status"] for c in cosigners} == {"verified"}
                async with http.get(
                    f"{m.api.url}/api/v1/logs/{name}/checkpoint", headers=auth
                ) as r:
                    assert r.status == 200
                    assert r.content_type == "text/plain"
                    note = await r.text()
                state = await m.store.log_state(name)
                assert state is not None
                assert note == state.verified_checkpoint
                assert note.count("\u2014 witness-") == 3
                async with http.get(f"{m.api.url}/api/v1/logs/nope/checkpoint", headers=auth) as r:
                    assert r.status == 404
                stop.set()
                await task

    run(body)


def test_warn_accepts_an_unwitnessed_checkpoint_and_raises_a_medium_finding_once(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with harness(tmp_path, entries=100, shards=1) as h:
            cfg = config(tmp_path, h.sim, "warn")
            async with Monitor.open(str(cfg), registry=CollectorRegistry()) as m:
                assert cursor(await m.once()) == 100
                # two of three withhold: one cosignature, short of the quorum of two
                await h.admin("faults", {"withhold_cosigners": list(WITNESSES[:2])})
                await h.admin("append", {"v2": 10})
                assert cursor(await m.once()) == 110  # accepted all the same
                assert await unwitnessed(m) == []  # not yet: witnesses may be slow
                later(m, 2)
                await h.admin("append", {"v2": 10})
                assert cursor(await m.once()) == 120
                await h.admin("append", {"v2": 10})
                assert cursor(await m.once()) == 130
                (finding,) = await unwitnessed(m)  # one per episode, however many checkpoints
                assert finding.severity is Severity.MEDIUM
                assert finding.type == "warn"
                assert "1 cosigned" in finding.detail
                # the witnesses cosign again: the episode ends, its finding is resolved
                await h.admin("faults", {"withhold_cosigners": []})
                await h.admin("append", {"v2": 10})
                assert cursor(await m.once()) == 140
                (finding,) = await unwitnessed(m)
                assert finding.state is FindingState.RESOLVED

    run(body)


def test_require_waits_for_a_witnessed_checkpoint(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path, entries=100, shards=1) as h:
            cfg = config(tmp_path, h.sim, "require")
            async with Monitor.open(str(cfg), registry=CollectorRegistry()) as m:
                assert cursor(await m.once()) == 100
                await h.admin("faults", {"withhold_cosignatures": True})
                await h.admin("append", {"v2": 25})
                assert cursor(await m.once()) == 100  # not accepted: nothing moves
                later(m, 2)
                assert cursor(await m.once()) == 100
                (finding,) = await unwitnessed(m)
                assert finding.severity is Severity.HIGH
                assert finding.type == "require"
                # a bad cosignature counts for nothing either
                await h.admin(
                    "faults", {"withhold_cosignatures": False, "bad_cosigners": list(WITNESSES[:2])}
                )
                assert cursor(await m.once()) == 100
                await h.admin("faults", {"bad_cosigners": []})
                assert cursor(await m.once()) == 125  # witnessed: caught up at once
                (finding,) = await unwitnessed(m)
                assert finding.state is FindingState.RESOLVED

    run(body)


async def split_views(m: Monitor) -> list[Any]:
    query = FindingQuery(kinds=(FindingKind.INTEGRITY_FAILURE,), limit=100)
    return [sf for sf in (await m.store.findings(query)).items if sf.finding.type == "split_view"]


def test_a_distributor_holding_another_view_is_a_split_view_that_holds_the_log(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with harness(tmp_path, entries=100, shards=1) as h:
            cfg = config(tmp_path, h.sim, "warn")
            doc = yaml.safe_load(cfg.read_text())
            doc["logs"][0]["witnesses"]["distributor"] = h.sim.base_url
            cfg.write_text(yaml.safe_dump(doc))
            async with Monitor.open(str(cfg), registry=CollectorRegistry()) as m:
                assert cursor(await m.once()) == 100
                await h.admin("append", {"v2": 20})
                assert cursor(await m.once()) == 120
                assert await split_views(m) == []  # the distributor's view is ours
                # the log shows the distributor (and whoever reads it) another tree from 50 on,
                # signed and cosigned all the same
                await h.admin("faults", {"split_at": 50, "split_distributor": True})
                await h.admin("append", {"v2": 20})
                assert cursor(await m.once()) == 140  # our view is consistent in itself
                (split,) = await split_views(m)
                f = split.finding
                assert f.severity is Severity.CRITICAL
                assert f.index == 140  # held where the cursor stood
                assert f.id is not None
                detail = await m.store.finding(f.id)
                assert detail is not None
                evidence = detail.evidence
                assert isinstance(evidence, dict)
                assert {"ours", "theirs", "source", "proof", "held_at"} <= set(evidence)
                assert evidence["ours"] != evidence["theirs"]
                # held: the log grows, the cursor does not move, until a person resolves it
                await h.admin("append", {"v2": 10})
                assert cursor(await m.once()) == 140
                assert cursor(await m.once()) == 140
                # every view the distributor showed meanwhile is a finding of its own; once a
                # person has resolved them all, the log moves again
                assert len(await split_views(m)) >= 1
                for sf in await split_views(m):
                    assert sf.finding.id is not None
                    await m.store.resolve_finding(sf.finding.id, "oncall", "checked")
                assert cursor(await m.once()) == 150

    run(body)
