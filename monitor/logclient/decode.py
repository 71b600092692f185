"""Decoding a log's JSON answers within a bound on what decoding may build.

``json.loads`` builds a Python object for every value, about 60 bytes each: 28 MiB of
``[[],[],...]`` becomes half a gigabyte before anything can be checked, and a deep ``[[[[``
recurses. The values of an answer are counted first, from the bytes: every value but the first
follows a ``,`` or opens with ``[`` or ``{``, so those three bytes bound them. Rekor's answers
hold those characters only as JSON syntax (their strings are base64, hex, decimals and
checkpoint notes), so the count is exact for an honest log, and an answer with more values than
what was asked can hold is refused unread. Counting runs in C at memory speed.

Decoding runs on the event loop: a large answer (13 MiB for ten entries of a megabyte: about
12 ms to count, 23 ms to decode) lets it run between the steps, so that the API still answers.
"""

from __future__ import annotations

import asyncio
import json

from monitor.core.errors import LogResponseError

LARGE = 1 << 20  # an answer this large lets the event loop run between its decoding steps


async def decode_json(body: bytes, max_values: int, what: str) -> object:
    """``body`` as JSON, or ``LogResponseError`` when it is not JSON or holds more than
    ``max_values`` values (checked before anything is built)."""
    large = len(body) > LARGE
    values = 1  # an upper bound, exact when no string holds one of ``,[{``
    for syntax in (b",", b"[", b"{"):
        values += body.count(syntax)
        if large:
            await asyncio.sleep(0)
    if values > max_values:
        raise LogResponseError(
            f"{what}: the answer holds up to {values} JSON values, more than the {max_values} "
            "that what was asked can hold"
        )
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise LogResponseError(f"{what}: the answer is not JSON") from None
