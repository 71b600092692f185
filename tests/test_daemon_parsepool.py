"""monitor.daemon.parsepool: parsing and matching on worker processes gives exactly what
parsing in place gives (records, findings, malformed entries, index rows, in log order), a
pass stores the same through either, and a worker that dies fails the chunk's pass, moving
nothing, while the next pass goes on with fresh workers."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from monitor.config import ConfigFileError, parse_settings
from monitor.core.errors import ParseWorkerError
from monitor.core.findings import Severity
from monitor.daemon import PassContext, RekorV2Source
from monitor.daemon import catch_up as one_pass
from monitor.daemon.parsepool import (
    AUTO_MAX,
    IN_PLACE_BELOW,
    PART_ENTRIES,
    ParsePool,
    worker_count,
)
from monitor.daemon.parseworker import IN_FLIGHT
from monitor.daemon.parsing import Chunk, Parsed, parse_chunk, split
from monitor.rules.engine import RuleEngine
from monitor.rules.spec import RuleSpec, Selector
from monitor.sim.ca import SimCA
from monitor.sim.factory import EntryFactory
from monitor.storage.store import Store
from tests.daemon_support import snapshot
from tests.simlog import harness, run

LOG = "v2-sim"
MALLORY = "mallory@evil.example"


def rule(name: str, match: dict[str, Any], expect: dict[str, Any] | None = None) -> RuleSpec:
    return RuleSpec(
        name,
        Selector.parse(match),
        None if expect is None else Selector.parse(expect),
        Severity.HIGH,
    )


# a watched address, a policy that every GitHub workflow entry breaks (each a finding with a
# chain check against the CAs), and an artifact
SPECS = (
    rule("mallory", {"san": MALLORY}),
    rule(
        "workflows",
        {"issuer": "https://token.actions.githubusercontent.com"},
        {"issuer": "https://nobody.example"},
    ),
    rule("artifact", {"digest": "sha256:" + "cd" * 32}),
)
MALFORMED = (b"not json", b'{"kind": "hashedrekord"}', b"\xff\xfe")


def test_split_keeps_every_entry_in_order() -> None:
    chunk = Chunk("l", tuple((i, b"", None, None) for i in range(7)), True, 0)
    for parts in (1, 2, 3, 7, 9):
        pieces = split(chunk, parts)
        assert len(pieces) == min(parts, 7)
        assert [e for p in pieces for e in p.entries] == list(chunk.entries)
        assert max(len(p.entries) for p in pieces) - min(len(p.entries) for p in pieces) <= 1


def test_auto_is_one_worker_per_core_beyond_the_first(tmp_path: Path) -> None:
    cores = len(os.sched_getaffinity(0))
    none = tmp_path / "absent"
    assert worker_count("auto", none) == min(max(0, cores - 1), AUTO_MAX)
    assert worker_count(0) == 0
    assert worker_count(9) == 9  # a number is taken as given
    cpu_max = tmp_path / "cpu.max"
    for text, allowed in (("max 100000\n", cores), ("100000 100000\n", 1), ("150000 100000", 2)):
        cpu_max.write_text(text)  # a container's CPU quota counts, rounded up
        assert worker_count("auto", cpu_max) == min(max(0, min(cores, allowed) - 1), AUTO_MAX)
    cpu_max.write_text("garbage")
    assert worker_count("auto", cpu_max) == worker_count("auto", none)
    with pytest.raises(ValueError, match="0 or more"):
        ParsePool(-1, SPECS)


def test_workers_give_what_parsing_in_place_gives(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path, entries=8) as h:
            cas = h.trust.certificate_authorities
        factory = EntryFactory(5, SimCA.create(5))
        bodies = [factory.v2_entry(i).body for i in range(IN_PLACE_BELOW + 40)]
        for at, bad in zip((0, 7, 200), MALFORMED, strict=True):
            bodies[at] = bad
        chunk = Chunk(
            LOG, tuple((i, b, 1_700_000_000 + i, None) for i, b in enumerate(bodies)), True, 5
        )
        engine = RuleEngine.compile(SPECS)
        here = await parse_chunk(chunk, engine, cas)
        assert len(here.malformed) == 3  # the chunk exercises both
        assert here.records
        assert any(r.signers for r in here.records)
        pool = ParsePool(2, SPECS)
        try:
            assert await pool.ready()
            there = await pool.parse(chunk, engine, cas)
            assert pool.on_workers == 1
            assert there == here
            small = Chunk(LOG, chunk.entries[:10], True, 5)  # parsed in place: same again
            assert await pool.parse(small, engine, cas) == await parse_chunk(small, engine, cas)
        finally:
            await pool.close()

    run(body)


def test_a_pass_stores_the_same_through_workers(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path, entries=600) as h:
            await h.admin("plant", {"index": 650, "identity": {"email": MALLORY}})
            await h.admin("plant", {"index": 940, "digest": "cd" * 32})
            await h.admin("append", {"v2": 400})
            engine = RuleEngine.compile(SPECS)
            cas = h.trust.certificate_authorities
            urls = []
            for name, parser in (("here", None), ("there", ParsePool(2, SPECS))):
                url = f"sqlite+aiosqlite:///{tmp_path / f'{name}.db'}"
                store = await Store.open(url)
                try:
                    assert parser is None or await parser.ready()
                    ctx = PassContext(LOG, store, engine, cas, index_all=True, parser=parser)
                    got = await one_pass(RekorV2Source(h.v2), ctx, start=0, chunk=300)
                    assert (got.cursor, got.failure) == (1000, None)
                    # 300, 300, 300 on the workers, the last 100 in place
                    assert parser is None or parser.on_workers == 3
                finally:
                    await store.close()
                    if parser is not None:
                        await parser.close()
                urls.append(url)
            here, there = [await snapshot(u) for u in urls]
            assert len(here["index_all"]) == 1000
            assert {f[5] for f in here["findings"]} >= {650, 940}
            assert there == here

    run(body)


def test_a_dead_worker_fails_the_pass_moving_nothing_and_the_next_pass_goes_on(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with harness(tmp_path, entries=600) as h:
            engine = RuleEngine.compile(SPECS)
            cas = h.trust.certificate_authorities
            pool = ParsePool(1, SPECS)
            store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}")
            try:
                assert await pool.ready()
                ctx = PassContext(LOG, store, engine, cas, index_all=True, parser=pool)
                got = await one_pass(RekorV2Source(h.v2), ctx, start=0, chunk=300)
                assert got.cursor == 600
                await h.admin("append", {"v2": 300})
                (worker,) = pool._all  # the test kills its worker
                os.kill(worker.proc.pid, signal.SIGKILL)
                with pytest.raises(ParseWorkerError, match="parse worker died"):
                    await one_pass(RekorV2Source(h.v2), ctx, start="resume", chunk=300)
                state = await store.log_state(LOG)
                assert state is not None
                assert state.cursor == 600
                again = await one_pass(RekorV2Source(h.v2), ctx, start="resume", chunk=300)
                assert (again.entries, again.cursor, again.failure) == (300, 900, None)
            finally:
                await store.close()
                await pool.close()

    run(body)


MINIMAL = "logs:\n  - {name: rekor, api: v1, url: 'https://rekor.sigstore.dev'}\n"


def test_parse_workers_are_auto_unless_set_and_a_bad_count_names_the_field() -> None:
    assert parse_settings(MINIMAL, "c.yaml", environ={}).processing.parse_workers == "auto"
    for given, want in (("0", 0), ("3", 3), ("auto", "auto")):
        text = f"{MINIMAL}processing:\n  parse_workers: {given}\n"
        assert parse_settings(text, "c.yaml", environ={}).processing.parse_workers == want
    for bad in ("-1", "65", "many", "1.5"):
        with pytest.raises(ConfigFileError) as info:
            parse_settings(f"{MINIMAL}processing:\n  parse_workers: {bad}\n", "c.yaml", environ={})
        (line,) = info.value.lines
        assert line.startswith("c.yaml:4: processing.parse_workers: "), line


def test_workers_that_cannot_start_leave_the_chunk_parsed_in_place(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Out of descriptors (an API flood, say), no worker can be started: the log is not held
    up, the chunk is parsed in place, and workers are tried again a minute later."""

    async def body() -> None:
        factory = EntryFactory(5, SimCA.create(5))
        entries = tuple((i, factory.v2_entry(i).body, None, None) for i in range(300))
        chunk = Chunk(LOG, entries, True, 5)
        engine = RuleEngine.compile(SPECS)
        pool = ParsePool(2, SPECS)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        open_now = len(os.listdir("/proc/self/fd"))
        resource.setrlimit(resource.RLIMIT_NOFILE, (open_now, hard))  # no new descriptor
        try:
            started = await pool.ready()
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        try:
            assert not started
            assert "parse workers cannot be started" in caplog.text
            assert not pool._all  # nothing half-started is kept
            got = await pool.parse(chunk, engine, ())  # in place for a while
            assert got == await parse_chunk(chunk, engine, ())
            assert not pool._all
            assert pool.on_workers == 0
        finally:
            await pool.close()

    run(body)


