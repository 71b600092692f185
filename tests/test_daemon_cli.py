"""The daemon's commands as a user runs them, in child processes against the simulator over
loopback: SIGKILL at random points of a catch-up never loses, doubles or corrupts anything;
``run`` stops cleanly on SIGTERM; ``once`` and ``backfill`` exit 0, 1 or 2 as documented."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from monitor.daemon.service import Monitor
from monitor.storage.store import Store
from tests.daemon_support import (
    ARTIFACT,
    ENGINES,
    MALLORY,
    engine_urls,
    pg_dbs,
    snapshot,
    write_config,
)
from tests.simlog import Harness, harness, run

__all__ = ["pg_dbs"]

TLOG_MONITOR = str(Path(sys.executable).parent / "tlog-monitor")


@pytest.fixture(params=ENGINES)
def make_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    yield from engine_urls(request, tmp_path)


async def cli(*args: str, timeout: float = 120.0) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        TLOG_MONITOR,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def plant(h: Harness, base: int) -> None:
    for i in (3, 401, 777, 1500, 2222):
        await h.admin("plant", {"index": base + i, "identity": MALLORY})
    await h.admin("plant", {"index": base + 999, "digest": ARTIFACT})


@pytest.mark.slow
def test_sigkill_at_random_points_loses_and_doubles_nothing(
    tmp_path: Path, make_db: Callable[[str], str]
) -> None:
    reference_url, killed_url = make_db("reference"), make_db("killed")
    rng = random.Random(11)

    async def body() -> None:
        async with harness(tmp_path, entries=400, shards=2) as h:
            await plant(h, 400)
            await h.admin("append", {"v1": 3600, "v2": 3600})
            # v1 at 30 requests a second: 360 requests (10 entries each) make a catch-up of about
            # 12 s beside a start-up of about 1.5 s, so kill points land mid-catch-up; v2 is quicker
            logs = {"start": 0, "batch_size": 50, "index_all": True, "requests_per_second": 30}
            ref_cfg = write_config(
                tmp_path / "ref.yaml", h.sim, tmp_path, reference_url, v1=logs, v2=logs
            )
            async with Monitor.open(str(ref_cfg)) as m:
                results = await m.once()
            assert all(getattr(r, "cursor", None) == 4000 for r in results.values()), results

            # the killed monitor reads v1 at 12 requests a second: a catch-up of about 30 s,
            # longer than eight runs of at most 3 s each, however quickly a run starts
            slow = {**logs, "requests_per_second": 12}
            cfg = write_config(tmp_path / "k.yaml", h.sim, tmp_path, killed_url, v1=slow, v2=logs)
            kills = 0
            for _ in range(40):
                proc = await asyncio.create_subprocess_exec(
                    TLOG_MONITOR,
                    "once",
                    "--config",
                    str(cfg),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
                try:
                    await asyncio.wait_for(proc.wait(), rng.uniform(1.0, 3.0))
                except TimeoutError:
                    proc.send_signal(signal.SIGKILL)
                    await proc.wait()
                    kills += 1
                    if kills == 8:
                        break
                else:
                    break  # it finished before the kill: the rest is checked the same way
            assert kills >= 5  # the schedule really did interrupt catch-ups
            code, _out, err = await cli("once", "--config", str(cfg))
            assert code in (0, 1), err
            reference, after = await snapshot(reference_url), await snapshot(killed_url)
            assert len(reference["findings"]) == 12  # 6 planted, in each log
            assert len(reference["index_all"]) == 8000
            assert after == reference

    run(body)


@pytest.mark.slow
def test_run_stops_cleanly_on_sigterm_and_logs_json(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"

    async def body() -> None:
        async with harness(tmp_path, entries=300, shards=2) as h:
            await h.admin("append", {"v1": 20000, "v2": 20000})  # too much to finish quickly
            logs = {"start": 0, "batch_size": 100}
            cfg = write_config(tmp_path / "m.yaml", h.sim, tmp_path, url, v1=logs, v2=logs)
            proc = await asyncio.create_subprocess_exec(
                TLOG_MONITOR,
                "run",
                "--config",
                str(cfg),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            assert proc.stderr is not None
            first = json.loads(await asyncio.wait_for(proc.stderr.readline(), 30))
            assert first["message"] == "api listening"
            assert first["url"].startswith("http://127.0.0.1:")
            while True:  # a warning that no API token is configured may come first
                line = json.loads(await asyncio.wait_for(proc.stderr.readline(), 30))
                if line["message"] == "monitor started":
                    break
            await asyncio.sleep(3.0)  # in the middle of catching up
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), 15)
            assert time.monotonic() - sent < 5.0
            assert proc.returncode == 0
            text = err.decode()
            non_json = [line for line in text.splitlines() if line and not line.startswith("{")]
            assert not non_json, text  # every line of standard error is a JSON log line
            lines = [json.loads(line) for line in text.splitlines() if line]
            assert lines[-1]["message"] == "monitor stopped"
            assert all(line["level"] != "error" for line in lines), lines
            store = await Store.open(url, migrate=False)
            try:
                for name in ("v1",):
                    state = await store.log_state(name)
                    assert state is not None
                    assert 0 < state.cursor < 20300  # stopped mid-way, with what it had proven
            finally:
                await store.close()

    run(body)


@pytest.mark.slow
def test_once_exit_codes(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"

    async def body() -> None:
        async with harness(tmp_path, entries=300, shards=2) as h:
            cfg = write_config(
                tmp_path / "m.yaml", h.sim, tmp_path, url, v1={"start": "tip"}, v2={"start": "tip"}
            )
            code, out, _ = await cli("once", "--config", str(cfg))
            assert code == 0, out  # nothing new
            assert "v1: 0 entries, 0 new findings, cursor 300 of 300" in out
            await h.admin("plant", {"index": 305, "identity": MALLORY})
            await h.admin("append", {"v1": 10, "v2": 10})
            code, out, _ = await cli("once", "--config", str(cfg))
            assert code == 1, out  # new findings
            assert "v1: 10 entries, 1 new findings, cursor 310 of 310" in out
            code, out, _ = await cli("once", "--config", str(cfg))
            assert code == 0, out
            await h.admin("append", {"v1": 10, "v2": 10})
            await h.admin("faults", {"shrink_by": 15})
            code, out, _ = await cli("once", "--config", str(cfg))
            assert code == 1, out  # the log lies: a finding, and nothing accepted past it
            assert "INTEGRITY FAILURE (tree_shrunk)" in out

            bad = tmp_path / "bad.yaml"
            bad.write_text(cfg.read_text().replace("/monitor.db", ""))  # a directory
            code, out, err = await cli("once", "--config", str(bad))
            assert code == 2  # the monitor itself failed: never success
            assert "Traceback" not in err
            assert "error: cannot open database" in err

            typo = tmp_path / "typo.yaml"
            typo.write_text(cfg.read_text().replace("poll_interval", "pol_interval"))
            code, out, err = await cli("once", "--config", str(typo))
            assert code == 2
            assert f"{typo}:" in err
            assert "pol_interval" in err
            assert "Traceback" not in err

    run(body)


@pytest.mark.slow
def test_backfill_is_verified_and_resumable(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"

    async def body() -> None:
        async with harness(tmp_path, entries=1000, shards=2) as h:
            cfg = write_config(
                tmp_path / "m.yaml",
                h.sim,
                tmp_path,
                url,
                v1={"start": "tip"},
                v2={"off": True},
                rules=[{"name": "everyone", "match": {"san": "*"}, "severity": "low"}],
            )
            code, out, err = await cli("once", "--config", str(cfg))
            assert code == 0, err
            code, out, err = await cli(
                "backfill", "--config", str(cfg), "--log", "v1", "--from", "450", "--to", "560"
            )
            assert code == 1, err  # the rule matches every certificate in the range
            assert "v1 [450, 560): 110 entries" in out
            code, out, err = await cli(
                "backfill", "--config", str(cfg), "--log", "v1", "--from", "450", "--to", "560"
            )
            assert code == 0, err  # done before: nothing to do, nothing new
            assert "v1 [450, 560): 0 entries, 0 new findings" in out
            code, out, err = await cli(
                "backfill", "--config", str(cfg), "--log", "nope", "--from", "1", "--to", "2"
            )
            assert code == 2
            assert "no log named 'nope'" in err
            store = await Store.open(url, migrate=False)
            try:
                bf = await store.backfill_state("v1", 450, 560)
                assert bf is not None
                assert bf.done
                state = await store.log_state("v1")
                assert state is not None
                assert state.cursor == 1000  # the tail's cursor is not the backfill's
            finally:
                await store.close()

    run(body)
