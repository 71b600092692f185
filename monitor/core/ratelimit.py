"""A per-log request budget: a token bucket that also obeys the server's ``Retry-After``
and slows down on its own after 429s, recovering gradually."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

MIN_RATE_FRACTION = 0.125
RECOVERY_PER_SUCCESS = 1.02


class TokenBucket:
    """``rate`` requests per second on average, ``burst`` at once at most."""

    def __init__(
        self, rate: float, burst: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._base_rate = rate
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._clock = clock
        self._last = clock()
        self._blocked_until = 0.0
        self._lock = asyncio.Lock()

    @property
    def rate(self) -> float:
        return self._rate

    async def acquire(self) -> float:
        """Wait for one token; return how long we waited (seconds)."""
        waited = 0.0
        async with self._lock:  # FIFO: one waiter at a time refills and takes
            while True:
                now = self._clock()
                if now < self._blocked_until:
                    delay = self._blocked_until - now
                else:
                    self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
                    self._last = now
                    if self._tokens >= 1:
                        self._tokens -= 1
                        return waited
                    delay = (1 - self._tokens) / self._rate
                waited += delay
                await asyncio.sleep(delay)

    def back_off(self, retry_after: float | None) -> None:
        """A 429: stop until ``Retry-After`` (if given) and halve the rate (to a floor)."""
        now = self._clock()
        if retry_after is not None and retry_after > 0:
            self._blocked_until = max(self._blocked_until, now + retry_after)
        self._rate = max(self._base_rate * MIN_RATE_FRACTION, self._rate / 2)
        self._tokens = 0.0
        self._last = now

    def succeeded(self) -> None:
        """A success nudges the rate back towards the configured one."""
        if self._rate < self._base_rate:
            self._rate = min(self._base_rate, self._rate * RECOVERY_PER_SUCCESS)
