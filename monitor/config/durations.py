"""Durations as people write them: ``30s``, ``5m``, ``1h30m``, ``7d``, ``250ms``, or a plain
number of seconds."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import GetCoreSchemaHandler, PlainValidator
from pydantic_core import CoreSchema

from monitor.config.problems import error

_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w)")
_WHOLE = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d|w))+")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_HOW = "a duration is a number of seconds or a string such as 30s, 5m, 1h30m, 7d"
_LIMIT = timedelta(days=3650)


def parse_duration(value: Any) -> timedelta:
    """A ``timedelta`` from YAML; raises ``ValueError`` with the reason."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(_HOW)
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip().replace(" ", "")
        if _NUMBER.fullmatch(text):
            seconds = float(text)
        elif _WHOLE.fullmatch(text):
            total = sum((float(n) * _UNITS[u] for n, u in _PART.findall(text)), start=timedelta())
            seconds = total.total_seconds()
        else:
            raise ValueError(f"{value!r} is not a duration; {_HOW}")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > _LIMIT.total_seconds():
        raise ValueError("a duration must be under ten years")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """``timedelta(seconds=5400)`` -> ``1h30m``; the inverse of ``parse_duration``."""
    ms = round(value.total_seconds() * 1000)
    if ms == 0:
        return "0s"
    out = ""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        count, ms = divmod(ms, size)
        if count:
            out += f"{count}{unit}"
    if ms:
        out += f"{ms}ms"
    return out


def duration(
    minimum: timedelta = timedelta(), maximum: timedelta | None = None
) -> Callable[[Any], timedelta]:
    """A pydantic validator for a duration within ``[minimum, maximum]``."""

    def validate(value: Any) -> timedelta:
        try:
            parsed = parse_duration(value)
        except ValueError as e:
            raise error(str(e)) from None
        if parsed < minimum:
            raise error(f"must be at least {format_duration(minimum)}")
        if maximum is not None and parsed > maximum:
            raise error(f"must be at most {format_duration(maximum)}")
        return parsed

    return validate


@dataclass(frozen=True)
class Duration:
    """Field metadata: a duration within ``[minimum, maximum]``, for a ``timedelta`` field, or a
    ``float`` one that holds its seconds. The bounds are declared here, where the
    configuration reference reads them, and checked by ``duration``."""

    minimum: timedelta = timedelta()
    maximum: timedelta | None = None

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        parse = duration(self.minimum, self.maximum)

        def seconds(value: Any) -> float:
            return parse(value).total_seconds()

        check = seconds if source is float else parse
        return PlainValidator(check).__get_pydantic_core_schema__(source, handler)
