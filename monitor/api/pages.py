"""JSON documents the handlers answer with: pages and single objects."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any

from aiohttp import web

JSON = dict[str, Any]


def page(items: Iterable[JSON], next_cursor: str | None) -> web.Response:
    return respond({"items": list(items), "next_cursor": next_cursor})


def respond(doc: JSON, status: int = 200) -> web.Response:
    return web.json_response(doc, status=status, dumps=_dumps)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _dumps(doc: Any) -> str:
    # ASCII escapes: a hostile certificate's text can never break the encoding
    return json.dumps(doc, separators=(",", ":"))
