"""Query parameters, read strictly: an unknown, repeated, empty or ill-formed parameter is a
400 that names it (a typo must not silently widen a search)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import TypeVar

from multidict import MultiMapping

from monitor.api.errors import bad_param
from monitor.core.errors import MalformedInputError
from monitor.core.timetext import parse_time

E = TypeVar("E", bound=Enum)

MAX_VALUE_LENGTH = 4096
MAX_INDEX = 2**63 - 1  # both engines store indexes as 64-bit signed integers


class Params:
    """The query of one request. ``allowed`` names the parameters; ``prefixes`` families of
    them such as ``ext.``; ``repeatable`` those that may be given more than once."""

    def __init__(
        self,
        query: MultiMapping[str],
        allowed: Iterable[str],
        *,
        prefixes: Iterable[str] = (),
        repeatable: Iterable[str] = (),
    ) -> None:
        self._query = query
        allowed, prefixes, repeatable = set(allowed), tuple(prefixes), set(repeatable)
        for name in query:
            if name not in allowed and not any(
                name.startswith(p) and len(name) > len(p) for p in prefixes
            ):
                known = ", ".join(sorted(allowed) + [f"{p}<name>" for p in prefixes])
                raise bad_param(name, f"unknown parameter {name!r}; known: {known}")
            values = query.getall(name)
            if len(values) > 1 and name not in repeatable:
                raise bad_param(name, f"{name!r} given {len(values)} times; give it once")
            for v in values:
                if v == "":
                    raise bad_param(name, f"{name!r} is empty")
                if len(v) > MAX_VALUE_LENGTH:
                    raise bad_param(name, f"{name!r} is longer than {MAX_VALUE_LENGTH} characters")
                if "\x00" in v:
                    raise bad_param(name, f"{name!r} contains a NUL character")

    def names(self, prefix: str) -> list[str]:
        return sorted({n for n in self._query if n.startswith(prefix)})

    def text(self, name: str) -> str | None:
        return self._query.get(name)

    def texts(self, name: str) -> list[str]:
        return list(self._query.getall(name, []))

    def integer(self, name: str, *, low: int = 0, high: int = MAX_INDEX) -> int | None:
        raw = self._query.get(name)
        if raw is None:
            return None
        if not raw.isascii() or not raw.isdigit():
            raise bad_param(name, f"{name!r} must be a whole number, not {raw!r}")
        value = int(raw)
        if not low <= value <= high:
            raise bad_param(name, f"{name!r} must be between {low} and {high}, not {value}")
        return value

    def time(self, name: str) -> datetime | None:
        raw = self._query.get(name)
        if raw is None:
            return None
        try:
            return parse_time(raw)
        except MalformedInputError as e:
            raise bad_param(name, f"{name!r}: {e}") from None

    def boolean(self, name: str) -> bool:
        raw = self._query.get(name)
        if raw is None:
            return False
        if raw in ("true", "1"):
            return True
        if raw in ("false", "0"):
            return False
        raise bad_param(name, f"{name!r} must be true or false, not {raw!r}")

    def choices(self, name: str, kind: type[E]) -> list[E]:
        out = []
        for raw in self.texts(name):
            try:
                out.append(kind(raw))
            except ValueError:
                names = ", ".join(str(m.value) for m in kind)
                raise bad_param(name, f"{name!r}: unknown value {raw!r}; one of {names}") from None
        return out
