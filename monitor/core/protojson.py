"""The protobuf JSON mapping, as Sigstore's trust files and bundles use it.

``TrustedRoot``, ``SigningConfig``, bundles and ``TransparencyLogEntry`` are protobuf messages
written as JSON, and every Sigstore client reads them with a protobuf JSON parser. So must we,
or a file they accept is refused here: a field may be spelled in lowerCamelCase (``baseUrl``)
or by its proto name (``base_url``); ``null`` means the field is unset; unknown fields are
ignored (by our readers, which look up only what they know); 64-bit integers may be strings;
bytes are base64, standard or URL-safe, with or without padding; enums may be names or numbers.

``normalize`` rewrites a parsed document to one spelling (lowerCamelCase, nulls dropped), so
that the readers after it see a single form. It applies to protobuf messages only: Rekor v1's
REST JSON (``logID``, ``integratedTime``) is not protobuf and keeps its own names.

The ``sigstore_models`` package that ``sigstore`` depends on was considered and not used: its
models forbid unknown fields and require 64-bit integers as strings, so they refuse files
that protobuf parsers accept.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any

from monitor.core.errors import MalformedInputError

MAX_DEPTH = 64  # Sigstore messages nest a handful of levels; deeper is not one of them

_URLSAFE = str.maketrans("-_", "+/")
_B64_CHARS = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


def camel(name: str) -> str:
    """The JSON name protoc gives a proto field name: ``x509_certificate_chain`` becomes
    ``x509CertificateChain`` (each letter after an underscore upper-cased)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def normalize(doc: Any, path: str = "") -> Any:
    """``doc`` with every object key in lowerCamelCase and every null field dropped.

    ``MalformedInputError`` (naming the path) for a field given under both spellings, a null in
    a list, or nesting deeper than ``MAX_DEPTH``."""
    return _normalize(doc, path, 0)


def _normalize(doc: Any, path: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise MalformedInputError(f"{path or '(top)'}: nested more than {MAX_DEPTH} levels")
    if isinstance(doc, dict):
        out: dict[str, Any] = {}
        for key, value in doc.items():
            if value is None:
                continue  # protobuf JSON: null is the default value, i.e. unset
            name = camel(key) if "_" in key else key
            where = f"{path}.{name}" if path else name
            if name in out:
                raise MalformedInputError(f"{where}: given twice (as {name} and as {key})")
            out[name] = _normalize(value, where, depth + 1)
        return out
    if isinstance(doc, list):
        items = []
        for i, value in enumerate(doc):
            if value is None:
                raise MalformedInputError(f"{path}[{i}]: null in a list")
            items.append(_normalize(value, f"{path}[{i}]", depth + 1))
        return items
    return doc


def decode_bytes(text: str) -> bytes:
    """A protobuf JSON ``bytes`` value: standard or URL-safe base64, padded or not.
    ``ValueError`` for anything else (stray characters, a wrong length, padding mid-text)."""
    if not _B64_CHARS.fullmatch(text):
        raise ValueError("not valid base64")
    body = text.rstrip("=").translate(_URLSAFE)
    if len(body) % 4 == 1:
        raise ValueError("not valid base64")
    padded = body + "=" * (-len(body) % 4)
    if text.endswith("=") and padded != text.translate(_URLSAFE):
        raise ValueError("not valid base64")  # wrong amount of padding
    try:
        return base64.b64decode(padded, validate=True)
    except binascii.Error as e:
        raise ValueError("not valid base64") from e


_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_timestamp(text: str) -> datetime:
    """A ``google.protobuf.Timestamp`` in JSON: RFC 3339 with a ``Z`` or an offset, up to
    nine fractional digits (kept to the microsecond). ``ValueError`` without a time zone."""
    text = text.upper()  # RFC 3339 allows "t" and "z"
    if "T" not in text:
        raise ValueError("expected an RFC 3339 date and time")
    when = datetime.fromisoformat(_FRACTION.sub(r"\1", text))
    if when.tzinfo is None:
        raise ValueError("an RFC 3339 time needs a time zone (Z or an offset)")
    return when.astimezone(UTC)


PUBLIC_KEY_DETAILS = {
    1: "PKCS1_RSA_PKCS1V5",
    2: "PKCS1_RSA_PSS",
    3: "PKIX_RSA_PKCS1V5",
    4: "PKIX_RSA_PSS",
    5: "PKIX_ECDSA_P256_SHA_256",
    6: "PKIX_ECDSA_P256_HMAC_SHA_256",
    7: "PKIX_ED25519",
    8: "PKIX_ED25519_PH",
    9: "PKIX_RSA_PKCS1V15_2048_SHA256",
    10: "PKIX_RSA_PKCS1V15_3072_SHA256",
    11: "PKIX_RSA_PKCS1V15_4096_SHA256",
    12: "PKIX_ECDSA_P384_SHA_384",
    13: "PKIX_ECDSA_P521_SHA_512",
    14: "LMS_SHA256",
    15: "LMOTS_SHA256",
    16: "PKIX_RSA_PSS_2048_SHA256",
    17: "PKIX_RSA_PSS_3072_SHA256",
    18: "PKIX_RSA_PSS_4096_SHA256",
    19: "PKIX_ECDSA_P384_SHA_256",
    20: "PKIX_ECDSA_P521_SHA_256",
    21: "ML_DSA_65",
    22: "ML_DSA_87",
    23: "ML_DSA_44",
}
"""``dev.sigstore.common.v1.PublicKeyDetails``: numbers to names (protobuf-specs)."""

HASH_ALGORITHMS = {1: "SHA2_256", 2: "SHA2_384", 3: "SHA2_512", 4: "SHA3_256", 5: "SHA3_384"}
"""``dev.sigstore.common.v1.HashAlgorithm``: numbers to names."""


def enum_name(value: object, names: dict[int, str]) -> object:
    """An enum given by number becomes its name; a name (or anything else) is left to the
    model's own validation."""
    if isinstance(value, int) and not isinstance(value, bool):
        name = names.get(value)
        if name is None:
            raise ValueError(f"unknown enum value {value}")
        return name
    return value


__all__ = [
    "HASH_ALGORITHMS",
    "PUBLIC_KEY_DETAILS",
    "camel",
    "decode_bytes",
    "enum_name",
    "normalize",
    "parse_timestamp",
]
