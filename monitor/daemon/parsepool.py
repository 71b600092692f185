"""Parsing and matching on worker processes, so that a backfill uses every core.

The pass's process fetches, proves and stores; parsing and matching (most of an entry's CPU)
run in ``workers`` processes, each chunk split into runs of consecutive entries (at least one
per worker) and put back in log order (``parsing.merged``). What crosses between processes is
kept small and cheap to pickle: the bodies one way; the other way, one ``IndexRow`` (pickled as
its values) per entry and full records only for the entries that matched a rule.

Small chunks (a tailer's few new entries) are parsed in place: a round trip to a worker costs
more than it saves. So are chunks that come while the workers start (a second or two each, to
import the parser): a pass never waits for them. The workers are started with ``spawn``, never
``fork``: the daemon has threads (SQLite's, the resolver's) that a forked child would inherit
half-held.

A worker that dies (killed, out of memory) breaks its pool: the chunk's pass fails with
``ParseWorkerError``, moving nothing, the pool is started afresh and the pass retried. Workers
that cannot be started (the process out of descriptors or memory) never hold the log up: the
chunks are parsed in place for a minute, then workers are tried again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from monitor.core.aio import cancel_and_wait
from monitor.core.errors import ParseWorkerError
from monitor.daemon.parsing import Chunk, Parsed, merged, parse_all, parse_chunk, split
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

log = logging.getLogger("monitor.daemon")


@dataclass(frozen=True)
class _CaSpec:
    """A Fulcio CA as a worker receives it (certificates do not pickle): DER and validity."""

    uri: str
    chain: tuple[bytes, ...]
    valid_from: datetime | None
    valid_until: datetime | None

    @classmethod
    def of(cls, ca: CertificateAuthority) -> _CaSpec:
        chain = tuple(c.public_bytes(Encoding.DER) for c in ca.chain)
        return cls(ca.uri, chain, ca.valid_from, ca.valid_until)

    def ca(self) -> CertificateAuthority:
        chain = tuple(x509.load_der_x509_certificate(der) for der in self.chain)
        return CertificateAuthority(self.uri, chain, self.valid_from, self.valid_until)


# -- in the worker --------------------------------------------------------------------------

_engine: RuleEngine | None = None


def _start(rules: tuple[RuleSpec, ...]) -> None:
    global _engine  # noqa: PLW0603  (the worker's one engine, compiled once at its start)
    _engine = RuleEngine.compile(rules)


@functools.lru_cache(maxsize=4)
def _cas(specs: tuple[_CaSpec, ...]) -> tuple[CertificateAuthority, ...]:
    # the trust root rarely changes: its CAs are rebuilt once per version, not per chunk
    return tuple(s.ca() for s in specs)


def _ready() -> None:
    """Nothing: done once the worker has started (imported the parser, compiled the rules)."""


def _parse(specs: tuple[_CaSpec, ...], chunk: Chunk) -> Parsed:
    if _engine is None:
        raise RuntimeError("parse worker used before its start")
    return parse_all(chunk, _engine, _cas(specs))


# -- in the pass's process ------------------------------------------------------------------


def worker_count(setting: int | Literal["auto"]) -> int:
    """Workers for ``parse_workers``: the number given, else (``auto``) one per core beyond
    the first, which the pass's own process uses (none on one core)."""
    if setting != "auto":
        return setting
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(0, (cores or 1) - 1)


class ParsePool:
    """``parse`` a chunk on ``workers`` processes (in place when ``workers`` is 0, the chunk is
    small, or the workers are still starting). ``close`` stops the workers."""

    def __init__(self, workers: int, rules: tuple[RuleSpec, ...]) -> None:
        if workers < 0:
            raise ValueError(f"parse workers must be 0 or more, not {workers}")
        self.workers = workers
        self._rules = rules
        self._executor: ProcessPoolExecutor | None = None
        self._warmups: list[Future[None]] = []  # one per worker: done once it is ready
        self._specs: tuple[tuple[CertificateAuthority, ...], tuple[_CaSpec, ...]] | None = None
        self._in_place_until = 0.0  # monotonic: workers could not be started; until then
        self.on_workers = 0  # chunks parsed on the workers so far

    def start(self) -> None:
        """Start the workers, without waiting for them (a worker takes a second or two to
        import the parser): until every one is ready, chunks are parsed in place."""
        if self.workers == 0 or self._executor is not None:
            return
        if time.monotonic() < self._in_place_until:
            return
        try:
            self._executor = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start,
                initargs=(self._rules,),
            )
            # each submission starts one more process while none is idle
            self._warmups = [self._executor.submit(_ready) for _ in range(self.workers)]
        except OSError as e:
            # no worker could be started (descriptors, memory or processes ran out): the log
            # is not held up for it; chunks are parsed here, and workers tried again later
            self._discard()
            self._in_place_until = time.monotonic() + RETRY_WORKERS_AFTER
            log.warning(
                "parse workers cannot be started, parsing in place for %.0f s: %s",
                RETRY_WORKERS_AFTER,
                e,
            )

    def _ready(self) -> ProcessPoolExecutor | None:
        """The executor once every worker is ready; None while they start. A worker that died
        before it was ready is a failure to start: in place for a while."""
        executor = self._executor
        if executor is None or not all(w.done() for w in self._warmups):
            return None
        if any(w.exception() is not None for w in self._warmups):
            failed = next(w.exception() for w in self._warmups if w.exception() is not None)
            self._discard()
            self._in_place_until = time.monotonic() + RETRY_WORKERS_AFTER
            log.warning("parse workers failed to start, parsing in place: %s", failed)
            return None
        return executor

    async def ready(self) -> bool:
        """Start the workers and wait until they are ready (or could not start)."""
        self.start()
        if self._warmups:
            await asyncio.wait([asyncio.wrap_future(w) for w in self._warmups])
        return self._ready() is not None

    def _ca_specs(self, cas: Sequence[CertificateAuthority]) -> tuple[_CaSpec, ...]:
        key = tuple(cas)
        if self._specs is None or self._specs[0] != key:
            self._specs = (key, tuple(_CaSpec.of(ca) for ca in key))
        return self._specs[1]

    async def parse(
        self, chunk: Chunk, engine: RuleEngine, cas: Sequence[CertificateAuthority]
    ) -> Parsed:
        """What ``parse_chunk`` gives for ``chunk``, the work spread over the workers."""
        if self.workers == 0 or len(chunk.entries) < IN_PLACE_BELOW:
            return await parse_chunk(chunk, engine, cas)
        self.start()
        executor = self._ready()
        if executor is None:
            return await parse_chunk(chunk, engine, cas)
        specs = self._ca_specs(cas)
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Parsed]] = []
        try:
            # a worker that died since the last chunk breaks the pool: submit raises at once
            parts_of = max(self.workers, -(-len(chunk.entries) // PART_ENTRIES))
            for part in split(chunk, parts_of):
                futures.append(loop.run_in_executor(executor, _parse, specs, part))
            parts = await asyncio.gather(*futures)
        except BrokenProcessPool as e:
            await cancel_and_wait(futures, quiet=True)
            self._discard()
            raise ParseWorkerError(f"a parse worker died: {e}") from e
        self.on_workers += 1
        return merged(parts)

    def _discard(self) -> None:
        executor, self._executor, self._warmups = self._executor, None, []
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers (after the chunks they are parsing)."""
        executor, self._executor, self._warmups = self._executor, None, []
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