async def _until(cond: Any, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.001)


def _sim_chunk(entries: int) -> Chunk:
    factory = EntryFactory(5, SimCA.create(5))
    bodies = [factory.v2_entry(i).body for i in range(entries)]
    return Chunk(LOG, tuple((i, b, 1_700_000_000 + i, None) for i, b in enumerate(bodies)), True, 5)


@dataclass(frozen=True)
class _InFlight:
    """A pool of one worker holding two parts of ``chunk``, which ``task`` parses."""

    chunk: Chunk
    engine: RuleEngine
    pool: ParsePool
    worker: Any
    task: asyncio.Future[Parsed]


@asynccontextmanager
async def _two_parts_in_flight() -> AsyncIterator[_InFlight]:
    chunk = _sim_chunk(3 * PART_ENTRIES // 2)  # two parts, at least
    engine = RuleEngine.compile(SPECS)
    pool = ParsePool(1, SPECS)
    try:
        assert await pool.ready()
        (worker,) = pool._all
        task = asyncio.ensure_future(pool.parse(chunk, engine, ()))
        await _until(lambda: len(worker._waiting) == IN_FLIGHT or task.done())
        assert len(worker._waiting) == IN_FLIGHT
        yield _InFlight(chunk, engine, pool, worker, task)
    finally:
        await pool.close()


def test_a_worker_is_sent_the_next_part_before_it_answers_and_answers_in_order(
    tmp_path: Path,
) -> None:
    """One worker, a chunk of several parts: two are in flight on it at once (it parses on
    while this process is busy elsewhere), and the parts come back in log order."""

    async def body() -> None:
        async with _two_parts_in_flight() as f:
            assert await f.task == await parse_chunk(f.chunk, f.engine, ())

    run(body)


def test_a_cancelled_parse_leaves_the_workers_running(tmp_path: Path) -> None:
    """A pass cancelled while its parts are on a worker (a stop, a lease lost): the parts
    were sent whole, so the worker is kept (other logs' passes share it) and its late
    answers are dropped; the next chunk parses right on it."""

    async def body() -> None:
        async with _two_parts_in_flight() as f:
            f.task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await f.task
            assert f.pool._all == [f.worker]
            assert f.worker.proc.returncode is None
            small = Chunk(LOG, f.chunk.entries[:IN_PLACE_BELOW], True, 5)
            assert await f.pool.parse(small, f.engine, ()) == await parse_chunk(small, f.engine, ())
            assert f.pool._all == [f.worker]
            assert not f.worker._waiting

    run(body)
