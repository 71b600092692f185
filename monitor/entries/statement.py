"""DSSE and in-toto: the pre-authentication encoding, and subjects from a statement.

Rekor v1 keeps the in-toto statement only for ``intoto`` entries (``attestation.data``); a
bundle carries the DSSE envelope beside the entry. Either is believed only after its hash
matches the payload hash the log recorded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from monitor.core.errors import MalformedInputError
from monitor.core.jsonread import JsonReader
from monitor.entries.record import Digest, Subject

MAX_SUBJECTS = 10_000
MAX_STATEMENT_BYTES = 4 << 20


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what a DSSE signature actually covers."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope's signed content (signatures are the log's business, not ours)."""

    payload_type: str
    payload: bytes

    def payload_digest(self) -> Digest:
        return Digest("sha256", hashlib.sha256(self.payload).hexdigest())

    def pae_digest(self) -> Digest:
        return Digest("sha256", hashlib.sha256(pae(self.payload_type, self.payload)).hexdigest())


@dataclass(frozen=True)
class Statement:
    statement_type: str
    predicate_type: str | None
    subjects: tuple[Subject, ...]


def parse_statement(data: bytes) -> Statement:
    """Parse an in-toto statement (v0.1 or v1); raises ``MalformedInputError``."""
    if len(data) > MAX_STATEMENT_BYTES:
        raise MalformedInputError(f"statement is larger than {MAX_STATEMENT_BYTES} bytes")
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise MalformedInputError("statement is not JSON") from None
    top = JsonReader(doc, "statement")
    stype = top.get("_type").str()
    if "in-toto.io/Statement" not in stype:
        raise top.get("_type").fail(f"not an in-toto statement: {stype[:80]!r}")
    ptype = top.opt("predicateType")
    items = top.get("subject").items()
    if len(items) > MAX_SUBJECTS:
        raise top.get("subject").fail(f"more than {MAX_SUBJECTS} subjects")
    subjects = tuple(_subject(s) for s in items)
    return Statement(stype, ptype.str() if ptype is not None else None, subjects)


def _subject(s: JsonReader) -> Subject:
    name = s.opt("name")
    digests = []
    for alg, value in s.get("digest").obj().items():
        if not isinstance(value, str):
            raise s.get("digest").fail(f"digest {alg[:20]!r} is not a string")
        digests.append(Digest(alg.lower(), value.lower()))
    return Subject(name.str() if name is not None else "", tuple(digests))
