"""A memory budget for one log: the bytes its answers may hold at once.

Whoever fetches takes, before the request, the most the answer may take (the request's cap,
``monitor.logclient.limits``), trims the take to what the decoded answer holds once it is read,
and gives it back once the answer is stored. A take that does not fit waits, in order of
asking, so a hostile log can make the monitor slow but never make it hold more. One take may
be ``exempt`` (the oldest answer a pass is waiting for): it never waits, so that what is held
is always eventually stored and given back, and nothing waits on itself.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["ByteBudget"]


@dataclass(eq=False)
class _Waiter:
    size: int
    exempt: Callable[[], bool]
    granted: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class ByteBudget:
    """Up to ``limit`` bytes held at once, beyond it only by exempt takes."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a memory budget must be positive, not {limit}")
        self.limit = limit
        self.used = 0
        self.peak = 0  # the most held at once: what tests and metrics read
        self._waiting: deque[_Waiter] = deque()

    async def take(self, size: int, exempt: Callable[[], bool] = lambda: False) -> None:
        """Hold ``size`` more bytes: at once if they fit and no one waits before, else once
        they do, or at once whatever is held when ``exempt()`` is (or becomes) true."""
        if size < 0:
            raise ValueError(f"cannot take {size} bytes")
        if exempt() or (not self._waiting and self.used + size <= self.limit):
            self._hold(size)
            return
        waiter = _Waiter(size, exempt)
        self._waiting.append(waiter)
        try:
            await waiter.granted
        except asyncio.CancelledError:
            if waiter.granted.done() and not waiter.granted.cancelled():
                self.give(size)  # granted as the caller was cancelled: not used, give it back
            else:
                self._waiting.remove(waiter)
                self.wake()  # those behind it may fit now
            raise

    def grow(self, size: int) -> None:
        """Hold ``size`` more bytes without waiting: an answer found larger than its take
        (never more than its cap, which the take was)."""
        self._hold(size)

    def give(self, size: int) -> None:
        """Give back ``size`` bytes taken before."""
        if not 0 <= size <= self.used:
            raise ValueError(f"cannot give back {size} bytes of the {self.used} held")
        self.used -= size
        self.wake()

    def wake(self) -> None:
        """Grant the waiting takes that fit now, in order; an exempt one whatever is held
        (call when a take may have become exempt)."""
        blocked = False  # those behind one that does not fit wait behind it, unless exempt
        for waiter in list(self._waiting):
            if waiter.granted.done():
                continue
            fits = not blocked and self.used + waiter.size <= self.limit
            if fits or waiter.exempt():
                self._waiting.remove(waiter)
                self._hold(waiter.size)
                waiter.granted.set_result(None)
            else:
                blocked = True

    def _hold(self, size: int) -> None:
        self.used += size
        self.peak = max(self.peak, self.used)
