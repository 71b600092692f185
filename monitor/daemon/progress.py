"""Progress of long work: a catch-up or a backfill of many entries.

At a terminal, one line redrawn in place (``\\r``) at most ten times a second::

    backfill [#########---------------------] 31,000/100,000 entries 31% 2,450/s eta 0:00:29

Elsewhere (a service, a container, a pipe) nothing is written to the stream: a progress
record is logged instead, at most every ``log_every`` seconds and once at the end, with the
numbers as structured fields (``label``, ``done``, ``total``, ``rate``, ``eta_seconds``), so that
JSON logs carry progress a machine can read.

The rate is measured over the last ``WINDOW`` seconds, not since the start: a log that slows
down (rate limiting, a slow database) shows it within seconds, and the ETA follows. The maths is
the pure function ``estimate``; ``Progress`` only keeps the samples and decides when to show.
Output happens when ``advance`` or ``set_total`` is called: there is no timer thread.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TextIO

from monitor.daemon.logsetup import is_terminal

__all__ = [
    "Estimate",
    "Progress",
    "Sample",
    "estimate",
    "format_duration",
    "format_line",
]

WINDOW = 10.0  # seconds of history the rate is measured over
MIN_SPAN = 1.0  # below this much history a rate is mostly noise: none is shown
REDRAW = 0.1  # seconds between two redraws of the terminal line
RESOLUTION = 0.25  # seconds between two kept samples: memory stays bounded at any speed
BAR_WIDTH = 30


@dataclass(frozen=True, slots=True)
class Sample:
    """How many entries were done at a point in time (``clock()`` seconds)."""

    time: float
    done: int


@dataclass(frozen=True)
class Estimate:
    """Current speed in entries per second, and seconds left; ``None`` when not known."""

    rate: float | None
    eta_seconds: float | None


def estimate(
    samples: Sequence[Sample], now: float, done: int, total: int | None, *, window: float = WINDOW
) -> Estimate:
    """The rate over the last ``window`` seconds, and the time left at that rate.

    ``samples`` are in time order. The baseline is the newest sample at least ``window``
    seconds old (or the oldest there is), so the rate spans the whole window once there is that
    much history. Work done after the baseline is ``done - baseline.done``, over ``now -
    baseline.time``: when work stalls, the rate falls as time passes.
    """
    eta: float | None = None
    if total is not None and done >= total:
        eta = 0.0
    if not samples:
        return Estimate(None, eta)
    base = samples[0]
    for sample in samples:
        if sample.time > now - window:
            break
        base = sample
    span = now - base.time
    if span < MIN_SPAN:
        return Estimate(None, eta)
    rate = max(done - base.done, 0) / span
    if eta is None and total is not None and rate > 0:
        eta = (total - done) / rate
    return Estimate(rate, eta)


def format_duration(seconds: float) -> str:
    """``h:mm:ss``, rounded up: the ETA reads 0:00:00 only when there is nothing left."""
    whole = max(math.ceil(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def format_rate(rate: float | None) -> str:
    """Entries per second, with a decimal only where it matters."""
    if rate is None:
        return "-/s"
    return f"{rate:,.0f}/s" if rate >= 100 else f"{rate:.1f}/s"


def format_line(
    label: str,
    done: int,
    total: int | None,
    rate: float | None,
    eta_seconds: float | None,
    *,
    elapsed: float | None = None,
) -> str:
    """The terminal line. Without a total there is no bar, percent or ETA; with ``elapsed``
    (the final line) the time taken replaces the ETA."""
    if total is None:
        line = f"{label} {done:,} entries {format_rate(rate)}"
    else:
        shown = min(max(done, 0), total)
        filled = BAR_WIDTH * shown // total if total else BAR_WIDTH
        percent = 100 * shown // total if total else 100
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        line = f"{label} [{bar}] {done:,}/{total:,} entries {percent}% {format_rate(rate)}"
        if elapsed is None:
            line += f" eta {format_duration(eta_seconds) if eta_seconds is not None else '-:--:--'}"
    if elapsed is not None:
        line += f" in {format_duration(elapsed)}"
    return line


class Progress:
    """Counts entries done out of an optional total, and shows it (see the module docstring).

    ``tty=None`` asks the stream (default: stderr) whether it is a terminal. ``clock`` is
    injectable so tests can drive time. Use as a context manager, or call ``close`` at the end.
    """

    def __init__(
        self,
        label: str,
        total: int | None,
        *,
        stream: TextIO | None = None,
        tty: bool | None = None,
        log_every: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger | None = None,
    ) -> None:
        if total is not None and total < 0:
            raise ValueError(f"progress total must not be negative, got {total}")
        self.label = label
        self._total = total
        self._stream = stream if stream is not None else sys.stderr
        self._tty = is_terminal(self._stream) if tty is None else tty
        self._log_every = log_every
        self._clock = clock
        self._logger = logger if logger is not None else logging.getLogger("monitor.progress")
        self._done = 0
        self._start = clock()
        self._samples: deque[Sample] = deque([Sample(self._start, 0)])
        self._last_draw = -math.inf
        self._last_log = self._start
        self._width = 0
        self._closed = False
        if self._tty:
            self._draw(self._start)

    @property
    def done(self) -> int:
        return self._done

    @property
    def total(self) -> int | None:
        return self._total

    def advance(self, n: int) -> None:
        """Count ``n`` more entries done."""
        if n < 0:
            raise ValueError(f"progress cannot go back: advance({n})")
        self._done += n
        self._tick()

    def set_total(self, total: int) -> None:
        """Set or change the total, e.g. once the log's current size is known."""
        if total < 0:
            raise ValueError(f"progress total must not be negative, got {total}")
        self._total = total
        self._tick()

    def estimate(self) -> Estimate:
        """Rate and ETA now."""
        now = self._clock()
        self._record(now)
        return estimate(self._samples, now, self._done, self._total)

    def close(self) -> None:
        """Show the final line (terminal) or log the final record; later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        now = self._clock()
        elapsed = now - self._start
        rate = self._done / elapsed if elapsed > 0 else None  # the whole run's, not the window's
        finished = self._total is not None and self._done >= self._total
        if self._tty:
            line = format_line(self.label, self._done, self._total, rate, None, elapsed=elapsed)
            self._write(line, end="\n")
        else:
            self._log("progress done", rate, 0.0 if finished else None, elapsed=elapsed)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _tick(self) -> None:
        now = self._clock()
        self._record(now)
        if self._closed:
            return
        if self._tty:
            if now - self._last_draw >= REDRAW:
                self._draw(now)
        elif now - self._last_log >= self._log_every:
            self._last_log = now
            est = estimate(self._samples, now, self._done, self._total)
            self._log("progress", est.rate, est.eta_seconds, elapsed=now - self._start)

    def _record(self, now: float) -> None:
        if now - self._samples[-1].time >= RESOLUTION:
            self._samples.append(Sample(now, self._done))
        # keep one sample at least WINDOW old: it is the rate's baseline
        while len(self._samples) > 1 and self._samples[1].time <= now - WINDOW:
            self._samples.popleft()

    def _draw(self, now: float) -> None:
        self._last_draw = now
        est = estimate(self._samples, now, self._done, self._total)
        self._write(format_line(self.label, self._done, self._total, est.rate, est.eta_seconds))

    def _write(self, line: str, end: str = "") -> None:
        # pad with spaces over what is left of a longer previous line
        pad = " " * max(self._width - len(line), 0)
        self._width = len(line)
        self._stream.write("\r" + line + pad + end)
        self._stream.flush()

    def _log(
        self, message: str, rate: float | None, eta_seconds: float | None, *, elapsed: float
    ) -> None:
        fields = {
            "label": self.label,
            "done": self._done,
            "total": self._total,
            "rate": round(rate, 2) if rate is not None else None,
            "eta_seconds": round(eta_seconds, 1) if eta_seconds is not None else None,
            "elapsed_seconds": round(elapsed, 1),
        }
        self._logger.info(message, extra={"fields": fields})
