"""Every entry kind, v1 and v2, into one signing record: real fixtures checked against values
taken from the fixtures independently (the bundle's own certificate, message digest and DSSE
envelope, never the log body the parser reads), plus every other kind built here."""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from monitor.entries import parse_entry
from monitor.entries.parse import with_chain_status
from monitor.entries.record import (
    CertificateSigner,
    ChainStatus,
    Digest,
    KeySigner,
    MalformedEntry,
    SanType,
    SigningRecord,
    StatementSource,
)
from monitor.entries.statement import Envelope, pae
from monitor.trust import load_trust_root
from tests.conftest import FIXTURES

KEYS = FIXTURES / "keys"
BUNDLE_DIR = FIXTURES / "v1-bundles"
BUNDLES = sorted(p for d in ("v1-bundles", "v2") for p in (FIXTURES / d).glob("*.sigstore.json"))


def _doc(path: Path) -> Any:
    return json.loads(path.read_text())


def _tle(doc: Any) -> Any:
    return doc["verificationMaterial"]["tlogEntries"][0]


def _bundle_cert_der(doc: Any) -> bytes | None:
    vm = doc["verificationMaterial"]
    if "certificate" in vm:
        return base64.b64decode(vm["certificate"]["rawBytes"])
    if "x509CertificateChain" in vm:
        return base64.b64decode(vm["x509CertificateChain"]["certificates"][0]["rawBytes"])
    return None


def _envelope(doc: Any) -> Envelope | None:
    env = doc.get("dsseEnvelope")
    if env is None:
        return None
    return Envelope(env["payloadType"], base64.b64decode(env["payload"]))


def _record(path: Path, *, with_envelope: bool = True) -> SigningRecord:
    doc = _doc(path)
    tle = _tle(doc)
    result = parse_entry(
        base64.b64decode(tle["canonicalizedBody"]),
        log="test",
        index=int(tle["logIndex"]),
        envelope=_envelope(doc) if with_envelope else None,
    )
    assert isinstance(result, SigningRecord), result
    return result


