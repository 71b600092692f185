"""Pages of query results and the opaque cursors that continue them."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from monitor.core.errors import QueryError

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 100  # of the API and the command line alike
MAX_PAGE = 10_000  # the largest server.max_page_size allowed


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    next_cursor: str | None  # None: this was the last page


def encode_cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def decode_cursor(text: str, shape: tuple[type, ...]) -> list[Any]:
    try:
        parts = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:
        raise bad_cursor(text) from None
    if not (
        isinstance(parts, list)
        and len(parts) == len(shape)
        and all(type(p) is t for p, t in zip(parts, shape, strict=True))
    ):
        raise bad_cursor(text)
    return parts


def bad_cursor(text: str) -> QueryError:
    return QueryError(
        f"bad page cursor {text[:100]!r}: pass back the next_cursor of a page as it is",
        "cursor",
    )


def page_limit(n: int) -> int:
    if n < 1:
        raise QueryError(f"page size must be at least 1, not {n}", "limit")
    return min(n, MAX_PAGE)
