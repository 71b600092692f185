"""Pages of query results and the opaque cursors that continue them."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from monitor.errors import MalformedInputError

T = TypeVar("T")

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
        raise MalformedInputError(f"bad page cursor {text!r}") from None
    if not (
        isinstance(parts, list)
        and len(parts) == len(shape)
        and all(type(p) is t for p, t in zip(parts, shape, strict=True))
    ):
        raise MalformedInputError(f"bad page cursor {text!r}")
    return parts


def page_limit(n: int) -> int:
    if n < 1:
        raise MalformedInputError(f"page size must be at least 1, not {n}")
    return min(n, MAX_PAGE)