@pytest.mark.parametrize("path", BUNDLES, ids=lambda p: p.name)
def test_bundle_entry_matches_the_bundle(path: Path) -> None:
    doc = _doc(path)
    record = _record(path)
    kv = _tle(doc)["kindVersion"]
    assert (record.kind, record.api_version) == (kv["kind"], kv["version"])
    assert record.known
    assert record.notes == () or "PAE" in record.notes[0]
    # the signer in the log body is the bundle's own certificate
    cert_der = _bundle_cert_der(doc)
    signer = record.signers[0]
    if cert_der is not None:
        if isinstance(signer, CertificateSigner):
            assert signer.fingerprint == "sha256:" + hashlib.sha256(cert_der).hexdigest()
        else:  # one real v2 entry logs the bare key of the bundle's certificate
            spki = (
                x509.load_der_x509_certificate(cert_der)
                .public_key()
                .public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
            assert signer.fingerprint == "sha256:" + hashlib.sha256(spki).hexdigest()
    # hashedrekord: the logged digest is the bundle's message digest (or the DSSE PAE digest)
    ms = doc.get("messageSignature")
    if ms is not None and "messageDigest" in ms:
        want = base64.b64decode(ms["messageDigest"]["digest"]).hex()
        assert [d.value for d in record.artifact_digests] == [want]
    # DSSE: subjects are the envelope statement's, and the payload hash is its SHA-256
    env = doc.get("dsseEnvelope")
    if env is not None:
        payload = base64.b64decode(env["payload"])
        assert record.payload_hash == Digest("sha256", hashlib.sha256(payload).hexdigest())
        if env["payloadType"] == "application/vnd.in-toto+json":
            statement = json.loads(payload)
            want_subjects = [(s["name"], sorted(s["digest"].items())) for s in statement["subject"]]
            got = [
                (s.name, sorted((d.algorithm, d.value) for d in s.digests)) for s in record.subjects
            ]
            assert got == want_subjects
            assert record.subjects_source is StatementSource.ENVELOPE
            assert record.payload_type == "application/vnd.in-toto+json"


# Identities from tests/fixtures/SOURCES.md (written when the fixtures were collected).
IDENTITIES = {
    "conformance.happy-path-v0.3.hashedrekord.sigstore.json": (
        SanType.URI,
        "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
        ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main",
        "https://token.actions.githubusercontent.com",
    ),
    "sigstore-js.bundleV03-intoto.sigstore.json": (
        SanType.EMAIL,
        "brian@dehamer.com",
        "https://github.com/login/oauth",
    ),
    "cosign.oci-attestation.dsse.sigstore.json": (
        SanType.EMAIL,
        "cody@soyland.com",
        "https://github.com/login/oauth",
    ),
    "gh-cli.custom-issuer.dsse.sigstore.json": (
        SanType.URI,
        None,
        "https://token.actions.githubusercontent.com/hammer-time",
    ),
    "sigstore-python.bundle_v3_github.whl.hashedrekord.sigstore.json": (
        SanType.URI,
        "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2",
        "https://token.actions.githubusercontent.com",
    ),
    "sigstore-java.PKIX_ECDSA_P384_SHA_384.hashedrekord.sigstore.json": (
        SanType.EMAIL,
        "untrusted-sa@sigstore-conformance.iam.gserviceaccount.com",
        "https://accounts.google.com",
    ),
    "sigstore-go.sigstore.js-2.0.0-provenance.intoto.sigstore.json": (
        SanType.URI,
        "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main",
        "https://token.actions.githubusercontent.com",
    ),
    "sigstore-js.TLOG_DSSEV002.prod.dsse-v002.sigstore.json": (
        SanType.EMAIL,
        "brian@dehamer.com",
        "https://github.com/login/oauth",
    ),
}


@pytest.mark.parametrize("name", sorted(IDENTITIES))
def test_identities(name: str) -> None:
    san_type, san, issuer = IDENTITIES[name]
    path = next(p for p in BUNDLES if p.name == name)
    signer = _record(path).signers[0]
    assert isinstance(signer, CertificateSigner)
    assert signer.sans[0].type is san_type
    if san is not None:
        assert signer.sans[0].value == san
    assert signer.issuer == issuer


def test_reusable_workflow_extensions() -> None:
    path = FIXTURES / "v1-bundles" / "gh-cli.reusable-workflow-attestation.dsse.sigstore.json"
    signer = _record(path).signers[0]
    assert isinstance(signer, CertificateSigner)
    assert signer.sans[0].value.startswith(
        "https://github.com/github/artifact-attestations-workflows/.github/workflows/attest.yml@"
    )
    assert signer.extension("build-signer-uri") == signer.sans[0].value
    config = signer.extension("build-config-uri")
    assert config is not None
    assert config.startswith("https://github.com/malancas/attest-demo/")
    assert signer.extension("source-repository-owner-uri") == "https://github.com/malancas"
    assert signer.extension("runner-environment") == "github-hosted"
    names = {e.name for e in signer.extensions if e.name}
    assert {f"source-repository-{x}" for x in ("uri", "digest", "ref")} <= names
    assert signer.extension("1.3.6.1.4.1.11129.2.4.2") is not None  # unknown by OID


def test_managed_key_fingerprint() -> None:
    path = FIXTURES / "v1-bundles" / "conformance.managed-key.hashedrekord-pubkey.sigstore.json"
    signer = _record(path).signers[0]
    assert isinstance(signer, KeySigner)
    assert signer.key_type == "ecdsa"
    assert signer.curve == "P-256"
    # SOURCES.md, and `openssl pkey -pubin -outform DER | sha256sum` of the bundle's key.pub
    der = serialization.load_pem_public_key(
        (FIXTURES / "v1-bundles" / "conformance.managed-key.key.pub").read_bytes()
    ).public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert signer.fingerprint == "sha256:" + hashlib.sha256(der).hexdigest()
    assert signer.fingerprint.endswith(
        "4cb32c4837c6dda8cfb1681efb3fef5f94ffce5b979e6bdb9139302c857af139"
    )


def test_v2_dsse_as_hashedrekord_recognised_only_with_the_envelope() -> None:
    path = (
        FIXTURES / "v2" / "sigstore-java.bundle.dsse.rekor-v2.prod.hashedrekord-v002.sigstore.json"
    )
    doc = _doc(path)
    env = doc["dsseEnvelope"]
    payload = base64.b64decode(env["payload"])
    pae_digest = hashlib.sha256(pae(env["payloadType"], payload)).hexdigest()
    # alone, the entry is a plain digest signature: the PAE digest looks like an artifact
    alone = _record(path, with_envelope=False)
    assert alone.artifact_digests == (Digest("sha256", pae_digest),)
    assert alone.subjects == ()
    # with the bundle's envelope it is DSSE, with the statement's subjects
    full = _record(path)
    assert full.artifact_digests == ()
    assert full.payload_hash == Digest("sha256", hashlib.sha256(payload).hexdigest())
    assert [s.name for s in full.subjects] == ["a.txt"]
    assert any(pae_digest in n for n in full.notes)


def test_v2_hashedrekord_with_public_key() -> None:
    doc = _doc(FIXTURES / "v2" / "sigstore-js.rekor-v2-create-response.prod.tle.json")
    record = parse_entry(base64.b64decode(doc["canonicalizedBody"]), log="v2", index=412114)
    assert isinstance(record, SigningRecord)
    (signer,) = record.signers
    assert isinstance(signer, KeySigner)
    body = json.loads(base64.b64decode(doc["canonicalizedBody"]))
    spki = base64.b64decode(
        body["spec"]["hashedRekordV002"]["signature"]["verifier"]["publicKey"]["rawBytes"]
    )
    assert signer.fingerprint == "sha256:" + hashlib.sha256(spki).hexdigest()


def test_v1_logentry_jar() -> None:
    doc = _doc(FIXTURES / "v1-api" / "logentry.jar.prod.json")
    (entry,) = doc.values()
    body = base64.b64decode(entry["body"])
    record = parse_entry(body, log="rekor", index=entry["logIndex"])
    assert isinstance(record, SigningRecord)
    assert (record.kind, record.api_version) == ("jar", "0.0.1")
    spec = json.loads(body)["spec"]
    assert record.artifact_digests == (Digest("sha256", spec["archive"]["hash"]["value"]),)
    pem = base64.b64decode(spec["signature"]["publicKey"]["content"]).decode()
    der = ssl.PEM_cert_to_DER_cert(pem)
    signer = record.signers[0]
    assert isinstance(signer, CertificateSigner)
    assert signer.fingerprint == "sha256:" + hashlib.sha256(der).hexdigest()


def test_intoto_attestation_data_gives_subjects_only_when_it_matches() -> None:
    path = FIXTURES / "v1-bundles" / "gh-cli.sigstore-js-2.1.0.intoto.sigstore.json"
    doc = _doc(path)
    body = base64.b64decode(_tle(doc)["canonicalizedBody"])
    statement = base64.b64decode(doc["dsseEnvelope"]["payload"])
    record = parse_entry(body, log="r", index=1, attestation=statement)
    assert isinstance(record, SigningRecord)
    assert record.subjects_source is StatementSource.ATTESTATION
    assert [s.name for s in record.subjects] == ["pkg:npm/sigstore@2.1.0"]
    forged = parse_entry(body, log="r", index=1, attestation=statement.replace(b"2.1.0", b"9.9.9"))
    assert isinstance(forged, SigningRecord)
    assert forged.subjects == ()
    assert forged.notes == ("attestation does not match the payload hash: ignored",)


def test_chain_status_marks_untrusted_certificates() -> None:
    trust = load_trust_root()
    record = _record(
        FIXTURES / "v1-bundles" / "conformance.happy-path-v0.3.hashedrekord.sigstore.json"
    )
    checked = with_chain_status(record, trust.certificate_authorities)
    assert isinstance(checked, SigningRecord)
    signer = checked.signers[0]
    assert isinstance(signer, CertificateSigner)
    assert signer.chain is ChainStatus.VERIFIED
    assert isinstance(record.signers[0], CertificateSigner)
    assert record.signers[0].chain is ChainStatus.UNCHECKED
    # a look-alike certificate that copies the Fulcio issuer name is recorded, marked
    fake = _self_signed_pem("CN=sigstore-intermediate,O=sigstore.dev")
    body = _hashedrekord_body(fake)
    spoof = with_chain_status(parse_entry(body, log="r", index=2), trust.certificate_authorities)
    assert isinstance(spoof, SigningRecord)
    signer = spoof.signers[0]
    assert isinstance(signer, CertificateSigner)
    assert signer.chain is ChainStatus.UNTRUSTED


# --- kinds the fixtures do not cover, built here with real keys -----------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _jcs(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _self_signed_pem(subject: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name.from_rfc4514_string(subject)
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(minutes=10))
        .add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name("mallory@example.invalid")]), True
        )
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


