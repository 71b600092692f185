"""Small asyncio helpers that the log clients, the daemon and alert delivery share: retry
backoff, waiting for the first of several events, and cancelling tasks to the end."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterable
from typing import Any

__all__ = ["backoff_delay", "cancel_and_wait", "wait_any"]


def backoff_delay(failures: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff after ``failures`` failures in a row (1 or more), capped, with
    "equal jitter": never zero, and never in lockstep with other clients."""
    ceiling = min(cap, base * 2.0 ** min(failures - 1, 30))
    return rng.uniform(ceiling / 2, ceiling)


async def wait_any(events: Iterable[asyncio.Event], timeout: float | None) -> None:
    """Until one of ``events`` is set or ``timeout`` seconds pass (None: no timeout)."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await cancel_and_wait(waiters)


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any]], *, quiet: bool = False) -> None:
    """Cancel ``tasks`` and wait until each has ended; ``quiet``: also drop their errors (work
    being abandoned, whose outcome no longer matters)."""
    pending = list(tasks)
    for t in pending:
        t.cancel()
    ignored: tuple[type[BaseException], ...] = (asyncio.CancelledError,)
    if quiet:
        ignored += (Exception,)
    for t in pending:
        with contextlib.suppress(*ignored):
            await t
