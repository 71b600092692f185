"""Fuzz: well over 100,000 mutated real entry bodies; nothing but a record or a malformed-entry
result ever comes out of the parser, and every result serialises.

Hypothesis drives a seed and a mutation program; each example applies it to every real body
(with and without an envelope or attestation) in several variants.
"""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.entries import parse_entry
from monitor.entries.record import MalformedEntry, SigningRecord
from monitor.entries.serialize import result_json
from monitor.entries.statement import Envelope
from tests.conftest import FIXTURES, json_paths

EXAMPLES = 520
VARIANTS = 8


def _real_bodies() -> list[tuple[bytes, Envelope | None]]:
    out: list[tuple[bytes, Envelope | None]] = []
    for d in ("v1-bundles", "v2"):
        for p in sorted((FIXTURES / d).glob("*.json")):
            doc = json.loads(p.read_text())
            tles = doc.get("verificationMaterial", {}).get("tlogEntries") or [doc]
            env = doc.get("dsseEnvelope")
            envelope = (
                Envelope(env["payloadType"], base64.b64decode(env["payload"])) if env else None
            )
            out += [(base64.b64decode(t["canonicalizedBody"]), envelope) for t in tles]
    for p in sorted((FIXTURES / "v1-api").glob("logentry.*.json")):
        (entry,) = json.loads(p.read_text()).values()
        out.append((base64.b64decode(entry["body"]), None))
    return out


BODIES = _real_bodies()
STRINGS = sorted(
    {v for body, _ in BODIES for v in json.dumps(json.loads(body)).split('"')[1::2] if len(v) > 8}
)
ODD_VALUES: list[Any] = [
    None, True, 0, -1, 2**64, 1e308, "", "0", "=", "AAAA", "\u2028", "x" * 70_000,
    [], {}, [[[[[]]]]], {"algorithm": "sha256", "value": "0" * 64},
]  # fmt: skip


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return doc


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _bytes_op(rng: random.Random, data: bytearray) -> bytearray:
    if not data:
        return bytearray(rng.randbytes(rng.randint(1, 8)))
    pos = rng.randrange(len(data))
    match rng.randrange(6):
        case 0:
            data[pos] ^= 1 << rng.randrange(8)
        case 1:
            data[pos] = rng.randrange(256)
        case 2:
            data[pos:pos] = rng.randbytes(rng.randint(1, 16))
        case 3:
            del data[pos : pos + rng.randint(1, 64)]
        case 4:
            del data[pos:]
        case _:
            end = min(len(data), pos + rng.randint(1, 64))
            data[pos:pos] = data[pos:end]
    return data


def _json_op(rng: random.Random, body: bytes) -> bytes:
    doc = json.loads(body)
    path = rng.choice(json_paths(doc))
    target = _get(doc, path)
    match rng.randrange(5):
        case 0:
            doc = _set(doc, path, rng.choice(ODD_VALUES))
        case 1:  # a real value from another body in this place
            doc = _set(doc, path, rng.choice(STRINGS))
        case 2 if isinstance(target, str):  # mutate the bytes inside a base64 field
            try:
                inner = bytearray(base64.b64decode(target, validate=True))
            except ValueError:  # binascii.Error, or non-ASCII text
                inner = bytearray(target.encode())
            for _ in range(rng.randint(1, 3)):
                inner = _bytes_op(rng, inner)
            doc = _set(doc, path, base64.b64encode(bytes(inner)).decode())
        case 3 if path and isinstance(_get(doc, path[:-1]), dict):
            del _get(doc, path[:-1])[path[-1]]
        case _:
            doc = _set(doc, path, {"nested": target, "again": [target]})
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _mutate(rng: random.Random, body: bytes, ops: list[str]) -> bytes:
    for op in ops:
        if op == "json":
            try:
                body = _json_op(rng, body)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                body = bytes(_bytes_op(rng, bytearray(body)))
        else:
            body = bytes(_bytes_op(rng, bytearray(body)))
    return body


def _check(body: bytes, envelope: Envelope | None, attestation: bytes | None) -> None:
    result = parse_entry(body, log="fuzz", index=1, envelope=envelope, attestation=attestation)
    if isinstance(result, MalformedEntry):
        assert result.reason
        assert not result.reason.startswith("internal parser error"), result.reason
        assert result.raw_body == body
    else:
        assert isinstance(result, SigningRecord)
    json.dumps(result_json(result))


@pytest.mark.slow
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(
    seed=st.integers(0, 2**32 - 1),
    ops=st.lists(st.sampled_from(["json", "json", "bytes"]), min_size=1, max_size=3),
)
def test_mutated_real_bodies(seed: int, ops: list[str]) -> None:
    rng = random.Random(seed)
    for body, envelope in BODIES:
        for variant in range(VARIANTS):
            mutated = _mutate(rng, body, ops)
            attestation = envelope.payload if envelope and variant % 3 == 0 else None
            _check(mutated, envelope if variant % 2 else None, attestation)


def test_fuzz_volume_is_at_least_100k() -> None:
    assert EXAMPLES * VARIANTS * len(BODIES) >= 100_000