SHA = "a" * 64


def _hashedrekord_body(pem: bytes) -> bytes:
    return _jcs(
        {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": SHA}},
                "signature": {"content": "AAAA", "publicKey": {"content": _b64(pem)}},
            },
        }
    )


def _body(kind: str, version: str, spec: Any) -> bytes:
    return _jcs({"apiVersion": version, "kind": kind, "spec": spec})


def _parse(body: bytes) -> SigningRecord:
    result = parse_entry(body, log="built", index=7, integrated_time=1700000000)
    assert isinstance(result, SigningRecord), result
    assert result.known
    return result


HASH = {"algorithm": "sha256", "value": SHA}
_P384 = (KEYS / "pkix_ecdsa_p384.pem").read_bytes()
_BAD_CERT = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize(
    ("fmt", "key_file", "key_type", "fingerprint"),
    [
        ("pgp", "pgp_rsa3072.asc", "pgp", "aebee0f1bbfffd1e0aec5771d007d593c14f42f2"),
        ("ssh", "ssh_ed25519.pub", "ssh", "SHA256:M5cJUcd4RMqDeAqGQiZle+h9vJrQwthP868YZgApcB8"),
        ("minisign", "minisign.pub", "minisign", "2CEE1576D9842408"),
        ("x509", "pkix_rsa3072.pem", "rsa", None),
    ],
)
def test_rekord_formats(fmt: str, key_file: str, key_type: str, fingerprint: str | None) -> None:
    key = (KEYS / key_file).read_bytes()
    spec = {
        "data": {"hash": HASH},
        "signature": {"format": fmt, "content": "AAAA", "publicKey": {"content": _b64(key)}},
    }
    record = _parse(_body("rekord", "0.0.1", spec))
    (signer,) = record.signers
    assert isinstance(signer, KeySigner)
    assert signer.key_type == key_type
    if fingerprint is not None:
        assert signer.fingerprint == fingerprint
    assert record.artifact_digests == (Digest("sha256", SHA),)


