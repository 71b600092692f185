"""One log, tailed for as long as the daemon runs: a supervised loop of verified passes.

Each pass catches the log up to its latest checkpoint. Between passes the tailer waits for
the next poll (``wake``, called by the scheduler's poll job) or, after a failure, for a
jittered exponential backoff: an error of the log or the network, a database error, a lie
(the pass stopped at an integrity failure: retried, never skipped) or a bug alike. Nothing
that goes wrong in a pass ends the loop; only ``stop`` does.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

from monitor.core.aio import backoff_delay, wait_any
from monitor.core.errors import MonitorError
from monitor.core.metrics import DaemonMetrics
from monitor.core.status import LogStatus
from monitor.daemon.context import PassResult

__all__ = ["Backoff", "Tailer"]

log = logging.getLogger("monitor.tailer")


class Backoff:
    """Full-jitter exponential backoff: base * 2**n, capped, uniformly jittered."""

    def __init__(self, base: float = 1.0, cap: float = 300.0, rng: random.Random | None = None):
        self.base = base
        self.cap = cap
        self.failures = 0
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets

    def next_delay(self) -> float:
        self.failures += 1
        return backoff_delay(self.failures, self.base, self.cap, self._rng)

    def reset(self) -> None:
        self.failures = 0


class Tailer:
    def __init__(
        self,
        name: str,
        run_pass: Callable[[], Awaitable[PassResult]],
        status: LogStatus,
        *,
        metrics: DaemonMetrics | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.run_pass = run_pass
        self.status = status
        self.metrics = metrics
        self.backoff = backoff or Backoff()
        self.clock = clock
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Poll now (the scheduler's job; a backoff in progress is not cut short)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wake.clear()
            delay = await self.step()
            await self._wait(stop, delay)

    async def step(self) -> float | None:
        """One pass; the backoff before the next one, or None to wait for the next poll."""
        try:
            result = await self.run_pass()
        except asyncio.CancelledError:
            raise
        except MonitorError as e:
            self._failed(e, unexpected=False)
            return self.backoff.next_delay()
        except Exception as e:
            self._failed(e, unexpected=True)
            return self.backoff.next_delay()
        self.status.record_pass(result, self.clock())  # the pass itself keeps the gauges
        fields = {
            "log": self.name,
            "entries": result.entries,
            "findings": result.findings,
            "cursor": result.cursor,
            "log_size": result.log_size,
        }
        if result.failure is not None:
            fields["integrity_failure"] = str(result.failure.type)
            log.error("integrity failure: %s", result.failure.message, extra={"fields": fields})
            return self.backoff.next_delay()
        self.backoff.reset()
        if result.entries or result.findings:
            log.info("caught up", extra={"fields": fields})
        return None

    def _failed(self, e: BaseException, *, unexpected: bool) -> None:
        self.status.record_error(e, self.clock())
        if self.metrics is not None:
            self.metrics.pass_errors.labels(self.name, type(e).__name__).inc()
        fields = {"log": self.name, "failures": self.backoff.failures + 1}
        if unexpected:
            log.exception("pass crashed; restarting it", extra={"fields": fields})
        else:
            log.warning("pass failed: %s", e, extra={"fields": fields})

    async def _wait(self, stop: asyncio.Event, delay: float | None) -> None:
        # a backoff is waited out whatever the polls say; otherwise the next poll wakes us
        await wait_any([stop] if delay is not None else [stop, self._wake], delay)
