"""The scheduler's jobs of a running monitor."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler

__all__ = ["Jobs"]


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
