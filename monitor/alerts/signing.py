"""Standard Webhooks signatures (https://www.standardwebhooks.com/, symmetric scheme ``v1``).

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}``; the signature is
HMAC-SHA256 under the secret, base64 encoded and prefixed ``v1,``. A secret is written
``whsec_`` + base64 of 24 to 64 random bytes (read by ``monitor.config.webhook_secrets``).
During a key rotation a sink holds several
secrets (space-separated) and every message carries one signature per secret, so that a
receiver holding either key accepts it.

Pure functions: no I/O, no clock (callers pass the time). No error message ever quotes a
secret, not even a part of it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping

SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE = 300  # seconds either side of now, as the reference libraries allow

HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"


def _check_id(msg_id: str) -> None:
    # the id is part of the signed content, delimited by '.': it must not contain one, nor
    # anything that cannot travel in an HTTP header
    if not msg_id or not all("!" <= c <= "~" and c != "." for c in msg_id):
        raise ValueError("a webhook id is printable ASCII without spaces or '.'")


def _content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode("ascii") + body


def _digest(key: bytes, content: bytes) -> bytes:
    return hmac.new(key, content, hashlib.sha256).digest()


def sign(msg_id: str, timestamp: int, body: bytes, secrets: Iterable[bytes]) -> str:
    """The ``webhook-signature`` header: ``v1,<base64 HMAC-SHA256>`` for each secret, in the
    order given, space-separated."""
    _check_id(msg_id)
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError("a webhook timestamp is a non-negative integer of Unix seconds")
    keys = tuple(secrets)
    if not keys:
        raise ValueError("signing needs at least one secret")
    content = _content(msg_id, timestamp, body)
    return " ".join(
        f"{SIGNATURE_VERSION},{base64.b64encode(_digest(k, content)).decode('ascii')}" for k in keys
    )


def webhook_headers(
    msg_id: str, timestamp: int, body: bytes, secrets: Iterable[bytes]
) -> dict[str, str]:
    """The headers of a signed delivery (lower-case names, as the specification writes
    them)."""
    return {
        HEADER_ID: msg_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: sign(msg_id, timestamp, body, secrets),
        "content-type": "application/json",
    }


def verify(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Iterable[bytes],
    *,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE,
) -> bool:
    """Whether a delivery is authentic and fresh: its timestamp within ``tolerance`` seconds
    of ``now``, and some ``v1`` signature in its header made by one of ``secrets``. Header
    names are matched case-insensitively; unknown signature versions are skipped; the
    comparison takes constant time."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get(HEADER_ID, "")
    stamp = lower.get(HEADER_TIMESTAMP, "")
    given = lower.get(HEADER_SIGNATURE, "")
    if not msg_id or not given or not stamp.isascii() or not stamp.isdigit():
        return False
    try:
        _check_id(msg_id)
    except ValueError:
        return False
    timestamp = int(stamp)
    if abs(now - timestamp) > tolerance:
        return False
    content = _content(msg_id, timestamp, body)
    expected = [_digest(k, content) for k in secrets]
    found = False
    for item in given.split():
        version, comma, encoded = item.partition(",")
        if version != SIGNATURE_VERSION or not comma:
            continue
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        for digest in expected:
            # no early exit: every candidate is compared against every key
            found |= hmac.compare_digest(digest, candidate)
    return found
