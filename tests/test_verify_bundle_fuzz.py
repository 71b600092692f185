"""Mutated real evidence never makes verification crash: it either parses and verifies (or
fails named checks), or is rejected as malformed."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.bundles.parse import parse_evidence
from monitor.bundles.verify import verify_evidence
from monitor.core.errors import MalformedInputError
from monitor.trust import TrustRoot, load_trust_root
from tests.conftest import STAGING_ROOT, evidence_files, json_paths

FILES = evidence_files()
RAW = [p.read_bytes() for p in FILES]
DOCS = [json.loads(r) for r in RAW]


@cache
def _trust(staging: bool) -> TrustRoot:
    return load_trust_root(str(STAGING_ROOT)) if staging else load_trust_root()


def _check(index: int, data: bytes) -> None:
    trust = _trust("staging" in FILES[index].name)
    try:
        evidence = parse_evidence(data)
    except MalformedInputError:
        return
    for report in verify_evidence(evidence, trust):
        assert report.checks
        for check in report.checks:
            assert check.ok or check.detail


PATHS = [json_paths(d)[1:] for d in DOCS]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from(["", "0", "00", "-1", "AAAA", "====", "\u2014 x AAAAAA==", "a" * 64]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_structural_mutations(data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(FILES) - 1))
    doc = json.loads(RAW[i])
    path = data.draw(st.sampled_from(PATHS[i]))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(json_values)
    _check(i, json.dumps(doc).encode())


@settings(max_examples=600, deadline=None)
@given(st.data())
def test_string_mutations(data: st.DataObject) -> None:
    """Edit one character inside a string value: reaches the base64, hex, note and checkpoint
    parsers with almost-valid input."""
    i = data.draw(st.integers(0, len(FILES) - 1))
    doc = json.loads(RAW[i])
    string_paths = [p for p in PATHS[i] if isinstance(_get(doc, p), str) and _get(doc, p)]
    path = data.draw(st.sampled_from(string_paths))
    value: str = _get(doc, path)
    pos = data.draw(st.integers(0, len(value) - 1))
    op = data.draw(st.sampled_from(["replace", "insert", "delete"]))
    ch = data.draw(st.sampled_from(["\n", " ", "\u2014", "=", "A", "/", "0", "\x00", "\u00e9"]))
    if op == "replace":
        value = value[:pos] + ch + value[pos + 1 :]
    elif op == "insert":
        value = value[:pos] + ch + value[pos:]
    else:
        value = value[:pos] + value[pos + 1 :]
    parent = _get(doc, path[:-1])
    parent[path[-1]] = value
    _check(i, json.dumps(doc).encode())


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_byte_mutations(data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(FILES) - 1))
    raw = bytearray(RAW[i])
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    _check(i, bytes(raw))


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc
