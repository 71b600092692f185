"""The scheduler's jobs of a running monitor."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.core.errors import MonitorError
from monitor.daemon.runners import Runner
from monitor.storage.ports import RetentionStore

__all__ = ["Jobs", "apply_retention"]

log = logging.getLogger("monitor.daemon")


class Jobs:
    """The scheduler's jobs, run on the event loop (APScheduler runs plain functions in a
    thread, and waking a tailer is not thread-safe). A stop lets the jobs under way finish:
    APScheduler's own shutdown would cancel them, and log each as failed."""

    def __init__(self) -> None:
        self.running: set[asyncio.Task[object]] = set()

    def wrap(self, fn: Callable[[], Awaitable[object] | None]) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            task = asyncio.current_task()
            if task is not None:
                self.running.add(task)
            try:
                result = fn()
                if inspect.isawaitable(result):
                    await result
            finally:
                self.running.discard(task)

        return job

    async def stop(self, scheduler: AsyncIOScheduler, timeout: float = 5.0) -> None:
        scheduler.pause()
        await asyncio.sleep(0)  # jobs already handed out start, and register
        if self.running:
            await asyncio.wait(set(self.running), timeout=timeout)
        scheduler.shutdown(wait=False)


async def apply_retention(store: RetentionStore, runners: Iterable[Runner]) -> None:
    """Purge the ``index_all`` rows older than each log's ``retention`` (of the logs this
    process leads: each log's leader purges it)."""
    now = datetime.now(UTC)
    for runner in runners:
        keep = runner.config.retention
        if keep is None:
            continue
        try:
            gone = await store.purge_index_all(now - keep, runner.name)
        except MonitorError as e:
            log.warning("retention failed: %s", e, extra={"fields": {"log": runner.name}})
            continue
        if gone:
            log.info("retention", extra={"fields": {"log": runner.name, "purged": gone}})
