"""The trust root: production defaults, the fixture files, and errors that name file and field."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x448

from monitor.core.errors import ConfigError, TrustRootError
from monitor.tlog.checkpoint import v1_tree_id
from monitor.tlog.note import EcdsaNoteVerifier, Ed25519NoteVerifier
from monitor.trust import TransparencyLog, TrustRoot, build_trust_root, load_trust_root

TRUST = Path(__file__).parent / "fixtures" / "trust"
PROD_ROOT = TRUST / "trusted_root.prod.json"
STAGING_ROOT = TRUST / "trusted_root.staging.json"
SC_V2 = TRUST / "signing_config_rekor_v2.v0.2.prod.json"
SC_V1_ONLY = TRUST / "signing_config.v0.2.prod.json"

V1 = "rekor.sigstore.dev"
V2 = "log2025-1.rekor.sigstore.dev"
V1_LOG_ID = "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"
V2_LOG_ID_B64 = "zxGZFVvd0FEmjR8WrFwMdcAJ9vtaY/QXf44Y1wUeP6A="
V1_ORIGIN = "rekor.sigstore.dev - 1193050959916656506"


def _log(root: TrustRoot, key_name: str) -> TransparencyLog:
    (log,) = [log for log in root.logs if log.key_name == key_name]
    return log


def _summary(root: TrustRoot) -> list[tuple[object, ...]]:
    """Everything about the logs that can be compared with ==."""
    return [
        (
            log.base_url,
            log.key_name,
            log.api_version,
            log.log_id,
            log.checkpoint_key_id,
            log.key_details,
            log.spki,
            log.valid_from,
            log.valid_until,
            log.operator,
        )
        for log in root.logs
    ]


@pytest.fixture(scope="module")
def default_root() -> TrustRoot:
    return load_trust_root()


# --- the production trust root -------------------------------------------------------------


def test_default_has_the_two_prod_logs(default_root: TrustRoot) -> None:
    assert default_root.source == "default trusted root"
    assert [log.key_name for log in default_root.logs] == [V1, V2]


def test_default_v1_log(default_root: TrustRoot) -> None:
    log = _log(default_root, V1)
    assert log.base_url == "https://rekor.sigstore.dev"
    assert log.api_version == 1
    assert log.log_id.hex() == V1_LOG_ID
    assert log.checkpoint_key_id.hex() == "c0d23d6a"
    assert log.key_details == "PKIX_ECDSA_P256_SHA_256"
    assert isinstance(log.public_key, ec.EllipticCurvePublicKey)
    assert log.public_key.curve.name == "secp256r1"
    assert log.valid_from == datetime(2021, 1, 12, 11, 53, 27, tzinfo=UTC)
    assert log.valid_until is None
    verifier = log.note_verifier()
    assert isinstance(verifier, EcdsaNoteVerifier)
    assert (verifier.name, verifier.key_id.hex()) == (V1, "c0d23d6a")


def test_default_v2_log(default_root: TrustRoot) -> None:
    log = _log(default_root, V2)
    assert log.base_url == "https://log2025-1.rekor.sigstore.dev"
    assert log.api_version == 2
    assert log.log_id == base64.b64decode(V2_LOG_ID_B64)
    assert log.checkpoint_key_id.hex() == "cf119915"
    assert log.key_details == "PKIX_ED25519"
    assert isinstance(log.public_key, ed25519.Ed25519PublicKey)
    assert log.valid_from == datetime(2025, 9, 23, tzinfo=UTC)
    assert log.valid_until is None
    verifier = log.note_verifier()
    assert isinstance(verifier, Ed25519NoteVerifier)
    assert (verifier.name, verifier.key_id.hex()) == (V2, "cf119915")


def test_default_fulcio_cas(default_root: TrustRoot) -> None:
    cas = default_root.certificate_authorities
    assert len(cas) == 2
    assert all(ca.uri == "https://fulcio.sigstore.dev" for ca in cas)
    assert all(ca.chain for ca in cas)
    assert cas[0].valid_from == datetime(2021, 3, 7, 3, 20, 29, tzinfo=UTC)
    assert cas[0].valid_until == datetime(2022, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    assert cas[1].valid_from == datetime(2022, 4, 13, 20, 6, 15, tzinfo=UTC)
    assert cas[1].valid_until is None
    for ca in cas:
        assert "sigstore" in ca.chain[-1].subject.rfc4514_string()


def test_fixture_files_give_the_same_logs(default_root: TrustRoot) -> None:
    root = load_trust_root(str(PROD_ROOT), str(SC_V2))
    assert root.source == str(PROD_ROOT)
    assert _summary(root) == _summary(default_root)
    assert len(root.certificate_authorities) == 2


def test_build_from_bytes(default_root: TrustRoot) -> None:
    root = build_trust_root(PROD_ROOT.read_bytes(), SC_V2.read_bytes())
    assert root.source == "trusted root"
    assert _summary(root) == _summary(default_root)


def test_lookups(default_root: TrustRoot) -> None:
    v1, v2 = _log(default_root, V1), _log(default_root, V2)
    assert default_root.log_by_id(bytes.fromhex(V1_LOG_ID)) is v1
    assert default_root.log_by_id(base64.b64decode(V2_LOG_ID_B64)) is v2
    assert default_root.log_by_id(bytes.fromhex(V1_LOG_ID)[:4]) is None
    assert default_root.log_by_url("https://rekor.sigstore.dev/") is v1
    assert default_root.log_by_url("https://LOG2025-1.rekor.sigstore.dev") is v2
    assert default_root.log_by_url("https://rekor.sigstage.dev") is None
    assert [(v.name, v.key_id.hex()) for v in default_root.note_verifiers()] == [
        (V1, "c0d23d6a"),
        (V2, "cf119915"),
    ]


def test_v2_shards(default_root: TrustRoot) -> None:
    assert default_root.v2_shards() == (_log(default_root, V2),)
    assert default_root.v2_shards(datetime(2025, 1, 1, tzinfo=UTC)) == ()
    assert default_root.v2_shards(datetime(2026, 2, 1, tzinfo=UTC)) == (_log(default_root, V2),)


def test_without_signing_config_api_versions_are_unknown() -> None:
    root = load_trust_root(str(PROD_ROOT), None)
    assert [log.api_version for log in root.logs] == [None, None]
    assert root.v2_shards() == ()
    # key IDs do not depend on the signing config
    assert [log.checkpoint_key_id.hex() for log in root.logs] == ["c0d23d6a", "cf119915"]
    assert build_trust_root(PROD_ROOT.read_bytes(), None).logs == root.logs


def test_v1_only_signing_config() -> None:
    root = load_trust_root(str(PROD_ROOT), str(SC_V1_ONLY))
    assert _log(root, V1).api_version == 1
    assert _log(root, V2).api_version is None
    assert root.v2_shards() == ()


def test_staging_root_loads() -> None:
    root = load_trust_root(str(STAGING_ROOT), None)
    assert root.source == str(STAGING_ROOT)
    assert [log.key_name for log in root.logs] == [
        "rekor.sigstage.dev",
        "log2025-alpha1.rekor.sigstage.dev",
        "log2025-alpha2.rekor.sigstage.dev",
        "log2025-alpha3.rekor.sigstage.dev",
    ]
    assert all(log.api_version is None for log in root.logs)
    assert [log.checkpoint_key_id.hex() for log in root.logs] == [
        "d32f30a3",
        "f30d5a99",
        "29f4a249",
        "d3d3a70c",
    ]
    assert [ca.uri for ca in root.certificate_authorities] == ["https://fulcio.sigstage.dev"]
    alpha1 = _log(root, "log2025-alpha1.rekor.sigstage.dev")
    assert alpha1.valid_until == datetime(2025, 9, 4, tzinfo=UTC)
    # a staging root and the prod signing config share no log
    mixed = load_trust_root(str(STAGING_ROOT), str(SC_V2))
    assert all(log.api_version is None for log in mixed.logs)


# --- origins, tree IDs, validity ----------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "ok"),
    [
        (V1_ORIGIN, True),
        ("rekor.sigstore.dev - 2605736670972794746", True),
        ("rekor.sigstore.dev - 0", True),
        ("rekor.sigstore.dev", False),
        # Rekor v1 signs under its configured hostname, not bound to its URL: any name will do
        # (the key and the tree ID decide)
        ("evil.dev - 1", True),
        ("rekor-00001-deployment-56bf7777c9-jds5x - 6364419738405537866", True),
        ("rekor.sigstore.dev - x", False),
        ("rekor.sigstore.dev - ", False),
        ("rekor.sigstore.dev - -1", False),
        ("rekor.sigstore.dev - 1 ", False),
        ("rekor.sigstore.dev -  1", False),
        ("rekor.sigstore.dev-1", False),
        ("xrekor.sigstore.dev - 1", True),
        (" - 1", False),
        (V2, False),
    ],
)
def test_v1_origin_matches(default_root: TrustRoot, origin: str, ok: bool) -> None:
    assert _log(default_root, V1).origin_matches(origin) is ok


@pytest.mark.parametrize(
    ("origin", "ok"),
    [
        (V2, True),
        (f"{V2} - 1", False),
        (f"{V2}/", False),
        (f"https://{V2}", False),
        (V2.upper(), False),
        (f" {V2}", False),
        (V1, False),
        (V1_ORIGIN, False),
        ("", False),
    ],
)
def test_v2_origin_matches(default_root: TrustRoot, origin: str, ok: bool) -> None:
    assert _log(default_root, V2).origin_matches(origin) is ok


def test_origin_matches_without_api_version() -> None:
    root = load_trust_root(str(PROD_ROOT), None)
    v1, v2 = _log(root, V1), _log(root, V2)
    # not knowing the API version, either form of origin is accepted: a Rekor v1 origin under
    # any hostname, or the log's own name
    assert v1.origin_matches(V1_ORIGIN)
    assert v1.origin_matches(V1)
    assert v1.origin_matches("pod-name - 1")
    assert v2.origin_matches(V2)
    assert v2.origin_matches(f"{V2} - 5")
    assert not v1.origin_matches(V2)
    assert not v2.origin_matches(V1)


@pytest.mark.parametrize(
    ("origin", "tree_id"),
    [
        (V1_ORIGIN, 1193050959916656506),
        ("rekor.sigstore.dev - 3904496407287907110", 3904496407287907110),
        ("rekor.sigstage.dev - 108574341321668964", 108574341321668964),
        ("a - 0", 0),
        ("a - 12345678901234567890", 12345678901234567890),
        ("a - 123456789012345678901", None),
        (V2, None),
        ("rekor.sigstore.dev - x", None),
        ("rekor.sigstore.dev - ", None),
        (" - 1", None),
        ("rekor.sigstore.dev -1", None),
    ],
)
def test_v1_tree_id(origin: str, tree_id: int | None) -> None:
    assert v1_tree_id(origin) == tree_id


def test_valid_at(default_root: TrustRoot) -> None:
    v1, v2 = _log(default_root, V1), _log(default_root, V2)
    assert v1.valid_at(datetime(2024, 1, 1, tzinfo=UTC))
    assert not v1.valid_at(datetime(2020, 1, 1, tzinfo=UTC))
    assert v1.valid_at(datetime(2021, 1, 12, 11, 53, 27, tzinfo=UTC))
    assert not v2.valid_at(datetime(2025, 9, 22, 23, 59, 59, tzinfo=UTC))
    assert v2.valid_at(datetime(2025, 9, 23, tzinfo=UTC))
    alpha1 = _log(load_trust_root(str(STAGING_ROOT), None), "log2025-alpha1.rekor.sigstage.dev")
    assert alpha1.valid_at(datetime(2025, 9, 4, tzinfo=UTC))
    assert not alpha1.valid_at(datetime(2025, 9, 4, 0, 0, 1, tzinfo=UTC))


# --- errors ---------------------------------------------------------------------------------


def _prod_json() -> Any:
    return json.loads(PROD_ROOT.read_text(encoding="utf-8"))


def _write(tmp_path: Path, doc: Any, name: str = "trusted_root.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _spki(key: x448.X448PublicKey | ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _unknown_algorithm_spki() -> bytes:
    """An SPKI whose algorithm OID (1.3.101.120) no library knows."""
    der = bytearray(_spki(x448.X448PrivateKey.generate().public_key()))
    oid = bytes([0x06, 0x03, 0x2B, 0x65, 0x6F])  # 1.3.101.111 = X448
    at = der.index(oid)
    der[at + 4] = 0x78
    return bytes(der)


def _raw_ed25519() -> bytes:
    return (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def _set_key(index: int, raw_bytes: str) -> Callable[[Any], None]:
    def edit(doc: Any) -> None:
        doc["tlogs"][index]["publicKey"]["rawBytes"] = raw_bytes

    return edit


def _secp256k1_undeclared(doc: Any) -> None:
    key = ec.generate_private_key(ec.SECP256K1()).public_key()
    doc["tlogs"][0]["publicKey"] = {"rawBytes": _b64(_spki(key)), "keyDetails": "UNSPECIFIED"}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _del_public_key(doc: Any) -> None:
    del doc["tlogs"][0]["publicKey"]


def _bad_log_id(doc: Any) -> None:
    doc["tlogs"][0]["logId"]["keyId"] = "wNI9%%%"


def _bad_media_type(doc: Any) -> None:
    doc["mediaType"] = "application/vnd.dev.sigstore.signingconfig.v0.2+json"


def _bad_certificate(doc: Any) -> None:
    doc["certificateAuthorities"][1]["certChain"]["certificates"][0]["rawBytes"] = _b64(b"x")


def _bad_base_url(doc: Any) -> None:
    doc["tlogs"][0]["baseUrl"] = "https://"


def _bad_base_url_no_scheme(doc: Any) -> None:
    doc["tlogs"][0]["baseUrl"] = "rekor.sigstore.dev"


_V1_WHERE = r"tlogs\[0\] \(https://rekor\.sigstore\.dev\)"
_V2_WHERE = r"tlogs\[1\] \(https://log2025-1\.rekor\.sigstore\.dev\)"

BROKEN_ROOTS: dict[str, tuple[Callable[[Any], None], str]] = {
    "wrong-media-type": (
        _bad_media_type,
        r": mediaType 'application/vnd\.dev\.sigstore\.signingconfig\.v0\.2\+json' "
        "is not a trusted root",
    ),
    "key-bad-base64": (
        _set_key(1, "MCowBQYDK2VwAyEA!!!"),
        rf": {_V2_WHERE}\.publicKey\.rawBytes: not valid base64",
    ),
    # protobuf JSON takes unpadded base64: this one decodes, to the first bytes of a key
    "key-unpadded-base64-truncated": (
        _set_key(0, "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2G2Y"[:-1]),
        rf": {_V1_WHERE}: public key is not a DER SubjectPublicKeyInfo",
    ),
    "key-bad-base64-padding": (
        _set_key(0, "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2G2Y="),
        rf": {_V1_WHERE}\.publicKey\.rawBytes: not valid base64",
    ),
    "key-not-der": (
        _set_key(0, _b64(b"not a key at all")),
        rf": {_V1_WHERE}: public key is not a DER SubjectPublicKeyInfo",
    ),
    "key-raw-ed25519-not-spki": (
        _set_key(1, _b64(_raw_ed25519())),
        rf": {_V2_WHERE}: public key is not a DER SubjectPublicKeyInfo",
    ),
    "key-pem-not-der": (
        _set_key(0, _b64((TRUST / "rekor.pub.prod.pem").read_bytes())),
        rf": {_V1_WHERE}: public key is not a DER SubjectPublicKeyInfo",
    ),
    "key-unknown-algorithm": (
        _set_key(1, _b64(_unknown_algorithm_spki())),
        rf": {_V2_WHERE}: unsupported public key algorithm",
    ),
    "key-unsupported-type": (
        _set_key(1, _b64(_spki(x448.X448PrivateKey.generate().public_key()))),
        rf": {_V2_WHERE}: unsupported public key type X448PublicKey",
    ),
    "log-id-bad-base64": (_bad_log_id, rf": {_V1_WHERE}\.logId\.keyId: not valid base64"),
    "missing-public-key": (_del_public_key, r": not a valid TrustedRoot: tlogs\.0\.publicKey: "),
    "bad-certificate": (
        _bad_certificate,
        r": certificateAuthorities\[1\]\.certChain\.certificates\[0\]: not a certificate",
    ),
    "base-url-without-host": (
        _bad_base_url,
        r": tlogs\[0\] \(https://\): baseUrl must be an http\(s\) URL with a host",
    ),
    "base-url-without-scheme": (
        _bad_base_url_no_scheme,
        r": tlogs\[0\] \(rekor\.sigstore\.dev\): baseUrl must be an http\(s\) URL",
    ),
    "key-curve-unsupported": (
        _secp256k1_undeclared,
        rf": {_V1_WHERE}: unsupported ECDSA curve secp256k1",
    ),
    "key-curve-not-as-declared": (
        _set_key(0, _b64(_spki(ec.generate_private_key(ec.SECP256K1()).public_key()))),
        rf": {_V1_WHERE}: public key is secp256k1 but keyDetails says PKIX_ECDSA_P256_SHA_256",
    ),
}


@pytest.mark.parametrize(("edit", "message"), BROKEN_ROOTS.values(), ids=BROKEN_ROOTS.keys())
def test_broken_trusted_root(tmp_path: Path, edit: Callable[[Any], None], message: str) -> None:
    doc = _prod_json()
    edit(doc)
    path = _write(tmp_path, doc)
    with pytest.raises(TrustRootError, match=re.escape(str(path)) + message) as info:
        load_trust_root(str(path), str(SC_V2))
    assert isinstance(info.value, ConfigError)


def test_unknown_algorithm_spki_is_really_unknown() -> None:
    with pytest.raises(UnsupportedAlgorithm):
        serialization.load_der_public_key(_unknown_algorithm_spki())


def test_missing_trusted_root(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "trusted_root.json"
    with pytest.raises(TrustRootError, match=f"cannot read trusted root {re.escape(str(path))}"):
        load_trust_root(str(path), None)


def test_missing_signing_config(tmp_path: Path) -> None:
    path = tmp_path / "signing_config.json"
    with pytest.raises(TrustRootError, match=f"cannot read signing config {re.escape(str(path))}"):
        load_trust_root(str(PROD_ROOT), str(path))


def test_trusted_root_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(
        TrustRootError, match=f"cannot read trusted root {re.escape(str(tmp_path))}"
    ):
        load_trust_root(str(tmp_path), None)


@pytest.mark.parametrize("content", [b"{not json", b"", b"\xff\xfe", b"[]", b"null"])
def test_trusted_root_not_json_object(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "trusted_root.json"
    path.write_bytes(content)
    with pytest.raises(TrustRootError, match=re.escape(f"{path}: not a valid TrustedRoot: ")):
        load_trust_root(str(path), None)


def test_trusted_root_invalid_json_says_so(tmp_path: Path) -> None:
    path = tmp_path / "trusted_root.json"
    path.write_text('{"mediaType": ', encoding="utf-8")
    with pytest.raises(TrustRootError, match=r"not a valid TrustedRoot: not JSON \(Expecting"):
        load_trust_root(str(path), None)


@pytest.mark.parametrize("content", [b"{not json", b"", b"<html>", b"[1]"])
def test_signing_config_not_json(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "signing_config.json"
    path.write_bytes(content)
    with pytest.raises(TrustRootError, match=re.escape(f"{path}: not a valid SigningConfig: ")):
        load_trust_root(str(PROD_ROOT), str(path))


def test_trusted_root_given_as_signing_config(tmp_path: Path) -> None:
    path = _write(tmp_path, _prod_json(), "signing_config.json")
    with pytest.raises(
        TrustRootError,
        match=re.escape(f"{path}: mediaType 'application/vnd.dev.sigstore.trustedroot+json;")
        + ".*is not a signing config",
    ):
        load_trust_root(str(PROD_ROOT), str(path))


def test_signing_config_wrong_media_type_only(tmp_path: Path) -> None:
    doc = json.loads(SC_V2.read_text(encoding="utf-8"))
    doc["mediaType"] = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
    path = _write(tmp_path, doc, "signing_config.json")
    with pytest.raises(
        TrustRootError, match=re.escape(str(path)) + r": mediaType '.*' is not a signing config"
    ):
        load_trust_root(str(PROD_ROOT), str(path))


def test_build_errors_name_the_sources() -> None:
    with pytest.raises(TrustRootError, match=r"^my root: not a valid TrustedRoot"):
        build_trust_root(b"{", None, source="my root")
    with pytest.raises(TrustRootError, match=r"^my config: not a valid SigningConfig"):
        build_trust_root(PROD_ROOT.read_bytes(), b"{", signing_config_source="my config")
