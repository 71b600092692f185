"""Pieces shared by the v1 and v2 kind parsers."""

from __future__ import annotations

import re
from dataclasses import dataclass

from monitor.core.errors import MalformedInputError
from monitor.core.jsonread import JsonReader
from monitor.entries.keys import parse_public_key
from monitor.entries.record import Digest, Signer
from monitor.entries.x509 import parse_certificate_pem_or_der

# hex digest lengths by algorithm name, as Rekor v1 writes them
_HEX_LENGTHS = {"sha1": 40, "sha256": 64, "sha384": 96, "sha512": 128, "md5": 32}
_HEX = re.compile("[0-9a-f]*")


@dataclass(frozen=True)
class EntryFields:
    """What a kind parser extracts from a body; the dispatcher adds log, index and time."""

    signers: tuple[Signer, ...] = ()
    artifact_digests: tuple[Digest, ...] = ()
    payload_hash: Digest | None = None
    envelope_hash: Digest | None = None
    payload_type: str | None = None
    notes: tuple[str, ...] = ()


def hex_digest(r: JsonReader) -> Digest:
    """A v1 ``{"algorithm": "sha256", "value": "<hex>"}`` hash."""
    algorithm_r = r.get("algorithm")
    algorithm = algorithm_r.str().lower()
    value_r = r.get("value")
    value = value_r.str().lower()
    want = _HEX_LENGTHS.get(algorithm)
    if want is None:
        raise algorithm_r.fail(f"unknown hash algorithm {algorithm[:20]!r}")
    if len(value) != want or not _HEX.fullmatch(value):
        raise value_r.fail(f"not a {want}-digit hex {algorithm} digest")
    return Digest(algorithm, value)


def signer_from_bytes(data: bytes, fmt: str, where: JsonReader) -> Signer:
    """A certificate when the content is one, else a public key in ``fmt``."""
    try:
        if fmt == "x509" and data.lstrip()[:27] == b"-----BEGIN CERTIFICATE-----":
            return parse_certificate_pem_or_der(data)
        return parse_public_key(data, fmt)
    except MalformedInputError as e:
        raise where.fail(str(e)) from None


def signer_from_b64(r: JsonReader, fmt: str = "x509") -> Signer:
    """Rekor v1's base64 of a PEM certificate or key (or of a key in another format)."""
    return signer_from_bytes(r.b64(), fmt, r)
