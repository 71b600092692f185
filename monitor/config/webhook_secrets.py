"""The form of a webhook sink's secret (Standard Webhooks: ``whsec_`` + base64 of 24 to 64
random bytes; several, space-separated, during a key rotation). Read where the configuration
is checked and where alert messages are signed (``monitor.alerts.signing``).

No error message ever quotes a secret, not even a part of it.
"""

from __future__ import annotations

import base64
import binascii

from monitor.core.errors import ConfigError

SECRET_PREFIX = "whsec_"  # noqa: S105  # the marker of a secret, not one
MIN_SECRET_BYTES = 24  # the specification: at least 192 bits
MAX_SECRET_BYTES = 64  # ... and at most 512
_B64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def parse_secrets(text: str) -> tuple[bytes, ...]:
    """The keys of a sink's ``secret`` setting: one or more space-separated ``whsec_<base64>``
    (standard alphabet; padding optional). Raises ``ConfigError`` naming which secret is
    wrong and why, never quoting it."""
    words = text.split()
    if not words:
        raise ConfigError("webhook secret is empty: give whsec_ followed by base64")
    keys: list[bytes] = []
    for position, word in enumerate(words, start=1):
        which = (
            "webhook secret" if len(words) == 1 else f"webhook secret {position} of {len(words)}"
        )
        keys.append(_parse_secret(word, which))
    if len(set(keys)) != len(keys):
        raise ConfigError("webhook secrets: the same secret is given twice")
    return tuple(keys)


def _parse_secret(word: str, which: str) -> bytes:
    if not word.startswith(SECRET_PREFIX):
        raise ConfigError(f"{which} does not start with {SECRET_PREFIX}")
    encoded = word[len(SECRET_PREFIX) :].rstrip("=")
    raw = encoded.encode("ascii", "replace")
    if not raw or not set(raw) <= _B64_ALPHABET or len(raw) % 4 == 1:
        raise ConfigError(f"{which} is not {SECRET_PREFIX} followed by standard base64")
    try:
        key = base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        # the library's message is about padding, but chain nothing that could carry the text
        raise ConfigError(f"{which} is not {SECRET_PREFIX} followed by standard base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ConfigError(
            f"{which} decodes to {len(key)} bytes; Standard Webhooks secrets are "
            f"{MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} random bytes"
        )
    return key
