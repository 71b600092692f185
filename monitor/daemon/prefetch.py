"""Fetch ahead, process in order, within the log's memory budget.

A pass reads a log as a sequence of pieces (Rekor v1: batches of up to 10 entries; Rekor v2:
entry bundles, and the proof of each chunk's end) and proves and stores them in order, in
chunks. ``Window`` keeps up to ``depth`` pieces in flight or waiting to be taken, so that one
slow or retried request does not stall the pipeline, and charges each to the log's
``ByteBudget``: before its request, the most its answer may take; once decoded, what it holds;
given back when the pass ``release``\\ s it, after storing it. A hostile log can therefore make a
pass slow, never make it hold more than the budget (and the one piece the pass waits for, which
never waits for the budget, so the window always moves). Pieces come out strictly in order;
leaving the ``async with`` (done, a lie, an error, a stop) cancels what is still in flight and
gives everything back.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, TypeVar

from monitor.core.aio import cancel_and_wait
from monitor.logclient.budget import ByteBudget

__all__ = ["Taken", "Window", "chunks"]

P = TypeVar("P")
T = TypeVar("T")


def chunks(first: int, end: int, size: int, *, aligned: bool = False) -> Iterator[tuple[int, int]]:
    """[first, end) in ranges of ``size``; ``aligned``: boundaries at multiples of ``size``
    (whole tiles), so only the first range may be shorter at its start."""
    at = first
    while at < end:
        stop = min(end, at - at % size + size if aligned else at + size)
        yield at, stop
        at = stop


@dataclass(frozen=True)
class Taken(Generic[P, T]):
    """A piece, its result, and the bytes of the budget it holds until released."""

    piece: P
    result: T
    held: int


@dataclass(eq=False)
class _Slot(Generic[P, T]):
    piece: P
    task: asyncio.Task[T] | None = None
    held: int = 0  # bytes of the budget this piece holds now


class Window(Generic[P, T]):
    """``fetch(piece)`` for each of ``pieces``, ahead and in order, within ``budget``.

    ``worst(piece)`` is the most the piece's answer may take (taken before it is fetched),
    ``held(result)`` what its result holds (kept until ``release``).
    """

    def __init__(
        self,
        fetch: Callable[[P], Awaitable[T]],
        pieces: Iterable[P],
        *,
        budget: ByteBudget,
        worst: Callable[[P], int],
        held: Callable[[T], int],
        depth: int,
    ) -> None:
        if depth < 1:
            raise ValueError(f"prefetch depth must be positive, not {depth}")
        self._fetch = fetch
        self._pieces = iter(pieces)
        self._budget = budget
        self._worst = worst
        self._held = held
        self._depth = depth
        self._slots: deque[_Slot[P, T]] = deque()
        self._lent = 0  # bytes of pieces taken and not yet released

    async def __aenter__(self) -> Window[P, T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def release(self, held: int) -> None:
        """Give back the bytes of pieces taken (their ``held``), once stored."""
        if not 0 <= held <= self._lent:
            raise ValueError(f"cannot release {held} bytes of the {self._lent} taken")
        self._lent -= held
        self._budget.give(held)

    def __aiter__(self) -> AsyncIterator[Taken[P, T]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Taken[P, T]]:
        self._fill()
        while self._slots:
            slot = self._slots[0]
            assert slot.task is not None
            result = await slot.task
            self._slots.popleft()
            self._lent += slot.held
            taken = Taken(slot.piece, result, slot.held)
            slot.held = 0
            self._budget.wake()  # the next piece is the one waited for now: it may go
            self._fill()
            yield taken

    def _fill(self) -> None:
        while len(self._slots) < self._depth:
            piece = next(self._pieces, None)
            if piece is None:
                return
            slot: _Slot[P, T] = _Slot(piece)
            self._slots.append(slot)
            slot.task = asyncio.ensure_future(self._run(slot))

    async def _run(self, slot: _Slot[P, T]) -> T:
        worst = self._worst(slot.piece)
        await self._budget.take(worst, lambda: bool(self._slots) and self._slots[0] is slot)
        slot.held = worst
        try:
            result = await self._fetch(slot.piece)
        except BaseException:
            self._give_back(slot)
            raise
        held = self._held(result)
        if held <= worst:
            self._budget.give(worst - held)
        else:  # an estimate above the cap: held all the same, never hidden
            self._budget.grow(held - worst)
        slot.held = held
        return result

    def _give_back(self, slot: _Slot[P, T]) -> None:
        held, slot.held = slot.held, 0
        if held:
            self._budget.give(held)

    async def close(self) -> None:
        slots = list(self._slots)
        self._slots.clear()
        await cancel_and_wait([s.task for s in slots if s.task is not None], quiet=True)
        for slot in slots:
            self._give_back(slot)  # results no one will take
        lent, self._lent = self._lent, 0
        if lent:
            self._budget.give(lent)
