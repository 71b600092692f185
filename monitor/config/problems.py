"""Configuration problems: where (a field path), what is wrong, and how they are reported.

Inside validation every problem travels as a pydantic error with its location, so that one
``ValidationError`` carries every problem of a file at once; outside, ``ConfigFileError``
prints them as ``<file>:<line>: <field.path>: <what is wrong>``, one a line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from monitor.core.errors import ConfigError

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong, at ``loc`` relative to whatever is being validated."""

    loc: Loc
    message: str


def format_loc(loc: Loc) -> str:
    """``("watch", 1, "match", "san", 1)`` -> ``watch[1].match.san[1]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def error(message: str) -> PydanticCustomError:
    """A pydantic error whose message is exactly ``message`` (braces included)."""
    return PydanticCustomError("config", "{msg}", {"msg": message})


def validation_error(title: str, problems: Iterable[Problem]) -> ValidationError:
    """One ``ValidationError`` carrying every problem at its own location."""
    details: list[InitErrorDetails] = [
        {"type": error(p.message), "loc": p.loc, "input": None} for p in problems
    ]
    return ValidationError.from_exception_data(title, details, hide_input=True)


def problems_of(e: ValidationError) -> list[Problem]:
    """The problems in a ``ValidationError``, messages as pydantic wrote them."""
    return [Problem(tuple(err["loc"]), err["msg"]) for err in e.errors(include_url=False)]


@dataclass(frozen=True)
class Located:
    """A problem placed in a file: ``line`` is 1-based, None when unknown."""

    line: int | None
    loc: Loc
    message: str

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line is not None else source
        path = format_loc(self.loc)
        return f"{where}: {path}: {self.message}" if path else f"{where}: {self.message}"


class ConfigFileError(ConfigError):
    """Everything wrong with one configuration file, each problem on a line of its own."""

    def __init__(self, source: str, problems: Sequence[Located]) -> None:
        ordered = sorted(problems, key=lambda p: p.line if p.line is not None else 1 << 62)
        self.source = source
        self.problems: tuple[Located, ...] = tuple(ordered)
        self.lines: tuple[str, ...] = tuple(p.render(source) for p in ordered)
        if len(self.lines) == 1:
            text = self.lines[0]
        else:
            text = f"{source}: {len(self.lines)} errors\n" + "\n".join(self.lines)
        super().__init__(text)
