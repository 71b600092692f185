"""Fetch ahead, process in order: a pass keeps up to ``depth`` chunks in flight while it
proves and stores the oldest one, so that one slow or retried request does not stall the
whole pipeline. Chunks come out strictly in log order; memory is bounded by ``depth`` chunks.
Leaving the ``async with`` (done, a lie, an error, a stop) cancels what is still in flight.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

from monitor.aio import cancel_and_wait

__all__ = ["Prefetcher", "chunks"]

T = TypeVar("T")


def chunks(first: int, end: int, size: int, *, aligned: bool = False) -> Iterator[tuple[int, int]]:
    """[first, end) in ranges of ``size``; ``aligned``: boundaries at multiples of ``size``
    (whole tiles), so only the first range may be shorter at its start."""
    at = first
    while at < end:
        stop = min(end, at - at % size + size if aligned else at + size)
        yield at, stop
        at = stop


class Prefetcher(Generic[T]):
    def __init__(
        self,
        fetch: Callable[[int, int], Awaitable[T]],
        ranges: Iterable[tuple[int, int]],
        depth: int = 4,
    ) -> None:
        if depth < 1:
            raise ValueError(f"prefetch depth must be positive, not {depth}")
        self._fetch = fetch
        self._ranges = iter(ranges)
        self._depth = depth
        self._pending: deque[tuple[int, int, asyncio.Task[T]]] = deque()

    async def __aenter__(self) -> Prefetcher[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _fill(self) -> None:
        while len(self._pending) < self._depth:
            nxt = next(self._ranges, None)
            if nxt is None:
                return
            start, stop = nxt
            self._pending.append((start, stop, asyncio.ensure_future(self._fetch(start, stop))))

    def __aiter__(self) -> AsyncIterator[tuple[int, int, T]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[tuple[int, int, T]]:
        self._fill()
        while self._pending:
            start, stop, task = self._pending[0]
            result = await task
            self._pending.popleft()
            self._fill()
            yield start, stop, result

    async def close(self) -> None:
        tasks = [t for _, _, t in self._pending]
        self._pending.clear()
        await cancel_and_wait(tasks, quiet=True)  # fetches no one will read
