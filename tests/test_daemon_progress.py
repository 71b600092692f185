"""monitor.daemon.progress, on a fake clock: the rate over a sliding window (not since the
start), the ETA, the throttled terminal line, the no-total mode, and the log records that stand
in for the line when nobody watches a terminal."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from monitor.daemon.logsetup import setup_logging
from monitor.daemon.progress import (
    Progress,
    Sample,
    estimate,
    format_duration,
    format_line,
)


class TtyIO(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class Clock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def fields(self) -> list[dict[str, Any]]:
        return [dict(r.__dict__["fields"]) for r in self.records]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def collect() -> Iterator[Collect]:
    """Records logged to the default progress logger."""
    logger = logging.getLogger("monitor.progress")
    handler, level = Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def frames(out: io.StringIO) -> list[str]:
    """Each redraw of the terminal line, as written (padding included)."""
    return out.getvalue().split("\r")[1:]


def run_at(p: Progress, clock: Clock, rate: int, seconds: int, step: float = 0.25) -> None:
    """Advance ``p`` at ``rate`` entries a second for ``seconds``, in ``step``-second ticks."""
    per_step = int(rate * step)
    for _ in range(int(seconds / step)):
        clock.now += step
        p.advance(per_step)


# --- the maths --------------------------------------------------------------------------------


def steady(rate: int, seconds: int, start: float = 0.0, done: int = 0) -> list[Sample]:
    return [Sample(start + t, done + rate * t) for t in range(1, seconds + 1)]


def test_rate_is_over_the_last_window_not_since_the_start() -> None:
    samples = [Sample(0.0, 0), *steady(100, 20), *steady(10, 20, start=20.0, done=2000)]
    est = estimate(samples, 40.0, 2200, 10_000)
    assert est.rate == pytest.approx(10.0)  # since the start it would be 55/s
    assert est.eta_seconds == pytest.approx(780.0)


def test_rate_spans_the_whole_window_once_there_is_that_much_history() -> None:
    # 100/s for 10 s then 0/s for 5 s: over the last 10 s that is 50/s
    samples = [Sample(0.0, 0), *steady(100, 10), *steady(0, 5, start=10.0, done=1000)]
    assert estimate(samples, 15.0, 1000, None).rate == pytest.approx(500 / 10)


def test_rate_falls_when_work_stalls() -> None:
    samples = [Sample(0.0, 0), *steady(100, 20)]
    assert estimate(samples, 20.0, 2000, None).rate == pytest.approx(100.0)
    assert estimate(samples, 25.0, 2000, None).rate == pytest.approx(500 / 10)
    assert estimate(samples, 31.0, 2000, 3000).rate == pytest.approx(0.0)
    assert estimate(samples, 31.0, 2000, 3000).eta_seconds is None


def test_rate_uses_all_history_before_a_full_window() -> None:
    est = estimate([Sample(0.0, 0), Sample(2.0, 100)], 4.0, 400, 1000)
    assert est.rate == pytest.approx(100.0)
    assert est.eta_seconds == pytest.approx(6.0)


def test_no_rate_from_too_little_history() -> None:
    est = estimate([Sample(0.0, 0)], 0.2, 50, 100)
    assert est.rate is None
    assert est.eta_seconds is None
    assert estimate([], 5.0, 50, None).rate is None


def test_eta_needs_a_total_and_is_zero_when_done() -> None:
    samples = [Sample(0.0, 0)]
    assert estimate(samples, 10.0, 500, None).eta_seconds is None
    assert estimate(samples, 10.0, 500, 500).eta_seconds == 0.0
    assert estimate(samples, 10.0, 600, 500).eta_seconds == 0.0
    assert estimate([], 10.0, 500, 500).eta_seconds == 0.0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0:00:00"),
        (0.2, "0:00:01"),
        (59.5, "0:01:00"),
        (3725, "1:02:05"),
        (360_000, "100:00:00"),
    ],
)
def test_duration_is_h_mm_ss_rounded_up(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_line_with_a_total() -> None:
    line = format_line("backfill", 31_000, 100_000, 2450.4, 28.2)
    assert line == (
        "backfill [#########---------------------] 31,000/100,000 entries 31% 2,450/s eta 0:00:29"
    )


def test_line_without_a_total_has_no_bar_percent_or_eta() -> None:
    assert format_line("catch-up", 1234, None, 12.34, None) == "catch-up 1,234 entries 12.3/s"


def test_line_before_a_rate_is_known() -> None:
    line = format_line("x", 0, 10, None, None)
    assert line == f"x [{'-' * 30}] 0/10 entries 0% -/s eta -:--:--"


def test_line_of_an_empty_total_is_full() -> None:
    assert format_line("x", 0, 0, None, 0.0).startswith(f"x [{'#' * 30}] 0/0 entries 100%")


def test_final_line_shows_the_time_taken() -> None:
    line = format_line("x", 10, 10, 1.0, None, elapsed=10.0)
    assert line == f"x [{'#' * 30}] 10/10 entries 100% 1.0/s in 0:00:10"


# --- on a terminal ----------------------------------------------------------------------------


def test_redraws_at_most_ten_times_a_second(clock: Clock) -> None:
    out = TtyIO()
    p = Progress("x", 100_000, stream=out, clock=clock)
    assert len(frames(out)) == 1  # shown from the start
    for _ in range(1000):  # no time passes: no redraw
        p.advance(1)
    assert len(frames(out)) == 1
    for _ in range(200):  # 2 seconds of 100 advances a second
        clock.now += 0.01
        p.advance(1)
    assert 18 <= len(frames(out)) - 1 <= 21
    assert frames(out)[-1].startswith("x [")
    assert "/100,000 entries" in frames(out)[-1]
    assert "\n" not in out.getvalue()


def test_terminal_line_shows_the_windowed_rate_and_eta(clock: Clock) -> None:
    out = TtyIO()
    p = Progress("backfill", 10_000, stream=out, clock=clock)
    run_at(p, clock, 100, 20)
    assert frames(out)[-1].rstrip() == (
        f"backfill [{'#' * 6}{'-' * 24}] 2,000/10,000 entries 20% 100/s eta 0:01:20"
    )
    run_at(p, clock, 10, 20, step=1.0)  # slower now: the rate and ETA follow within the window
    assert frames(out)[-1].rstrip().endswith("2,200/10,000 entries 22% 10.0/s eta 0:13:00")


def test_a_shorter_line_covers_the_longer_one_before(clock: Clock) -> None:
    out = TtyIO()
    p = Progress("x", 100_000, stream=out, clock=clock)
    run_at(p, clock, 1000, 10)
    long = frames(out)[-1]
    assert "1,000/s" in long
    clock.now += 20  # stalled: the rate drops to 0.0/s, a shorter text
    p.advance(0)
    short = frames(out)[-1]
    assert "0.0/s" in short
    assert len(short.rstrip()) < len(long)
    assert len(short) == len(long)
    assert short[len(short.rstrip()) :] == " " * (len(long) - len(short.rstrip()))


def test_no_total_then_a_total(clock: Clock) -> None:
    out = TtyIO()
    p = Progress("catch-up", None, stream=out, clock=clock)
    run_at(p, clock, 40, 2)
    line = frames(out)[-1]
    assert line.rstrip() == "catch-up 80 entries 40.0/s"
    clock.now += 0.25
    p.set_total(200)
    assert frames(out)[-1].startswith("catch-up [")
    assert "80/200 entries 40%" in frames(out)[-1]


def test_close_prints_a_final_line_and_a_newline_once(clock: Clock) -> None:
    out = TtyIO()
    with Progress("x", 400, stream=out, clock=clock) as p:
        run_at(p, clock, 20, 20)
    final = frames(out)[-1]
    assert final.endswith("\n")
    assert out.getvalue().count("\n") == 1
    assert final.rstrip() == f"x [{'#' * 30}] 400/400 entries 100% 20.0/s in 0:00:20"
    written = out.getvalue()
    p.close()
    p.advance(5)
    assert out.getvalue() == written


def test_context_manager_closes_on_error(clock: Clock) -> None:
    out = TtyIO()

    def work() -> None:
        with Progress("x", 10, stream=out, clock=clock) as p:
            p.advance(3)
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        work()
    assert out.getvalue().endswith("\n")
    assert "3/10 entries 30%" in frames(out)[-1]


def test_a_terminal_logs_nothing(clock: Clock, collect: Collect) -> None:
    with Progress("x", 100, stream=TtyIO(), clock=clock, log_every=1.0) as p:
        run_at(p, clock, 10, 5)
    assert collect.records == []


def test_tty_flag_overrides_the_stream(clock: Clock, collect: Collect) -> None:
    out = io.StringIO()
    with Progress("x", 10, stream=out, tty=True, clock=clock) as p:
        p.advance(10)
    assert out.getvalue().endswith("\n")
    assert collect.records == []


# --- elsewhere: log records -------------------------------------------------------------------


def test_not_a_tty_writes_nothing_and_logs_at_the_interval(clock: Clock, collect: Collect) -> None:
    out = io.StringIO()
    p = Progress("backfill", 10_000, stream=out, clock=clock, log_every=30.0)
    run_at(p, clock, 100, 29, step=1.0)
    assert collect.records == []
    run_at(p, clock, 100, 1, step=1.0)
    assert len(collect.records) == 1
    run_at(p, clock, 100, 29, step=1.0)
    assert len(collect.records) == 1
    run_at(p, clock, 100, 1, step=1.0)
    assert len(collect.records) == 2
    run_at(p, clock, 100, 29, step=1.0)
    assert len(collect.records) == 2
    p.close()
    p.close()
    assert out.getvalue() == ""
    first, second, last = collect.fields()
    assert [r.getMessage() for r in collect.records] == ["progress", "progress", "progress done"]
    assert all(r.levelno == logging.INFO for r in collect.records)
    assert first == {
        "label": "backfill",
        "done": 3000,
        "total": 10_000,
        "rate": 100.0,
        "eta_seconds": 70.0,
        "elapsed_seconds": 30.0,
    }
    assert (second["done"], second["elapsed_seconds"]) == (6000, 60.0)
    assert (last["done"], last["elapsed_seconds"]) == (8900, 89.0)
    assert last["rate"] == pytest.approx(100.0)
    assert last["eta_seconds"] is None  # stopped short of the total


def test_final_record_when_finished(clock: Clock, collect: Collect) -> None:
    with Progress("x", 50, stream=io.StringIO(), clock=clock) as p:
        run_at(p, clock, 10, 5, step=1.0)
    [last] = collect.fields()
    assert last == {
        "label": "x",
        "done": 50,
        "total": 50,
        "rate": 10.0,
        "eta_seconds": 0.0,
        "elapsed_seconds": 5.0,
    }


def test_no_total_logs_without_eta(clock: Clock, collect: Collect) -> None:
    with Progress("catch-up", None, stream=io.StringIO(), clock=clock, log_every=5.0) as p:
        run_at(p, clock, 10, 5, step=1.0)
    first, _last = collect.fields()
    assert (first["done"], first["total"], first["rate"], first["eta_seconds"]) == (
        50,
        None,
        10.0,
        None,
    )


def test_a_given_logger_is_used(clock: Clock, collect: Collect) -> None:
    logger = logging.getLogger("tests.progress")
    mine = Collect()
    logger.addHandler(mine)
    logger.setLevel(logging.INFO)
    try:
        with Progress("x", 1, stream=io.StringIO(), clock=clock, logger=logger) as p:
            p.advance(1)
    finally:
        logger.removeHandler(mine)
        logger.setLevel(logging.NOTSET)
    assert len(mine.records) == 1
    assert collect.records == []


def test_progress_in_json_logs(clock: Clock) -> None:
    monitor = logging.getLogger("monitor")
    saved = monitor.level, list(monitor.handlers), monitor.propagate
    out = io.StringIO()
    try:
        setup_logging("info", json_format=True, stream=out)
        with Progress("backfill", 100, stream=io.StringIO(), clock=clock, log_every=2.0) as p:
            run_at(p, clock, 25, 2, step=1.0)
    finally:
        monitor.setLevel(saved[0])
        monitor.handlers[:] = saved[1]
        monitor.propagate = saved[2]
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [d["message"] for d in docs] == ["progress", "progress done"]
    assert docs[0]["logger"] == "monitor.progress"
    assert {k: docs[0][k] for k in ("label", "done", "total", "rate", "eta_seconds")} == {
        "label": "backfill",
        "done": 50,
        "total": 100,
        "rate": 25.0,
        "eta_seconds": 2.0,
    }


def test_backwards_and_negative_are_refused(clock: Clock) -> None:
    p = Progress("x", 10, stream=io.StringIO(), clock=clock)
    with pytest.raises(ValueError, match="back"):
        p.advance(-1)
    with pytest.raises(ValueError, match="negative"):
        p.set_total(-1)
    with pytest.raises(ValueError, match="negative"):
        Progress("x", -1, stream=io.StringIO(), clock=clock)
    assert p.done == 0