def test_rekord_with_certificate() -> None:
    pem = _self_signed_pem("CN=someone")
    spec = {
        "data": {"hash": HASH},
        "signature": {"format": "x509", "content": "AAAA", "publicKey": {"content": _b64(pem)}},
    }
    signer = _parse(_body("rekord", "0.0.1", spec)).signers[0]
    assert isinstance(signer, CertificateSigner)
    assert signer.sans[0].value == "mallory@example.invalid"


def test_package_kinds() -> None:
    pgp = _b64((KEYS / "pgp_ed25519.asc").read_bytes())
    rsa = _b64((KEYS / "pkix_rsa2048.der").read_bytes())
    rpm = _parse(_body("rpm", "0.0.1", {"package": {"hash": HASH}, "publicKey": {"content": pgp}}))
    helm = _parse(_body("helm", "0.0.1", {"chart": {"hash": HASH}, "publicKey": {"content": pgp}}))
    alpine = _parse(
        _body("alpine", "0.0.1", {"package": {"hash": HASH}, "publicKey": {"content": rsa}})
    )
    for record in (rpm, helm):
        signer = record.signers[0]
        assert isinstance(signer, KeySigner)
        assert signer.fingerprint == "e544ca6535155149bbdce48e86bc261e72b43a46"
    assert isinstance(alpine.signers[0], KeySigner)
    assert alpine.signers[0].key_type == "rsa"
    assert {r.artifact_digests for r in (rpm, helm, alpine)} == {(Digest("sha256", SHA),)}


def test_cose_and_intoto_001() -> None:
    key = _b64((KEYS / "pkix_ecdsa_p384.pem").read_bytes())
    cose = _parse(
        _body(
            "cose",
            "0.0.1",
            {"data": {"payloadHash": HASH, "envelopeHash": HASH}, "publicKey": key},
        )
    )
    assert cose.payload_hash == Digest("sha256", SHA)
    intoto = _parse(
        _body("intoto", "0.0.1", {"content": {"hash": HASH, "payloadHash": HASH}, "publicKey": key})
    )
    assert intoto.envelope_hash == Digest("sha256", SHA)
    assert isinstance(intoto.signers[0], KeySigner)
    assert intoto.signers[0].curve == "P-384"


