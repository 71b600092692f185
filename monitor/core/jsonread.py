"""Typed, path-naming access into parsed JSON from untrusted sources.

Every accessor raises ``MalformedInputError`` naming the JSON path of the problem, so parsers
built on it can never leak ``KeyError`` or ``TypeError`` to a user.
"""

from __future__ import annotations

from typing import Any

from monitor.core.encoding import b64decode_strict, hexdecode_strict
from monitor.core.errors import MalformedInputError
from monitor.core.protojson import decode_bytes

MAX_INT = (1 << 63) - 1


class JsonReader:
    """Typed access into parsed JSON that names the path of whatever is wrong.

    A child's path is spelled out only when something asks for it (an error, mostly): parsing
    a log's entries walks a dozen keys of each, and all but a few entries are well-formed."""

    __slots__ = ("_key", "_parent", "_path", "value")

    def __init__(
        self, value: Any, path: str | None, parent: JsonReader | None = None, key: str | int = ""
    ) -> None:
        """``path`` names ``value``; a child of ``parent`` at ``key`` (or index) gives None."""
        self.value = value
        self._path = path
        self._parent = parent
        self._key = key

    @property
    def path(self) -> str:
        path = self._path
        if path is None:
            assert self._parent is not None
            key = self._key
            if isinstance(key, int):
                path = f"{self._parent.path}[{key}]"
            else:
                path = self._parent._join(key)
            self._path = path
        return path

    def fail(self, message: str) -> MalformedInputError:
        return MalformedInputError(f"{self.path or '(top)'}: {message}")

    def obj(self) -> dict[str, Any]:
        if not isinstance(self.value, dict):
            raise self.fail(f"expected an object, got {_type_name(self.value)}")
        return self.value

    def get(self, key: str) -> JsonReader:
        try:  # only a dict takes a str key: anything else raises TypeError
            return JsonReader(self.value[key], None, self, key)
        except (KeyError, TypeError):
            pass
        obj = self.value
        if not isinstance(obj, dict):
            raise self.fail(f"expected an object, got {_type_name(obj)}")
        raise MalformedInputError(f"{self._join(key)}: missing")

    def opt(self, key: str) -> JsonReader | None:
        obj = self.obj()
        if obj.get(key) is None:
            return None
        return JsonReader(obj[key], None, self, key)

    def _join(self, key: str) -> str:
        path = self.path
        return f"{path}.{key}" if path else key

    def items(self) -> list[JsonReader]:
        if not isinstance(self.value, list):
            raise self.fail(f"expected a list, got {_type_name(self.value)}")
        return [JsonReader(v, None, self, i) for i, v in enumerate(self.value)]

    def str(self) -> str:
        if not isinstance(self.value, str):
            raise self.fail(f"expected a string, got {_type_name(self.value)}")
        return self.value

    def int(self) -> int:
        """An integer, or a decimal string (protobuf JSON encodes int64 as a string)."""
        v = self.value
        if isinstance(v, bool):
            raise self.fail("expected an integer, got a boolean")
        if isinstance(v, str):
            if not v.isascii() or not v.isdigit() or (len(v) > 1 and v[0] == "0"):
                raise self.fail(f"expected a decimal integer, got {v[:30]!r}")
            v = int(v)
        if not isinstance(v, int):
            raise self.fail(f"expected an integer, got {_type_name(v)}")
        if not 0 <= v <= MAX_INT:
            raise self.fail(f"integer {v} out of range")
        return v

    def b64(self) -> bytes:
        try:
            return b64decode_strict(self.str())
        except ValueError:
            raise self.fail("not valid base64") from None

    def proto_bytes(self) -> bytes:
        """A protobuf JSON ``bytes`` field: standard or URL-safe base64, padded or not."""
        try:
            return decode_bytes(self.str())
        except ValueError:
            raise self.fail("not valid base64") from None

    def hex(self) -> bytes:
        try:
            return hexdecode_strict(self.str())
        except ValueError:
            raise self.fail("not valid hex") from None


def _type_name(v: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(
        type(v), type(v).__name__
    )
