"""Request bodies, read with a deadline and parsed as JSON: whatever a client sends (too
slowly, cut off, badly framed, nested too deeply) is its mistake, answered with a 4xx, never a
500."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from monitor.api.errors import ApiError, ClientGone


async def json_body(request: web.Request, timeout: float) -> Any | None:
    """The JSON document of the body, or None when there is none (no body, or blanks)."""
    if not request.can_read_body:
        return None
    raw = await _read(request, timeout)
    if not raw.strip():
        return None
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    try:
        return json.loads(raw)
    except RecursionError:
        raise ApiError(400, "bad_body", "the body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_body", "the body is not valid JSON") from None


async def _read(request: web.Request, timeout: float) -> bytes:
    try:
        async with asyncio.timeout(timeout):
            return await request.read()
    except TimeoutError:
        raise ApiError(
            408,
            "request_timeout",
            f"the body did not arrive within {timeout:g} seconds",
            close=True,  # the rest of it, if it ever comes, is not a request
        ) from None
    except ConnectionError:  # the client closed the connection before the end of the body
        raise ClientGone() from None
    except HttpProcessingError as e:  # a chunked body badly framed, say
        raise ApiError(400, "bad_request", f"the body cannot be read: {e.message}") from None
