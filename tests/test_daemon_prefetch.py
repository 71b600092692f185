"""The memory budget of a log (``ByteBudget``) and the window that fetches ahead within it
(``Window``): takes wait in order and never beyond the limit but for the one piece a pass
waits for, results come out in order, and everything taken is given back, whatever happens."""

from __future__ import annotations

import asyncio

import pytest

from monitor.daemon.prefetch import Window, chunks
from monitor.logclient.budget import ByteBudget
from tests.simlog import run


def test_takes_wait_in_order_within_the_limit() -> None:
    async def body() -> None:
        budget = ByteBudget(10)
        await budget.take(6)
        order: list[str] = []

        async def take(name: str, size: int) -> None:
            await budget.take(size)
            order.append(name)

        big = asyncio.create_task(take("big", 8))
        await asyncio.sleep(0)
        small = asyncio.create_task(take("small", 2))  # fits now, but waits behind "big"
        await asyncio.sleep(0)
        assert order == []
        budget.give(6)
        await asyncio.gather(big, small)
        assert order == ["big", "small"]
        assert (budget.used, budget.peak) == (10, 10)
        with pytest.raises(ValueError, match="cannot give back 11"):
            budget.give(11)

    run(body)


def test_an_exempt_take_never_waits_and_a_cancelled_one_leaves_nothing() -> None:
    async def body() -> None:
        budget = ByteBudget(10)
        await budget.take(10)
        await budget.take(50, exempt=lambda: True)  # the piece a pass waits for
        assert budget.used == 60
        waiting = asyncio.create_task(budget.take(5))
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        budget.give(60)
        assert budget.used == 0
        await asyncio.wait_for(budget.take(10), 1)  # no one left waiting in front

    run(body)


def test_a_take_that_becomes_exempt_goes_at_once() -> None:
    async def body() -> None:
        budget = ByteBudget(10)
        await budget.take(10)
        exempt = False
        waiting = asyncio.create_task(budget.take(5, exempt=lambda: exempt))
        await asyncio.sleep(0)
        assert not waiting.done()
        exempt = True
        budget.wake()
        await asyncio.wait_for(waiting, 1)
        assert budget.used == 15

    run(body)


def test_the_window_fetches_ahead_in_order_within_the_budget() -> None:
    async def body() -> None:
        budget = ByteBudget(30)
        in_flight = 0
        most = 0

        async def fetch(n: int) -> list[int]:
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.001 * (n % 3))  # out of order completions
            in_flight -= 1
            return [n] * 2

        got = []
        window = Window(fetch, range(40), budget=budget, worst=lambda n: 10, held=len, depth=8)
        async with window:
            async for taken in window:
                got.append(taken.result[0])
                assert taken.held == 2
                window.release(taken.held)
                assert budget.used <= 30 + 10  # the limit, and the one piece waited for
        assert got == list(range(40))
        assert 2 <= most <= 4  # three takes of 10 fit, and the head may go beyond
        assert budget.used == 0

    run(body)


def test_a_consumer_that_holds_its_pieces_still_moves_one_at_a_time() -> None:
    """The pass keeps what it took until it stores a chunk: when that fills the budget, only
    the piece it waits for is fetched, and the window never waits on itself."""

    async def body() -> None:
        budget = ByteBudget(25)

        async def fetch(n: int) -> int:
            await asyncio.sleep(0)
            return n

        window = Window(
            fetch, range(10), budget=budget, worst=lambda n: 10, held=lambda n: 10, depth=4
        )
        got = []
        async with window:
            async for taken in window:
                got.append(taken.result)  # never released: all held until the end
                assert budget.used <= 25 + 10 * len(got)
        assert got == list(range(10))
        assert budget.used == 0  # given back when the window closed

    run(body)


def test_an_error_or_a_stop_gives_everything_back() -> None:
    async def body() -> None:
        budget = ByteBudget(100)
        started = asyncio.Event()

        async def fetch(n: int) -> int:
            if n == 3:
                raise RuntimeError("the log failed")
            if n > 3:
                started.set()
                await asyncio.sleep(3600)  # still in flight when the window closes
            return n

        async def consume(pieces: range) -> None:
            window = Window(
                fetch, pieces, budget=budget, worst=lambda n: 10, held=lambda n: 1, depth=6
            )
            async with window:
                async for _ in window:
                    pass

        with pytest.raises(RuntimeError, match="the log failed"):
            await consume(range(8))
        assert budget.used == 0

        started.clear()
        task = asyncio.create_task(consume(range(4, 8)))
        await started.wait()
        await asyncio.sleep(0)
        assert budget.used == 40  # four in flight
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert budget.used == 0

    run(body)


def test_chunks_cover_the_range() -> None:
    assert list(chunks(5, 23, 8)) == [(5, 13), (13, 21), (21, 23)]
    assert list(chunks(5, 23, 8, aligned=True)) == [(5, 8), (8, 16), (16, 23)]
