"""What every key parser shares: the size limit, a bounds-checked reader, base64 and text
decoding that fail as ``MalformedInputError`` naming the format and the field."""

from __future__ import annotations

import base64
import binascii

from monitor.core.errors import MalformedInputError

__all__ = ["MAX_KEY_BYTES", "KeyReader", "b64decode", "check_size", "key_text"]

# Largest key text accepted. Real keys are a few KiB (a PGP key with many certifications maybe
# a few hundred); anything larger is abuse, and refusing it early bounds all the work below.
MAX_KEY_BYTES = 1 << 20


class KeyReader:
    """A bounds-checked cursor over bytes: reading past the end is a ``MalformedInputError``."""

    def __init__(self, data: bytes, what: str) -> None:
        self._data = data
        self._pos = 0
        self._what = what

    def remaining(self) -> int:
        return len(self._data) - self._pos

    def position(self) -> int:
        return self._pos

    def take(self, n: int, field: str) -> bytes:
        if n < 0 or n > self.remaining():
            raise MalformedInputError(f"{self._what}: {field} exceeds data")
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def uint(self, n: int, field: str) -> int:
        return int.from_bytes(self.take(n, field), "big")

    def expect_end(self, field: str) -> None:
        if self.remaining():
            raise MalformedInputError(f"{self._what}: {self.remaining()} trailing bytes {field}")


def check_size(data: bytes, what: str) -> None:
    if len(data) > MAX_KEY_BYTES:
        raise MalformedInputError(f"{what}: input is {len(data)} bytes, more than {MAX_KEY_BYTES}")
    if not data.strip():
        raise MalformedInputError(f"{what}: input is empty")


def b64decode(text: str | bytes, what: str, field: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedInputError(f"{what}: bad base64 in {field}") from exc


def key_text(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedInputError(f"{what}: not UTF-8 text") from exc
