"""The tailers of the logs this process leads: one supervised ``Tailer`` task per log,
started when leadership of the log is gained and stopped, at once, when it is lost."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from monitor.core.aio import cancel_and_wait
from monitor.core.metrics import DaemonMetrics
from monitor.core.status import LogStatus
from monitor.daemon.context import PassResult
from monitor.daemon.runners import Runner
from monitor.daemon.tailer import Backoff, Tailer
from monitor.storage.leases import Lease

__all__ = ["Tailers"]


class Tailers:
    def __init__(
        self,
        runners: Mapping[str, Runner],
        run_pass: Callable[[Runner], Awaitable[PassResult]],
        *,
        metrics: DaemonMetrics | None = None,
        retry_base: float = 1.0,
        on_gain: Callable[[], None] = lambda: None,
    ) -> None:
        self.runners = runners
        self.run_pass = run_pass
        self.metrics = metrics
        self.retry_base = retry_base  # seconds before the first retry of a failed pass
        self.on_gain = on_gain
        self._stop: asyncio.Event | None = None

    def start(self, stop: asyncio.Event) -> None:
        """Tail the logs gained from now on until ``stop`` is set."""
        self._stop = stop

    def wake(self, runner: Runner) -> None:
        """The poll: wake the runner's tailer, if this process tails it."""
        if runner.tailer is not None:
            runner.tailer.wake()

    def gained(self, name: str, lease: Lease | None) -> None:
        """This process leads ``name`` now: tail it, from what is stored (a former tailer's
        task, if still ending, is waited for first)."""
        runner = self.runners.get(name)
        if runner is None or self._stop is None or self._stop.is_set():
            return
        if lease is not None:  # led before, maybe, by another replica: a fresh view
            runner.status = LogStatus(name, frozen=runner.status.frozen)
        self.on_gain()
        runner.task = asyncio.create_task(self._tail(runner, runner.task), name=f"tail {name}")

    def lost(self, name: str, reason: str) -> None:
        """This process no longer leads ``name``: stop tailing it now. A batch being
        committed ends first (the writer shields it), and is refused if the lease is gone."""
        runner = self.runners.get(name)
        if runner is None:
            return
        runner.tailer = None
        if runner.task is not None:
            runner.task.cancel()

    async def stop_all(self) -> None:
        await cancel_and_wait([r.task for r in self.runners.values() if r.task is not None])

    async def _tail(self, runner: Runner, before: asyncio.Task[None] | None) -> None:
        assert self._stop is not None
        if before is not None:
            await cancel_and_wait([before])
        tailer = Tailer(
            runner.name,
            lambda: self.run_pass(runner),
            runner.status,
            metrics=self.metrics,
            backoff=Backoff(base=self.retry_base),
        )
        runner.tailer = tailer
        await tailer.run(self._stop)
