"""Strict decoders for the encodings Rekor uses: they raise ``ValueError`` and nothing else."""

from __future__ import annotations

import base64
import binascii


def b64decode_strict(text: str) -> bytes:
    """Standard base64 with padding; any other character is an error."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise ValueError("not valid base64") from e


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hexdecode_strict(text: str) -> bytes:
    """Hex digits only (either case), even length."""
    if len(text) % 2 or not all(c in _HEX_DIGITS for c in text):
        raise ValueError("not valid hex")
    return bytes.fromhex(text)


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
