"""Parsing and matching on worker processes, so that a backfill uses every core.

The pass's process fetches, proves and stores; parsing and matching (most of an entry's CPU)
run in ``workers`` processes (``parseworker``), each chunk split into runs of consecutive
entries (at least one per worker) and put back in log order (``parsing.merged``). What
crosses between processes is kept small and cheap to pickle: the bodies one way; the other
way, one ``IndexRow`` (pickled as its values) per entry and full records only for the entries
that matched a rule. Several logs' passes share the workers: each run takes a free one.

Each worker holds two parts at a time (``parseworker.IN_FLIGHT``): while it parses one, the
next is already in its own memory, and its answers wait in its own. Sent one at a time, a
part went only once the answer to the one before was read, which this process's event loop
did between its own turns of proving and storing: the worker waited for it about 30% of
the time. A pass cancelled meanwhile leaves the workers running (each part was sent whole;
late answers are dropped).

Small chunks (a tailer's few new entries) are parsed in place: a round trip to a worker costs
more than it saves. So are chunks that come while the workers start (a second or so each, to
import the parser): a pass never waits for them.

A worker that dies (killed, out of memory), or fails, fails the chunk's pass with
``ParseWorkerError``, moving nothing; every worker is stopped and fresh ones started. Workers
that cannot be started (the process out of descriptors or memory) never hold the log up: the
chunks are parsed in place for a minute, then workers are tried again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import pickle
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import monitor
from monitor.core.aio import cancel_and_wait
from monitor.core.errors import ParseWorkerError
from monitor.daemon.parseworker import HEADER, IN_FLIGHT, CaSpec, frame
from monitor.daemon.parsing import Chunk, Parsed, merged, parse_chunk, split
from monitor.rules.engine import RuleEngine
from monitor.rules.spec import RuleSpec
from monitor.trust import CertificateAuthority

__all__ = ["IN_PLACE_BELOW", "ParsePool", "worker_count"]

# entries: a chunk smaller than this is parsed in place (a worker's round trip costs ~1 ms)
IN_PLACE_BELOW = 256
# entries a worker is sent at once: a chunk (4,096 entries of a few KB) goes in parts, so that
# its pickled copy is a few MB at a time, and the first part is parsed while the rest are sent
PART_ENTRIES = 1024
RETRY_WORKERS_AFTER = 60.0  # seconds in place after workers could not be started
# ``auto`` starts at most this many workers (about 55 MB each): more, on a machine with the
# cores for them, are asked for by number
AUTO_MAX = 4
CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: the CPU quota of a container
STOP_SECONDS = 5.0  # a worker told to stop (its stdin closed) is killed after this
# the directory that holds the ``monitor`` package, for the workers' imports
_PACKAGE_ROOT = str(Path(monitor.__file__).resolve().parent.parent)

log = logging.getLogger("monitor.daemon")


def worker_count(setting: int | Literal["auto"], cpu_max: Path = CPU_MAX) -> int:
    """Workers for ``parse_workers``: the number given, else (``auto``) one per core beyond
    the first, which the pass's own process uses (none on one core), counting the cores the
    process may use (its affinity, and its cgroup's CPU quota in a container: a pod limited to
    2 CPUs on a 32-core node gets one worker), at most ``AUTO_MAX``."""
    if setting != "auto":
        return setting
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    quota = _cgroup_cores(cpu_max)
    if quota is not None:
        cores = min(cores, quota)
    return max(0, min(cores - 1, AUTO_MAX))


def _cgroup_cores(cpu_max: Path) -> int | None:
    """The cores a cgroup v2 CPU quota allows (``cpu.max``: "QUOTA PERIOD", or "max" for
    none), rounded up; None without a quota."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota == "max":
            return None
        return max(1, -(-int(quota) // int(period)))
    except (OSError, ValueError):
        return None


class _Worker:
    """One worker process and its pipes; up to ``IN_FLIGHT`` messages in flight, answered in
    order."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self._waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._reader: asyncio.Task[None] | None = None
        self._failed: ParseWorkerError | None = None

    @classmethod
    async def start(cls, rules: tuple[RuleSpec, ...]) -> _Worker:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "monitor.daemon.parseworker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        worker = cls(proc)
        try:
            reply = await worker.call(rules)
            if reply != ("ready", None):
                raise ParseWorkerError(f"a parse worker started with {reply!r}")
        except BaseException:
            worker.kill()
            raise
        return worker

    def _died(self) -> ParseWorkerError:
        return ParseWorkerError(f"a parse worker died (exit status {self.proc.returncode})")

    async def call(self, message: object) -> Any:
        """Send ``message``; the worker's answer (after those to the messages sent before)."""
        stdin = self.proc.stdin
        if stdin is None or self.proc.stdout is None:
            raise ParseWorkerError("a parse worker has no pipes")
        if self._failed is not None:
            raise self._failed
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append(answer)
        if self._reader is None:
            self._reader = asyncio.ensure_future(self._read_answers())
        try:
            stdin.write(frame(message))  # whole, into the pipe's buffer: never half a message
            await stdin.drain()
        except ConnectionError as e:
            raise self._died() from e
        return await answer

    async def _read_answers(self) -> None:
        """Each answer to the caller that waits for it (one cancelled meanwhile: dropped);
        once the worker is gone, every caller still waiting gets ``ParseWorkerError``."""
        stdout = self.proc.stdout
        assert stdout is not None
        try:
            while True:
                size = int.from_bytes(await stdout.readexactly(HEADER), "big")
                data = await stdout.readexactly(size)
                if not self._waiting:
                    raise ParseWorkerError("a parse worker answered what it was not asked")
                answer = self._waiting.popleft()
                if not answer.done():
                    # our own worker's answer, over its own pipe
                    answer.set_result(pickle.loads(data))  # noqa: S301
        except (asyncio.IncompleteReadError, ConnectionError):
            self._fail(self._died())
        except ParseWorkerError as e:
            self.kill()
            self._fail(e)

    def _fail(self, error: ParseWorkerError) -> None:
        self._failed = error
        while self._waiting:
            answer = self._waiting.popleft()
            if not answer.done():
                answer.set_exception(error)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    async def stop(self) -> None:
        """Close its stdin (it ends there), killed if it has not after ``STOP_SECONDS``."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), STOP_SECONDS)
        except TimeoutError:
            self.kill()
            await self.proc.wait()
        if self._reader is not None:
            await cancel_and_wait((self._reader,), quiet=True)


class ParsePool:
    """``parse`` a chunk on ``workers`` processes (in place when ``workers`` is 0, the chunk is
    small, or the workers are still starting). ``close`` stops the workers."""

    def __init__(self, workers: int, rules: tuple[RuleSpec, ...]) -> None:
        if workers < 0:
            raise ValueError(f"parse workers must be 0 or more, not {workers}")
        self.workers = workers
        self._rules = rules
        self._starting: asyncio.Task[list[_Worker]] | None = None
        self._idle: asyncio.Queue[_Worker | None] | None = None  # once every worker is ready
        self._all: list[_Worker] = []
        self._specs: tuple[tuple[CertificateAuthority, ...], tuple[CaSpec, ...]] | None = None
        self._in_place_until = 0.0  # monotonic: workers could not be started; until then
        self.on_workers = 0  # chunks parsed on the workers so far

    def start(self) -> None:
        """Start the workers, without waiting for them: until every one is ready, chunks are
        parsed in place. Call from the event loop."""
        if self.workers == 0 or self._starting is not None:
            return
        if time.monotonic() < self._in_place_until:
            return
        self._starting = asyncio.ensure_future(self._start_all())

    async def _start_all(self) -> list[_Worker]:
        started = await asyncio.gather(
            *(_Worker.start(self._rules) for _ in range(self.workers)), return_exceptions=True
        )
        workers = [w for w in started if isinstance(w, _Worker)]
        failed = next((e for e in started if isinstance(e, BaseException)), None)
        if failed is not None:
            for w in workers:
                w.kill()
            raise failed
        return workers

    def _ready(self) -> asyncio.Queue[_Worker | None] | None:
        """The idle workers once every one is ready; None while they start. Workers that
        could not start leave chunks parsed in place for ``RETRY_WORKERS_AFTER``."""
        starting = self._starting
        if self._idle is not None or starting is None or not starting.done():
            return self._idle
        failed = None if starting.cancelled() else starting.exception()
        if failed is not None or starting.cancelled():
            self._starting = None
            self._in_place_until = time.monotonic() + RETRY_WORKERS_AFTER
            log.warning(
                "parse workers cannot be started, parsing in place for %.0f s: %s",
                RETRY_WORKERS_AFTER,
                failed,
            )
            return None
        self._all = starting.result()
        self._idle = asyncio.Queue()
        for _ in range(IN_FLIGHT):
            for w in self._all:
                self._idle.put_nowait(w)
        return self._idle

    async def ready(self) -> bool:
        """Start the workers and wait until they are ready (or could not start)."""
        self.start()
        if self._starting is not None:
            await asyncio.wait([self._starting])
        return self._ready() is not None

    def _ca_specs(self, cas: Sequence[CertificateAuthority]) -> tuple[CaSpec, ...]:
        key = tuple(cas)
        if self._specs is None or self._specs[0] != key:
            self._specs = (key, tuple(CaSpec.of(ca) for ca in key))
        return self._specs[1]

    async def parse(
        self, chunk: Chunk, engine: RuleEngine, cas: Sequence[CertificateAuthority]
    ) -> Parsed:
        """What ``parse_chunk`` gives for ``chunk``, the work spread over the workers."""
        if self.workers == 0 or len(chunk.entries) < IN_PLACE_BELOW:
            return await parse_chunk(chunk, engine, cas)
        self.start()
        idle = self._ready()
        if idle is None:
            return await parse_chunk(chunk, engine, cas)
        specs = self._ca_specs(cas)
        parts = max(self.workers, -(-len(chunk.entries) // PART_ENTRIES))
        runs = [asyncio.ensure_future(self._run(idle, specs, p)) for p in split(chunk, parts)]
        try:
            parsed = await asyncio.gather(*runs)
        except BaseException:
            await cancel_and_wait(runs, quiet=True)
            raise
        self.on_workers += 1
        return merged(parsed)

    async def _run(
        self, idle: asyncio.Queue[_Worker | None], specs: tuple[CaSpec, ...], part: Chunk
    ) -> Parsed:
        worker = await idle.get()
        if worker is None:  # the workers were killed while this part waited for one
            idle.put_nowait(None)  # and so they are for every other part waiting
            raise ParseWorkerError("the parse workers were stopped after one failed")
        try:
            reply = await worker.call((specs, part))
        except asyncio.CancelledError:
            # the part was sent whole: the worker goes on, and its answer is dropped
            idle.put_nowait(worker)
            raise
        except BaseException:
            self._discard()
            raise
        idle.put_nowait(worker)
        status, value = reply
        if status != "ok":
            self._discard()
            raise ParseWorkerError(f"a parse worker failed: {value}")
        if not isinstance(value, Parsed):
            self._discard()
            raise ParseWorkerError(f"a parse worker answered {type(value).__name__}")
        return value

    def _discard(self) -> None:
        """Kill every worker; the next chunk starts fresh ones."""
        for w in self._all:
            w.kill()
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
        if self._idle is not None:
            self._idle.put_nowait(None)
        self._starting, self._idle, self._all = None, None, []

    async def close(self) -> None:
        """Stop the workers (each after the part it is parsing)."""
        starting, workers = self._starting, self._all
        self._starting, self._idle, self._all = None, None, []
        if starting is not None and not workers:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                workers = await starting
        await asyncio.gather(*(w.stop() for w in workers))