def test_tuf() -> None:
    spec = {
        "spec_version": "1.0",
        "metadata": {"content": {"signed": {"_type": "timestamp", "version": 42}}},
        "root": {
            "content": {
                "signed": {
                    "_type": "root",
                    "keys": {"ab" * 32: {"keytype": "ed25519", "keyval": {"public": "00"}}},
                }
            }
        },
    }
    record = _parse(_body("tuf", "0.0.1", spec))
    (signer,) = record.signers
    assert isinstance(signer, KeySigner)
    assert signer.fingerprint == "ab" * 32
    assert record.notes == ("TUF timestamp version 42",)


def test_rfc3161_from_a_real_timestamp_token() -> None:
    doc = _doc(BUNDLE_DIR / "conformance.managed-key.hashedrekord-pubkey.sigstore.json")
    tvd = doc["verificationMaterial"]["timestampVerificationData"]
    # a bundle's signedTimestamp is the TSA's whole TimeStampResp (status, token)
    resp = base64.b64decode(tvd["rfc3161Timestamps"][0]["signedTimestamp"])
    record = _parse(_body("rfc3161", "0.0.1", {"tsr": {"content": _b64(resp)}}))
    (digest,) = record.artifact_digests
    assert digest.algorithm in {"sha256", "sha384", "sha512"}
    # the timestamped digest is the hash of the bundle's signature, as Sigstore clients do
    sig = base64.b64decode(doc["messageSignature"]["signature"])
    assert digest.value == hashlib.new(digest.algorithm, sig).hexdigest()
    # Sigstore's TSA sends no certificates: the signer is named by issuer and serial
    (signer,) = record.signers
    assert isinstance(signer, KeySigner)
    assert signer.fingerprint == "serial:3a13542f0c9061eebcc1432fcb8a8e8b2a238b0c"
    assert ("issuer", "CN=sigstore-tsa-selfsigned,O=sigstore.dev") in signer.details


# --- unknown and malformed -------------------------------------------------------------------


def test_unknown_kind_and_version_are_recorded() -> None:
    for kind, version in (("newkind", "0.0.1"), ("hashedrekord", "9.9.9")):
        body = _body(kind, version, {"anything": [1, 2, 3]})
        record = parse_entry(body, log="l", index=3)
        assert isinstance(record, SigningRecord)
        assert not record.known
        assert (record.kind, record.api_version) == (kind, version)
        assert record.raw_body == body


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "body is not JSON"),
        (b"\xff", "body is not UTF-8"),
        (b"[]", "body: expected an object"),
        (b'{"kind":"x"}', "body.apiVersion: missing"),
        (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
        (b" " * (5 << 20), "more than"),
        (
            _body("hashedrekord", "0.0.1", {"data": {"hash": HASH}}),
            "body.spec.signature: missing",
        ),
        (
            _body(
                "hashedrekord",
                "0.0.1",
                {
                    "data": {"hash": {"algorithm": "sha256", "value": "xyz"}},
                    "signature": {"publicKey": {"content": _b64(_P384)}},
                },
            ),
            "not a 64-digit hex sha256 digest",
        ),
        (
            _body(
                "hashedrekord",
                "0.0.1",
                {"data": {"hash": HASH}, "signature": {"publicKey": {"content": "!!"}}},
            ),
            "body.spec.signature.publicKey.content: not valid base64",
        ),
        (
            _body(
                "hashedrekord",
                "0.0.1",
                {
                    "data": {"hash": HASH},
                    "signature": {
                        "publicKey": {
                            "content": _b64(
                                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
                            )
                        }
                    },
                },
            ),
            "body.spec.signature.publicKey.content: certificate",
        ),
        (_body("dsse", "0.0.1", {"signatures": []}), "no signatures"),
        (
            _body("rekord", "0.0.1", {"data": {}, "signature": {"format": "gpg"}}),
            "unknown signature format 'gpg'",
        ),
    ],
)
def test_malformed_bodies(body: bytes, reason: str) -> None:
    result = parse_entry(body, log="l", index=9)
    assert isinstance(result, MalformedEntry)
    assert reason in result.reason
    assert result.raw_body == body
    assert not result.reason.startswith("internal")
