"""Trust files read as the protobuf JSON they are: nulls, proto field names, unknown fields,
integers as strings, enums as numbers, URL-safe base64; and a log key without a validity start.

Each case starts from the production trusted root and signing config and rewrites them the way
another protobuf JSON writer may; the result must be the same trust root.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.core.errors import MalformedInputError, TrustRootError
from monitor.core.protojson import camel, decode_bytes, normalize, parse_timestamp
from monitor.trust import TrustRoot, build_trust_root, load_trust_root
from tests.test_trust import PROD_ROOT, SC_V2, _log, _summary

CONFORMANCE = Path(__file__).parent / "fixtures" / "conformance" / "bundle-verify"


def _root() -> Any:
    return json.loads(PROD_ROOT.read_text(encoding="utf-8"))


def _config() -> Any:
    return json.loads(SC_V2.read_text(encoding="utf-8"))


def _build(root: Any, config: Any | None = None) -> TrustRoot:
    sc = json.dumps(config if config is not None else _config()).encode()
    return build_trust_root(json.dumps(root).encode(), sc)


@pytest.fixture(scope="module")
def expected() -> list[tuple[object, ...]]:
    return _summary(_build(_root()))


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _rename(doc: Any, rename: Callable[[str], str]) -> Any:
    if isinstance(doc, dict):
        return {rename(k): _rename(v, rename) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_rename(v, rename) for v in doc]
    return doc


def _with_nulls(doc: Any) -> Any:
    """Every optional field the file leaves out, written as null (as some writers do)."""
    out = json.loads(json.dumps(doc))
    for tlog in out["tlogs"]:
        tlog.setdefault("checkpointKeyId", None)
        tlog["operator"] = None
        tlog["publicKey"]["validFor"].setdefault("end", None)
    for ca in out["certificateAuthorities"]:
        ca["operator"] = None
    out["timestampAuthorities"] = out.get("timestampAuthorities") or None
    return out


def _urlsafe(text: str) -> str:
    return text.replace("+", "-").replace("/", "_").rstrip("=")


def test_proto_field_names_read_as_json_names(expected: list[tuple[object, ...]]) -> None:
    root = _rename(_root(), _snake)
    assert "base_url" in root["tlogs"][0]
    assert _summary(_build(root, _rename(_config(), _snake))) == expected


def test_nulls_are_unset(expected: list[tuple[object, ...]]) -> None:
    assert _summary(_build(_with_nulls(_root()))) == expected


def test_unknown_fields_are_ignored(expected: list[tuple[object, ...]]) -> None:
    root = _root()
    root["futureField"] = {"anything": [1, 2]}
    root["tlogs"][0]["witnesses"] = [{"name": "w"}]
    root["tlogs"][0]["publicKey"]["someNewDetail"] = "x"
    assert _summary(_build(root)) == expected


def test_integers_as_strings_and_enums_as_numbers(expected: list[tuple[object, ...]]) -> None:
    root, config = _root(), _config()
    for tlog in root["tlogs"]:
        details = tlog["publicKey"]["keyDetails"]
        tlog["publicKey"]["keyDetails"] = {"PKIX_ECDSA_P256_SHA_256": 5, "PKIX_ED25519": 7}[details]
        tlog["hashAlgorithm"] = 1
    for service in config["rekorTlogUrls"]:
        service["majorApiVersion"] = str(service["majorApiVersion"])
    assert _summary(_build(root, config)) == expected


def test_url_safe_unpadded_base64(expected: list[tuple[object, ...]]) -> None:
    root = _root()
    for tlog in root["tlogs"]:
        tlog["publicKey"]["rawBytes"] = _urlsafe(tlog["publicKey"]["rawBytes"])
        tlog["logId"]["keyId"] = _urlsafe(tlog["logId"]["keyId"])
    assert _summary(_build(root)) == expected


def test_timestamps_rfc3339_with_fraction_and_offset() -> None:
    root = _root()
    root["tlogs"][0]["publicKey"]["validFor"]["start"] = "2021-01-12T12:53:27.123456789+01:00"
    v1 = _log(_build(root), "rekor.sigstore.dev")
    assert v1.valid_from == datetime(2021, 1, 12, 11, 53, 27, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda r: r["tlogs"][0]["publicKey"]["validFor"].update(start="2021-01-12T11:53:27"),
            r"tlogs\.0\.publicKey\.validFor\.start: Value error, an RFC 3339 time needs a time "
            r"zone",
        ),
        (
            lambda r: r["tlogs"][0]["publicKey"]["validFor"].update(start=1610452407),
            r"validFor\.start: Value error, expected an RFC 3339 timestamp string",
        ),
        (
            lambda r: r["tlogs"][0].update(base_url="https://other.example"),
            r"tlogs\[0\]\.baseUrl: given twice \(as baseUrl and as base_url\)",
        ),
        (
            lambda r: r["tlogs"][0]["publicKey"].update(keyDetails=99),
            r"keyDetails: Value error, unknown enum value 99",
        ),
        (lambda r: r.update(tlogs=[None]), r"tlogs\[0\]: null in a list"),
    ],
    ids=["naive-time", "time-as-number", "both-spellings", "unknown-enum-number", "null-in-list"],
)
def test_what_protobuf_json_does_not_allow(edit: Callable[[Any], None], message: str) -> None:
    root = _root()
    edit(root)
    with pytest.raises(TrustRootError, match=message):
        _build(root)


def test_conformance_root_with_nulls_loads() -> None:
    """sigstore-conformance's trust-root-tlog-validity-end-inclusive root writes ``null`` for
    checkpointKeyId, operator and end: a protobuf JSON reader takes it as the prod root."""
    path = CONFORMANCE / "trust-root-tlog-validity-end-inclusive" / "trusted_root.json"
    assert '"operator": null' in path.read_text(encoding="utf-8")
    root = load_trust_root(str(path), None)
    v1 = _log(root, "rekor.sigstore.dev")
    assert v1.operator == ""
    assert v1.valid_until == datetime(2023, 7, 12, 15, 56, 36, tzinfo=UTC)
    assert v1.valid_at(datetime(2023, 7, 12, 15, 56, 36, tzinfo=UTC))  # closed interval
    assert not v1.valid_at(datetime(2023, 7, 12, 15, 56, 37, tzinfo=UTC))


# --- a log key without a validity start ------------------------------------------------------


def test_key_without_validity_start_is_never_valid() -> None:
    root = _root()
    del root["tlogs"][0]["publicKey"]["validFor"]
    root["tlogs"][1]["publicKey"]["validFor"] = {"end": "2030-01-01T00:00:00Z"}
    built = _build(root)
    for log in built.logs:
        assert log.valid_from is None
        assert not log.valid_at(datetime(2026, 1, 1, tzinfo=UTC))
        problem = log.validity_problem()
        assert problem is not None
        assert log.base_url in problem
        assert "publicKey.validFor.start" in problem
    # a Rekor v2 shard without one is not current either
    assert built.v2_shards(datetime(2026, 6, 1, tzinfo=UTC)) == ()


def test_conformance_root_without_validity_start() -> None:
    case = CONFORMANCE / "trust-root-tlog-missing-validity-start_fail" / "trusted_root.json"
    root = load_trust_root(str(case), None)
    undated = [log for log in root.logs if log.validity_problem()]
    assert [log.key_name for log in undated] == ["log2025-alpha1.rekor.sigstage.dev"]


# --- the mapping itself ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("proto", "json_name"),
    [
        ("base_url", "baseUrl"),
        ("x509_certificate_chain", "x509CertificateChain"),
        ("dsse_v002", "dsseV002"),
        ("canonicalized_body", "canonicalizedBody"),
        ("logIndex", "logIndex"),
    ],
)
def test_camel(proto: str, json_name: str) -> None:
    assert camel(proto) == json_name


def test_normalize_is_bounded_in_depth() -> None:
    deep: Any = {}
    for _ in range(100):
        deep = {"a": deep}
    with pytest.raises(MalformedInputError, match="nested more than 64 levels"):
        normalize(deep)


@pytest.mark.parametrize(
    ("text", "raw"),
    [
        ("AQID", b"\x01\x02\x03"),
        ("AQI=", b"\x01\x02"),
        ("AQI", b"\x01\x02"),
        ("-_8=", b"\xfb\xff"),
        ("-_8", b"\xfb\xff"),
        ("+/8=", b"\xfb\xff"),
        ("", b""),
    ],
)
def test_decode_bytes(text: str, raw: bytes) -> None:
    assert decode_bytes(text) == raw


@pytest.mark.parametrize("text", ["A", "AQI==", "AQ=I", "AQ I", "AQI!", "AQ==AQ==", "\u00e9"])
def test_decode_bytes_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not valid base64"):
        decode_bytes(text)


@pytest.mark.parametrize("text", ["2021-01-12", "noon", "2021-01-12T11:53:27"])
def test_timestamps_refused(text: str) -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_timestamp(text)


def test_discovery_reports_a_shard_whose_key_has_no_validity_start() -> None:
    from monitor.logclient.discovery import ShardDiscovery

    root = _root()
    del root["tlogs"][1]["publicKey"]["validFor"]["start"]
    trust = _build(root)
    changes = ShardDiscovery(lambda: trust).refresh()
    assert (changes.current, changes.added) == ((), ())
    assert [log.key_name for log in changes.untrusted] == ["log2025-1.rekor.sigstore.dev"]
