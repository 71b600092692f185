"""The daemon end to end, in process, against the simulator over loopback and a real database
(SQLite and PostgreSQL): tailing growing logs through a v1 rotation and a new v2 shard finds
exactly the planted entries; a lie gives one integrity finding and one alert per sink however
often it is retried; 20% transport faults change nothing in the final state."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from monitor.core.findings import FindingKind, FindingState
from monitor.daemon.context import PassResult
from monitor.daemon.service import Monitor
from monitor.daemon.v1source import RekorV1Source
from monitor.daemon.v2source import RekorV2Source
from monitor.logclient.http import HttpPolicy
from monitor.storage import FindingQuery
from monitor.storage.store import Store
from tests import storage_reads as reads
from tests.api_support import TOKENS, WRITE_TOKEN
from tests.daemon_support import (
    ARTIFACT,
    ENGINES,
    MALLORY,
    engine_urls,
    pg_dbs,
    snapshot,
    until,
    write_config,
)
from tests.simlog import Harness, harness, run

__all__ = ["pg_dbs"]


@pytest.fixture(params=ENGINES)
def make_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    yield from engine_urls(request, tmp_path)


def cursors(m: Monitor) -> dict[str, int | None]:
    return {n: r.status.cursor for n, r in m.runners.items()}


async def findings_by_log(store: Store) -> dict[str, list[tuple[int | None, str | None]]]:
    page = await store.findings(FindingQuery(limit=1000))
    out: dict[str, list[tuple[int | None, str | None]]] = {}
    for f in page.items:
        out.setdefault(f.finding.log or "", []).append((f.finding.index, f.finding.rule))
    return {k: sorted(v, key=lambda x: (x[0] or 0, x[1] or "")) for k, v in out.items()}


def test_tails_growing_logs_and_finds_exactly_the_planted_entries(
    tmp_path: Path, make_db: Callable[[str], str]
) -> None:
    url = make_db("monitor")

    async def body() -> None:
        async with harness(tmp_path, entries=600, shards=2) as h:
            cfg = write_config(
                tmp_path / "monitor.yaml",
                h.sim,
                tmp_path,
                url,
                v1={"start": "tip", "batch_size": 16},
                v2={"start": "tip", "batch_size": 16},
            )
            async with Monitor.open(str(cfg), health_interval=0.2) as m:
                (v2_name,) = [n for n in m.runners if n != "v1"]
                stop = asyncio.Event()
                task = asyncio.create_task(m.run(stop))
                await until(lambda: cursors(m) == {"v1": 600, v2_name: 600}, m)
                planted: list[tuple[int | None, str | None]] = []
                size = 600
                for rnd in range(4):
                    a, b = size + 5 + rnd, size + 30
                    await h.admin("plant", {"index": a, "identity": MALLORY})
                    await h.admin("plant", {"index": b, "digest": ARTIFACT})
                    planted += [(a, "mallory"), (b, "artifact")]
                    if rnd == 2:  # v1 rotates between the two planted entries
                        await h.admin("append", {"v1": 20, "v2": 40})
                        await h.admin("rotate", {})
                        await h.admin("append", {"v1": 20})
                    else:
                        await h.admin("append", {"v1": 40, "v2": 40})
                    size += 40
                    await until(lambda n=size: cursors(m) == {"v1": n, v2_name: n}, m)  # type: ignore[misc]

                await h.admin("v2-shard", {"name": "log2026-sim", "entries": 30})
                added = await m.refresh_trust()
                assert len(added) == 1
                await until(lambda: m.runners[added[0]].status.cursor == 30, m)
                stop.set()
                await asyncio.wait_for(task, 10)

            store = await Store.open(url, migrate=False)
            try:
                got = await findings_by_log(store)
                assert got == {"v1": planted, v2_name: planted}
                counts = await reads.counts(store)
                assert counts["entries"] == 2 * len(planted)
                assert counts["outbox"] == 2 * len(planted)  # one sink takes high and medium
                new_shard = await store.log_state(added[0])
                assert new_shard is not None
                assert new_shard.cursor == 30  # a new shard is read from its first entry
            finally:
                await store.close()

    run(body)


def test_a_lie_is_one_finding_and_one_alert_however_often_retried(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"

    async def body() -> None:
        async with harness(tmp_path, entries=300, shards=1) as h:
            cfg = write_config(tmp_path / "monitor.yaml", h.sim, tmp_path, url, v1={"start": "tip"})
            async with Monitor.open(str(cfg), retry_base=0.02) as m:
                stop = asyncio.Event()
                task = asyncio.create_task(m.run(stop))
                await until(lambda: set(cursors(m).values()) == {300}, m)
                await h.admin("append", {"v1": 10, "v2": 10})
                await h.admin("faults", {"bad_signature": True})
                tailers = [r.tailer for r in m.runners.values() if r.tailer is not None]
                await until(lambda: all(t.backoff.failures >= 4 for t in tailers), m)
                assert set(cursors(m).values()) == {300}  # nothing past the lie
                open_now = await m.store.findings(
                    FindingQuery(
                        kinds=(FindingKind.INTEGRITY_FAILURE,), states=(FindingState.OPEN,)
                    )
                )
                assert len(open_now.items) == 2  # one per log, open while it keeps lying
                await h.admin("faults", {"bad_signature": False})
                await until(lambda: set(cursors(m).values()) == {310}, m)
                stop.set()
                await asyncio.wait_for(task, 10)
            store = await Store.open(url, migrate=False)
            try:
                page = await store.findings(FindingQuery(kinds=(FindingKind.INTEGRITY_FAILURE,)))
                assert sorted(f.finding.type or "" for f in page.items) == [
                    "bad_checkpoint_signature",
                    "bad_checkpoint_signature",
                ]
                assert {f.finding.log for f in page.items} == set(cursors(m))
                for f in page.items:
                    sent = [
                        (o.sink, o.event)
                        for o in await reads.outbox_for(store, f.finding.dedup_key)
                    ]
                    assert sent == [("soc", "trigger"), ("soc", "resolve")]
                    # open while the log lied; resolved once new entries proved it consistent
                    assert f.finding.state is FindingState.RESOLVED
                    assert f.state_changed_by == "monitor"
                    assert f.evidence is not None
            finally:
                await store.close()

    run(body)


# one request in five fails; 429s say Retry-After: 0 (each still halves the request rate)
FAULTS = {
    "rate_5xx": 0.1,
    "rate_429": 0.04,
    "rate_timeout": 0.02,
    "rate_truncate": 0.04,
    "retry_after_seconds": 0,
}


def quick_retries(p: HttpPolicy) -> HttpPolicy:
    return dataclasses.replace(p, backoff_base_seconds=0.02, backoff_cap_seconds=0.2)


async def once_until_done(m: Monitor, attempts: int = 20) -> dict[str, PassResult | Exception]:
    """``once`` again until every log got through a pass (faults may fail some)."""
    for _ in range(attempts):
        results = await m.once()
        if all(isinstance(r, PassResult) and r.cursor == r.log_size for r in results.values()):
            return dict(results)
    raise AssertionError(f"no clean pass in {attempts} attempts: {results}")


@pytest.mark.slow
def test_twenty_percent_faults_give_the_same_final_state(
    tmp_path: Path, make_db: Callable[[str], str]
) -> None:
    clean_url, faulty_url = make_db("clean"), make_db("faulty")

    async def plant(h: Harness) -> None:
        for i in (20, 333, 700, 1111):
            await h.admin("plant", {"index": 1200 + i, "identity": MALLORY})
        await h.admin("plant", {"index": 1500, "digest": ARTIFACT})
        await h.admin("append", {"v1": 1200, "v2": 1200})

    async def body() -> None:
        async with harness(tmp_path, entries=1200, shards=2) as h:
            await plant(h)
            overrides = {"start": 900, "batch_size": 64, "index_all": True, "timeout": "1s"}
            for url, name in ((clean_url, "clean"), (faulty_url, "faulty")):
                cfg = write_config(
                    tmp_path / f"{name}.yaml", h.sim, tmp_path, url, v1=overrides, v2=overrides
                )
                if name == "faulty":
                    await h.admin("faults", FAULTS)
                async with Monitor.open(str(cfg), tune_http=quick_retries) as m:
                    results = await once_until_done(m)
                    assert {r.cursor for r in results.values() if isinstance(r, PassResult)} == {
                        2400
                    }
            requests = await h.admin("state")
            assert requests["requests"] > 0
            clean, faulty = await snapshot(clean_url), await snapshot(faulty_url)
            assert len(clean["index_all"]) == 2 * 1500
            assert len(clean["findings"]) == 2 * 5
            assert faulty == clean

    run(body)


def test_retention_purges_old_index_rows_of_its_log_only(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"

    async def body() -> None:
        async with harness(tmp_path, entries=300, shards=1) as h:
            cfg = write_config(
                tmp_path / "monitor.yaml",
                h.sim,
                tmp_path,
                url,
                v1={"start": 200, "index_all": True, "retention": "1h"},
                v2={"start": 200, "index_all": True},
            )
            async with Monitor.open(str(cfg)) as m:
                await m.once()
                (v2_name,) = [n for n in m.runners if n != "v1"]
                before = await snapshot(url)
                assert {row[0] for row in before["index_all"]} == {"v1", v2_name}
                await m.apply_retention()  # the simulator's entries are older than an hour
                after = await snapshot(url)
                assert {row[0] for row in after["index_all"]} == {v2_name}
                assert len(after["index_all"]) == 100
                processed = sum(  # over the entry kinds
                    s.value
                    for metric in m.registry.collect()
                    for s in metric.samples
                    if s.name == "tlog_monitor_entries_processed_total" and s.labels["log"] == "v1"
                )
                assert processed == 100

    run(body)


POD = "rekor-00001-deployment-56bf7777c9-jds5x"
POD_AFTER_RESTART = "rekor-00001-deployment-56bf7777c9-q8w2n"


def test_a_v1_log_signing_as_its_pod_is_monitored_across_a_restart(
    tmp_path: Path, make_db: Callable[[str], str], caplog: pytest.LogCaptureFixture
) -> None:
    """A scaffolding Rekor v1 signs checkpoints under its pod name, not its URL, and a restarted
    pod signs under a new one: the monitor tails it as any other log (findings as usual, no
    integrity finding), says once that the name changed, and keeps the notes of both names."""
    url = make_db("monitor")
    caplog.set_level("INFO", logger="monitor.daemon.catchup")

    async def body() -> None:
        async with harness(tmp_path, entries=300, shards=2, v1_key_name=POD) as h:
            cfg = write_config(
                tmp_path / "monitor.yaml", h.sim, tmp_path, url, v1={"start": 0}, v2={"off": True}
            )
            async with Monitor.open(str(cfg), health_interval=0.2) as m:
                stop = asyncio.Event()
                task = asyncio.create_task(m.run(stop))
                await h.admin("plant", {"index": 310, "identity": MALLORY})
                await h.admin("append", {"v1": 20})
                await until(lambda: cursors(m) == {"v1": 320}, m)
                # the pod restarts under a new name; the log does not grow at first
                await h.admin("v1-key-name", {"name": POD_AFTER_RESTART})

                async def origins() -> set[str]:
                    return {c.origin.split(" - ")[0] for c in await m.store.checkpoints("v1")}

                for _ in range(100):
                    if POD_AFTER_RESTART in await origins():
                        break
                    await asyncio.sleep(0.1)
                await h.admin("plant", {"index": 330, "digest": ARTIFACT})
                await h.admin("append", {"v1": 20})
                await until(lambda: cursors(m) == {"v1": 340}, m)
                assert await origins() == {POD, POD_AFTER_RESTART}
                stop.set()
                await asyncio.wait_for(task, 10)

            store = await Store.open(url, migrate=False)
            try:
                assert await findings_by_log(store) == {"v1": [(310, "mallory"), (330, "artifact")]}
                page = await store.findings(FindingQuery(kinds=(FindingKind.INTEGRITY_FAILURE,)))
                assert page.items == ()
            finally:
                await store.close()

    run(body)
    renames = [r for r in caplog.records if r.getMessage() == "log signs under a new name"]
    assert len(renames) == 1
    fields = renames[0].__dict__["fields"]
    assert (fields["was"].split(" - ")[0], fields["now"].split(" - ")[0]) == (
        POD,
        POD_AFTER_RESTART,
    )


def test_a_proven_lie_stays_open_and_the_log_not_ready_until_a_person_resolves_it(
    tmp_path: Path,
) -> None:
    """A fork (two signed views) and a shrunk tree are proof that the log misbehaved: a later
    consistent view does not resolve them (no resolve is sent), the log is not ready from the
    moment the lie is seen, and only a person's resolve clears it. A tampered entry (served
    wrong, never signed) clears by itself once the log serves it right."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"

    async def body() -> None:
        async with harness(tmp_path, entries=300, shards=1) as h:
            cfg = write_config(
                tmp_path / "monitor.yaml",
                h.sim,
                tmp_path,
                url,
                v1={"start": "tip"},
                v2={"off": True},
                server={"tokens": TOKENS},
            )
            auth = {"Authorization": f"Bearer {WRITE_TOKEN}"}
            async with (
                Monitor.open(str(cfg), retry_base=0.02) as m,
                aiohttp.ClientSession() as session,
            ):
                stop = asyncio.Event()
                task = asyncio.create_task(m.run(stop))
                await until(lambda: cursors(m) == {"v1": 300}, m)
                while m.api is None or m.api.url is None:
                    await asyncio.sleep(0.05)
                base = m.api.url

                async def ready() -> tuple[int, Any]:
                    async with session.get(f"{base}/readyz") as r:
                        return r.status, await r.json()

                async def lies(state: FindingState) -> dict[str, int]:
                    q = FindingQuery(kinds=(FindingKind.INTEGRITY_FAILURE,), states=(state,))
                    page = await m.store.findings(q)
                    return {f.finding.type or "": f.finding.id or 0 for f in page.items}

                assert (await ready())[0] == 200
                # the log shows a tree that forks from the one verified, then recovers
                await h.admin("append", {"v1": 10})
                await h.admin("faults", {"fork_at": 100})  # a leaf already verified
                await until(lambda: m.runners["v1"].status.lie is not None, m)
                status, doc = await ready()
                assert status == 503
                assert doc["logs"]["v1"].startswith("integrity failure")
                await h.admin("faults", {"fork_at": None})
                await h.admin("append", {"v1": 10})
                await until(lambda: cursors(m) == {"v1": 320}, m)
                # the other view was signed: still open, still not ready, nothing resolved
                fork = await lies(FindingState.OPEN)
                assert list(fork) == ["consistency_failure"]
                status, doc = await ready()
                assert (status, doc["logs"]["v1"]) == (
                    503,
                    "integrity failure open (consistency_failure)",
                )
                # a tampered entry: not signed, served right again later; it clears itself
                await h.admin("faults", {"tamper": [325]})
                await h.admin("append", {"v1": 10})
                await until(lambda: m.runners["v1"].status.lie == "entry_not_in_tree", m)
                await h.admin("faults", {"tamper": []})
                await h.admin("append", {"v1": 10})
                await until(lambda: cursors(m) == {"v1": 340}, m)
                assert "entry_not_in_tree" in await lies(FindingState.RESOLVED)
                assert list(await lies(FindingState.OPEN)) == ["consistency_failure"]
                # a person resolves the fork: ready again
                fid = fork["consistency_failure"]
                async with session.post(
                    f"{base}/api/v1/findings/{fid}/resolve",
                    json={"comment": "the operator explained the fork"},
                    headers=auth,
                ) as r:
                    assert r.status == 200, await r.text()
                assert (await ready())[0] == 200
                stop.set()
                await asyncio.wait_for(task, 10)
            store = await Store.open(url, migrate=False)
            try:
                page = await store.findings(FindingQuery(kinds=(FindingKind.INTEGRITY_FAILURE,)))
                by_type = {f.finding.type: f for f in page.items}
                assert by_type["consistency_failure"].state_changed_by == "writer"
                assert by_type["entry_not_in_tree"].state_changed_by == "monitor"
            finally:
                await store.close()

    run(body)


def test_each_log_is_read_with_its_own_limits(tmp_path: Path) -> None:
    """The bounds a log's settings give (entry size, memory budget, how long withheld data is
    an outage) reach the client that reads it."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"

    async def body() -> None:
        async with harness(tmp_path, entries=20, shards=1) as h:
            limits = {"max_entry_bytes": 65536, "memory_budget_bytes": 8 << 20}
            cfg = write_config(
                tmp_path / "monitor.yaml",
                h.sim,
                tmp_path,
                url,
                v1={**limits, "missing_after": "90s"},
                v2={"missing_after": "2m"},
            )
            async with Monitor.open(str(cfg)) as m:
                policies = {}
                for n, r in m.runners.items():
                    assert isinstance(r.source, RekorV1Source | RekorV2Source)
                    policies[n] = r.source.client.http.policy
                v1 = policies.pop("v1")
                assert (v1.max_entry_bytes, v1.memory_budget_bytes) == (65536, 8 << 20)
                assert v1.missing_after_seconds == 90
                (v2,) = policies.values()
                assert v2.missing_after_seconds == 120

    run(body)
