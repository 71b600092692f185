"""The simulator's entry factory and CA: seeded, varied, and parseable by our own parser."""

from __future__ import annotations

import base64
import collections
import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from monitor.core.errors import ConfigError
from monitor.entries import (
    CertificateSigner,
    ChainStatus,
    Digest,
    KeySigner,
    SigningRecord,
    Subject,
    parse_entry,
)
from monitor.entries.parse import with_chain_status
from monitor.entries.record import SanType, StatementSource
from monitor.entries.statement import Envelope
from monitor.entries.x509 import FULCIO_EXTENSIONS, check_chain, parse_certificate
from monitor.sim.ca import GITHUB_ACTIONS_ISSUER, GitHubWorkflow, SimCA, derive_ec_key
from monitor.sim.factory import (
    INTOTO,
    V1_MIX,
    V2_MIX,
    EmailIdentity,
    EntryFactory,
    PlantDigest,
    PlantIdentity,
    PlantImage,
    PlantKey,
    PoolCert,
    PoolSize,
    SimEntry,
    UsernameIdentity,
    cert_statement,
)
from monitor.sim.keys import SigningKey
from monitor.sim.plans import plan_from_json
from monitor.trust import CertificateAuthority, build_trust_root
from tests.conftest import FIXTURES

SEED = 424242
V1_COUNT = 3000
V2_COUNT = 1000
SMALL = PoolSize(github_repos=4, refs_per_repo=2, runs_per_ref=2, emails=2, usernames=1)
FULCIO = "1.3.6.1.4.1.57264.1"
# .1.1-.1.6 and .1.8-.1.22: every extension a GitHub Actions certificate carries
GITHUB_EXTENSIONS = [*range(1, 7), *range(8, 23)]
WATCHED = GitHubWorkflow(
    owner="watched-org",
    repo="payments",
    workflow_file="release.yml",
    ref="refs/tags/v9.1.0",
    sha="1f" * 20,
    workflow_name="Release",
    trigger="release",
    repository_id="987654321",
    owner_id="12345678",
    run_id="13579246801",
    runner_environment="self-hosted",
    visibility="private",
    environment="production",
)


@pytest.fixture(scope="module")
def ca() -> SimCA:
    return SimCA.create(SEED)


@pytest.fixture(scope="module")
def factory(ca: SimCA) -> EntryFactory:
    return EntryFactory(SEED, ca)


@pytest.fixture(scope="module")
def cas(ca: SimCA) -> tuple[CertificateAuthority, ...]:
    doc = {
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [],
        "certificateAuthorities": [ca.trust_root_ca_json()],
    }
    return build_trust_root(json.dumps(doc).encode(), None).certificate_authorities


@pytest.fixture(scope="module")
def v1_entries(factory: EntryFactory) -> list[SimEntry]:
    return [factory.v1_entry(i) for i in range(V1_COUNT)]


@pytest.fixture(scope="module")
def v2_entries(factory: EntryFactory) -> list[SimEntry]:
    return [factory.v2_entry(i) for i in range(V2_COUNT)]


def group(entry: SimEntry) -> str:
    return entry.description.split(": ", 1)[0]


def record(entry: SimEntry, index: int = 0) -> SigningRecord:
    result = parse_entry(entry.body, log="sim", index=index, attestation=entry.attestation)
    assert isinstance(result, SigningRecord), (entry.description, result)
    assert result.known
    assert (result.kind, result.api_version) == (entry.kind, entry.api_version)
    return result


def cert_signer(rec: SigningRecord) -> CertificateSigner:
    assert len(rec.signers) == 1
    signer = rec.signers[0]
    assert isinstance(signer, CertificateSigner)
    return signer


def key_signer(rec: SigningRecord) -> KeySigner:
    assert len(rec.signers) == 1
    signer = rec.signers[0]
    assert isinstance(signer, KeySigner)
    return signer


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- determinism -------------------------------------------------------------------------------


def test_same_seed_gives_the_same_ca_and_entries(factory: EntryFactory, ca: SimCA) -> None:
    again = EntryFactory(SEED, SimCA.create(SEED))
    assert again.ca.chain_der() == ca.chain_der()
    for i in range(300):
        assert again.v1_entry(i) == factory.v1_entry(i)
        assert again.v2_entry(i) == factory.v2_entry(i)


def test_different_seed_gives_different_ca_and_entries(ca: SimCA) -> None:
    other_ca = SimCA.create(SEED + 1)
    other = EntryFactory(SEED + 1, other_ca, pool=SMALL)
    mine = EntryFactory(SEED, ca, pool=SMALL)
    assert set(other_ca.chain_der()).isdisjoint(ca.chain_der())
    assert all(other.v1_entry(i).body != mine.v1_entry(i).body for i in range(200))
    assert all(other.v2_entry(i).body != mine.v2_entry(i).body for i in range(200))


_CHILD = """
import hashlib, sys
from monitor.sim.ca import SimCA
from monitor.sim.factory import EntryFactory, PoolSize
f = EntryFactory({seed}, SimCA.create({seed}), pool={pool!r})
h = hashlib.sha256()
for i in range(200):
    h.update(f.v1_entry(i).body + (f.v1_entry(i).attestation or b"") + f.v2_entry(i).body)
sys.stdout.write(h.hexdigest())
"""


def test_same_seed_gives_the_same_entries_in_another_process(ca: SimCA) -> None:
    mine = EntryFactory(SEED, ca, pool=SMALL)
    h = hashlib.sha256()
    for i in range(200):
        e1, e2 = mine.v1_entry(i), mine.v2_entry(i)
        h.update(e1.body + (e1.attestation or b"") + e2.body)
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    child = subprocess.run(
        [sys.executable, "-c", _CHILD.format(seed=SEED, pool=SMALL)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=FIXTURES.parent.parent,
    )
    assert child.stdout == h.hexdigest()


# --- every body parses, canonical, in the intended mix ----------------------------------------


def test_v1_entries_parse_into_signing_records(
    factory: EntryFactory, v1_entries: list[SimEntry]
) -> None:
    for i, entry in enumerate(v1_entries):
        rec = record(entry, i)
        digest = Digest("sha256", factory.artifact_digest(i))
        kind = group(entry)
        if kind.endswith(("/github", "/email", "/username")):
            signer = cert_signer(rec)
            assert signer.sans, entry.description
            assert signer.sans[0].value in entry.description
        else:
            key_signer(rec)
        if entry.kind in ("hashedrekord", "rekord"):
            assert rec.artifact_digests == (digest,)
            assert entry.attestation is None
        elif entry.kind == "dsse":
            assert rec.payload_hash is not None
            assert rec.envelope_hash is not None
            assert entry.attestation is None
            assert rec.subjects == ()  # Rekor v1 keeps no DSSE payload
        else:
            assert entry.kind == "intoto"
            assert entry.attestation is not None
            assert rec.payload_hash == Digest("sha256", sha256(entry.attestation))
            assert rec.payload_type == INTOTO
            assert rec.subjects_source is StatementSource.ATTESTATION
            (subject,) = rec.subjects
            assert subject.name.startswith("ghcr.io/")
            assert subject.digests == (digest,)
            assert not rec.notes


def test_v2_entries_parse_into_signing_records(
    factory: EntryFactory, v2_entries: list[SimEntry]
) -> None:
    for i, entry in enumerate(v2_entries):
        rec = record(entry, i)
        assert entry.attestation is None
        digest = Digest("sha256", factory.artifact_digest(i))
        kind = group(entry)
        if kind == "hashedrekord/key":
            assert key_signer(rec).key_type in ("ecdsa", "rsa")
        else:
            assert cert_signer(rec).sans
        if kind == "dsse/github":
            assert rec.payload_hash is not None
            assert rec.artifact_digests == ()
        elif kind == "hashedrekord/dsse-pae":
            assert rec.artifact_digests != (digest,)  # the PAE's digest: no artifact's
        else:
            assert rec.artifact_digests == (digest,)


def test_v2_dsse_as_hashedrekord_is_over_the_pae(factory: EntryFactory) -> None:
    """With the envelope beside it, the monitor recovers the subjects, as from a bundle."""
    index = next(
        i for i in range(V2_COUNT) if group(factory.v2_entry(i)) == "hashedrekord/dsse-pae"
    )
    entry = factory.v2_entry(index)
    signer = cert_signer(record(entry, index))
    cert = next(c for c in factory.github_certs if c.fingerprint == signer.fingerprint)
    statement = cert_statement(cert, cert.subject_name, factory.artifact_digest(index))
    rec = parse_entry(entry.body, log="sim", index=index, envelope=Envelope(INTOTO, statement))
    assert isinstance(rec, SigningRecord)
    assert rec.subjects_source is StatementSource.ENVELOPE
    assert rec.subjects == (
        Subject(cert.subject_name, (Digest("sha256", factory.artifact_digest(index)),)),
    )


def test_bodies_are_canonical_json(v1_entries: list[SimEntry], v2_entries: list[SimEntry]) -> None:
    for entry in v1_entries + v2_entries:
        doc = json.loads(entry.body)
        canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert canonical.encode() == entry.body, entry.description


def test_body_shapes_match_rekor(v1_entries: list[SimEntry], v2_entries: list[SimEntry]) -> None:
    def spec(kind: str, entries: list[SimEntry]) -> Any:
        return json.loads(next(e for e in entries if e.kind == kind).body)["spec"]

    envelope_sig = spec("intoto", v1_entries)["content"]["envelope"]["signatures"][0]
    assert set(envelope_sig) == {"publicKey", "sig"}
    # intoto 0.0.2: "sig" is base64 of the envelope's base64 signature text
    der = base64.b64decode(base64.b64decode(envelope_sig["sig"], validate=True), validate=True)
    assert der[0] == 0x30
    assert len(der) == der[1] + 2 <= 72  # a DER ECDSA P-256 signature
    assert set(spec("dsse", v1_entries)) == {"envelopeHash", "payloadHash", "signatures"}
    hashed = spec("hashedrekord", v2_entries)["hashedRekordV002"]
    assert hashed["data"]["algorithm"] == "SHA2_256"
    assert len(base64.b64decode(hashed["data"]["digest"])) == 32
    assert hashed["signature"]["verifier"]["keyDetails"] == "PKIX_ECDSA_P256_SHA_256"
    dsse = spec("dsse", v2_entries)["dsseV002"]
    assert set(dsse) == {"payloadHash", "signatures"}
    assert dsse["payloadHash"]["algorithm"] == "SHA2_256"


def test_the_mix_is_close_to_its_targets(
    v1_entries: list[SimEntry], v2_entries: list[SimEntry]
) -> None:
    for entries, mix in ((v1_entries, V1_MIX), (v2_entries, V2_MIX)):
        counts = collections.Counter(group(e) for e in entries)
        assert set(counts) == {name for name, _ in mix}
        for name, share in mix:
            assert abs(counts[name] / len(entries) - share / 10_000) < 0.025, (name, counts)
    kinds = collections.Counter(e.kind for e in v1_entries)
    assert abs(kinds["hashedrekord"] / V1_COUNT - 0.73) < 0.03
    assert abs(kinds["dsse"] / V1_COUNT - 0.10) < 0.02
    assert abs(kinds["intoto"] / V1_COUNT - 0.10) < 0.02
    assert abs(kinds["rekord"] / V1_COUNT - 0.05) < 0.015
    formats = collections.Counter(
        json.loads(e.body)["spec"]["signature"]["format"] for e in v1_entries if e.kind == "rekord"
    )
    assert set(formats) == {"x509", "ssh", "minisign"}
    key_types = {key_signer(record(e)).key_type for e in v1_entries if group(e).endswith("/key")}
    assert key_types == {"ecdsa", "rsa", "ed25519", "ssh", "minisign"}


def test_signers_vary_but_some_are_busy(v1_entries: list[SimEntry]) -> None:
    github = [e.description for e in v1_entries if group(e) == "hashedrekord/github"]
    counts = collections.Counter(github)
    assert len(counts) > 200  # many identities
    assert counts.most_common(1)[0][1] >= 10  # and a few busy ones


# --- certificates -------------------------------------------------------------------------------


def workflow(cert: PoolCert) -> GitHubWorkflow:
    assert isinstance(cert.identity, GitHubWorkflow)
    return cert.identity


def pool_cert(factory: EntryFactory, signer: CertificateSigner) -> PoolCert:
    return next(c for c in factory.certificates if c.fingerprint == signer.fingerprint)


@pytest.mark.slow
def test_github_certificates_carry_every_fulcio_extension(
    factory: EntryFactory, v1_entries: list[SimEntry]
) -> None:
    seen = 0
    for entry in v1_entries:
        if group(entry) not in ("hashedrekord/github", "dsse/github", "intoto/github"):
            continue
        signer = cert_signer(record(entry))
        wf = workflow(pool_cert(factory, signer))
        values = wf.fulcio_extensions()
        assert set(GITHUB_EXTENSIONS) <= set(values)
        for number, value in values.items():
            assert signer.extension(FULCIO_EXTENSIONS[f"{FULCIO}.{number}"]) == value
        assert signer.sans[0].type is SanType.URI
        assert signer.sans[0].value == wf.san_uri
        assert signer.issuer == GITHUB_ACTIONS_ISSUER
        repo_uri = f"https://github.com/{wf.owner}/{wf.repo}"
        assert signer.extension("source-repository-uri") == repo_uri
        assert signer.extension("source-repository-owner-uri") == f"https://github.com/{wf.owner}"
        assert signer.extension("github-workflow-repository") == f"{wf.owner}/{wf.repo}"
        assert signer.extension("source-repository-ref") == wf.ref
        assert signer.extension("build-config-uri") == (
            f"{repo_uri}/.github/workflows/{wf.workflow_file}@{wf.ref}"
        )
        assert signer.extension("run-invocation-uri") == (
            f"{repo_uri}/actions/runs/{wf.run_id}/attempts/{wf.run_attempt}"
        )
        assert signer.extension("runner-environment") in ("github-hosted", "self-hosted")
        assert signer.not_after - signer.not_before == timedelta(minutes=10)
        seen += 1
    assert seen > 1500


def test_reusable_workflows_sign_as_the_called_workflow(factory: EntryFactory) -> None:
    reusable = [c for c in factory.github_certs if workflow(c).signer_workflow]
    assert reusable
    signer = parse_certificate(reusable[0].der)
    wf = workflow(reusable[0])
    assert signer.sans[0].value == f"https://github.com/{wf.signer_workflow}"
    assert signer.extension("build-signer-uri") == signer.sans[0].value
    assert signer.extension("build-config-uri") == wf.build_config_uri != signer.sans[0].value


def test_fulcio_extension_encodings_and_leaf_profile(factory: EntryFactory) -> None:
    cert = x509.load_der_x509_certificate(factory.github_certs[0].der)
    exts = {e.oid.dotted_string: e for e in cert.extensions}
    issuer = GITHUB_ACTIONS_ISSUER.encode()
    raw_v1 = exts[f"{FULCIO}.1"].value
    raw_v2 = exts[f"{FULCIO}.8"].value
    assert isinstance(raw_v1, x509.UnrecognizedExtension)
    assert isinstance(raw_v2, x509.UnrecognizedExtension)
    assert raw_v1.value == issuer  # .1.1-.1.6: the raw string
    assert raw_v2.value == bytes((0x0C, len(issuer))) + issuer  # .1.8 on: a DER UTF8String
    assert cert.subject == x509.Name([])
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert not usage.value.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CODE_SIGNING]
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical
    assert cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = factory.ca.intermediate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert aki.key_identifier == ski.value.digest
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert key.curve.name == "secp256r1"


def test_email_and_username_certificates(factory: EntryFactory) -> None:
    for pool, san_type in (
        (factory.email_certs, SanType.EMAIL),
        (factory.username_certs, SanType.USERNAME),
    ):
        for cert in pool[:5]:
            signer = parse_certificate(cert.der)
            identity = cert.identity
            assert isinstance(identity, EmailIdentity | UsernameIdentity)
            expected = identity.email if isinstance(identity, EmailIdentity) else identity.username
            assert [(s.type, s.value) for s in signer.sans] == [(san_type, expected)]
            assert signer.issuer == identity.issuer
            assert signer.extension("issuer-v1") == identity.issuer
    issuers = {parse_certificate(c.der).issuer for c in factory.email_certs}
    assert {"https://github.com/login/oauth", "https://accounts.google.com"} <= issuers
    assert all("!" in c.label for c in factory.username_certs)


def test_certificates_chain_to_the_trust_root(
    factory: EntryFactory, cas: tuple[CertificateAuthority, ...]
) -> None:
    for cert in factory.certificates[::5]:
        assert check_chain(parse_certificate(cert.der), cas) is ChainStatus.VERIFIED
    rec = with_chain_status(record(factory.v1_entry(0)), cas)
    assert isinstance(rec, SigningRecord)
    assert all(
        s.chain is ChainStatus.VERIFIED for s in rec.signers if isinstance(s, CertificateSigner)
    )


def test_another_seeds_certificates_do_not_chain(cas: tuple[CertificateAuthority, ...]) -> None:
    other = SimCA.create(SEED + 7)
    key = derive_ec_key(1, "leaf", ec.SECP256R1()).public_key()
    when = other.not_before + timedelta(days=400)
    cert = other.issue_email(key, "eve@example.com", "https://accounts.google.com", not_before=when)
    signer = parse_certificate(cert.public_bytes(serialization.Encoding.DER))
    assert check_chain(signer, cas) is ChainStatus.UNTRUSTED


def test_trust_root_element_has_the_trusted_root_shape(ca: SimCA) -> None:
    element = ca.trust_root_ca_json()
    prod = json.loads((FIXTURES / "trust" / "trusted_root.prod.json").read_text())
    prod_element = prod["certificateAuthorities"][-1]
    assert set(element) == set(prod_element)
    assert set(element["subject"]) == set(prod_element["subject"])
    assert element["validFor"] == {"start": "2024-01-01T00:00:00Z"}
    certs = element["certChain"]["certificates"]
    assert [set(c) for c in certs] == [{"rawBytes"}, {"rawBytes"}]
    inter = x509.load_der_x509_certificate(ca.chain_der()[0])
    root = x509.load_der_x509_certificate(ca.chain_der()[1])
    assert inter.subject.rfc4514_string() == "CN=sim-fulcio-intermediate,O=tlog-monitor-sim"
    assert root.subject.rfc4514_string() == "CN=sim-fulcio-root,O=tlog-monitor-sim"
    inter.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)
    constraints = inter.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca
    assert constraints.path_length == 0
    for cert in (inter, root):
        key = cert.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)
        assert key.curve.name == "secp384r1"


# --- planting -----------------------------------------------------------------------------------


@pytest.fixture
def planted(ca: SimCA) -> EntryFactory:
    return EntryFactory(SEED, ca, pool=SMALL)


def test_planted_identity(planted: EntryFactory, cas: tuple[CertificateAuthority, ...]) -> None:
    planted.plant(1234, PlantIdentity(WATCHED))
    planted.plant(1235, PlantIdentity(WATCHED, kind="intoto"))
    planted.plant(1236, PlantIdentity(EmailIdentity("ceo@watched.example"), kind="dsse"))
    for entry in (planted.v1_entry(1234), planted.v2_entry(1234)):
        assert entry.kind == "hashedrekord"
        rec = record(entry, 1234)
        signer = cert_signer(rec)
        assert signer.sans[0].value == WATCHED.san_uri
        assert (
            signer.extension("source-repository-uri") == "https://github.com/watched-org/payments"
        )
        assert signer.extension("deployment-environment") == "production"
        assert signer.extension("runner-environment") == "self-hosted"
        assert signer.extension("source-repository-visibility-at-signing") == "private"
        assert check_chain(signer, cas) is ChainStatus.VERIFIED
        assert rec.artifact_digests == (Digest("sha256", planted.artifact_digest(1234)),)
    intoto = record(planted.v1_entry(1235))
    assert intoto.kind == "intoto"
    assert intoto.subjects[0].name == "ghcr.io/watched-org/payments"
    assert cert_signer(intoto).sans[0].value == WATCHED.san_uri
    assert record(planted.v2_entry(1235)).kind == "dsse"
    dsse = record(planted.v1_entry(1236))
    assert dsse.kind == "dsse"
    assert cert_signer(dsse).sans[0].value == "ceo@watched.example"
    # one certificate per identity, and the neighbours are untouched
    assert cert_signer(record(planted.v1_entry(1235))).fingerprint == signer.fingerprint
    fresh = EntryFactory(SEED, planted.ca, pool=SMALL)
    assert planted.v1_entry(1233) == fresh.v1_entry(1233)
    planted.unplant(1234)
    assert planted.v1_entry(1234) == fresh.v1_entry(1234)


def test_planted_pool_key(planted: EntryFactory) -> None:
    pem = planted.bare_key_private_pem(0)
    planted.plant(77, PlantKey(pem, digest="ab" * 32))
    fingerprint = planted.bare_keys[0].fingerprint
    for entry in (planted.v1_entry(77), planted.v2_entry(77)):
        rec = record(entry, 77)
        signer = key_signer(rec)
        assert (signer.key_type, signer.curve, signer.fingerprint) == (
            "ecdsa",
            "P-256",
            fingerprint,
        )
        assert rec.artifact_digests == (Digest("sha256", "ab" * 32),)


def _private_pem(key: SigningKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.mark.parametrize(
    ("algorithm", "key_type", "v1_kind", "v2_kind"),
    [
        # pure Ed25519 signs the artifact, never a digest: no hashedrekord
        ("ed25519", "ed25519", "rekord", "dsse"),
        ("ecdsa-p384", "ecdsa", "hashedrekord", "hashedrekord"),
        ("rsa-3072", "rsa", "hashedrekord", "hashedrekord"),
    ],
)
def test_planted_external_key(
    planted: EntryFactory, algorithm: str, key_type: str, v1_kind: str, v2_kind: str
) -> None:
    private: SigningKey
    if algorithm == "ed25519":
        private = ed25519.Ed25519PrivateKey.generate()
    elif algorithm == "ecdsa-p384":
        private = ec.generate_private_key(ec.SECP384R1())
    else:
        private = rsa.generate_private_key(65537, 3072)
    planted.plant(5, PlantKey(_private_pem(private)))
    spki = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    v1, v2 = record(planted.v1_entry(5)), record(planted.v2_entry(5))
    assert (v1.kind, v2.kind) == (v1_kind, v2_kind)
    for rec in (v1, v2):
        assert key_signer(rec).key_type == key_type
        assert key_signer(rec).fingerprint == f"sha256:{sha256(spki)}"


@pytest.mark.parametrize("name", ["pkix_ed25519.pem", "pkix_ecdsa_p384.pem", "pkix_rsa3072.pem"])
def test_a_planted_key_must_be_a_private_key(planted: EntryFactory, name: str) -> None:
    """The simulator signs a planted entry as its signer would: a public key cannot."""
    pem = (FIXTURES / "keys" / name).read_bytes()
    with pytest.raises(ValueError, match="PRIVATE key"):
        planted.plant(5, PlantKey(pem))
    with pytest.raises(ConfigError, match="plant: key_pem is a public key"):
        plan_from_json({"index": 5, "key_pem": pem.decode()})
    assert not planted.plants


def test_an_ed25519_key_cannot_sign_a_planted_digest(planted: EntryFactory) -> None:
    pem = _private_pem(ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(ValueError, match="signs the artifact itself"):
        planted.plant(5, PlantKey(pem, digest="ab" * 32))
    encrypted = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(ValueError, match="encrypted"):
        planted.plant(5, PlantKey(encrypted))
    assert not planted.plants


def test_planted_image(planted: EntryFactory) -> None:
    digest = "c0ffee" + "0" * 58
    planted.plant(9, PlantImage("ghcr.io/acme/app", digest, signer=WATCHED))
    planted.plant(10, PlantImage("registry.example/team/svc", digest))
    entry = planted.v1_entry(9)
    rec = record(entry, 9)
    assert entry.kind == "intoto"
    assert entry.attestation is not None
    assert rec.subjects == (Subject("ghcr.io/acme/app", (Digest("sha256", digest),)),)
    assert json.loads(entry.attestation)["predicateType"] == "https://slsa.dev/provenance/v1"
    assert cert_signer(rec).sans[0].value == WATCHED.san_uri
    v2 = planted.v2_entry(9)
    assert v2.kind == "dsse"
    assert record(v2).payload_hash == Digest("sha256", sha256(entry.attestation))
    other = record(planted.v1_entry(10))
    assert other.subjects[0].name == "registry.example/team/svc"
    assert cert_signer(other).issuer == GITHUB_ACTIONS_ISSUER


def test_planted_digest(planted: EntryFactory) -> None:
    digest = "5e" * 64
    planted.plant(
        11,
        PlantDigest(
            digest, "sha512", signer=UsernameIdentity("root!ops.example", "https://idp.ops.example")
        ),
    )
    planted.plant(12, PlantDigest("07" * 32))
    for entry in (planted.v1_entry(11), planted.v2_entry(11)):
        rec = record(entry)
        assert rec.artifact_digests == (Digest("sha512", digest),)
        assert [(s.type, s.value) for s in cert_signer(rec).sans] == [
            (SanType.USERNAME, "root!ops.example")
        ]
    for entry in (planted.v1_entry(12), planted.v2_entry(12)):
        assert record(entry).artifact_digests == (Digest("sha256", "07" * 32),)
    assert planted.plants.keys() == {11, 12}


def test_bad_plans_are_refused(planted: EntryFactory) -> None:
    with pytest.raises(ValueError, match="64 lower-case hex"):
        planted.plant(1, PlantDigest("AB" * 32))
    with pytest.raises(ValueError, match="sha384 digest"):
        planted.plant(1, PlantDigest("ab" * 32, "sha384"))
    with pytest.raises(ValueError, match="negative"):
        planted.plant(-1, PlantImage("ghcr.io/a/b", "ab" * 32))
    with pytest.raises(ValueError, match="negative"):
        planted.v1_entry(-1)
    assert not planted.plants


# --- pool --------------------------------------------------------------------------------------


def test_pool_contents(factory: EntryFactory) -> None:
    size = factory.pool_size
    assert len(factory.certificates) == size.certificates == 912
    assert len({c.fingerprint for c in factory.certificates}) == size.certificates
    repos = {workflow(c).repository for c in factory.github_certs}
    assert len(repos) == size.github_repos
    algorithms = collections.Counter(k.algorithm for k in factory.bare_keys)
    assert algorithms == {"ecdsa-p256": 8, "ecdsa-p384": 2, "ed25519": 4, "rsa-2048": 2}
    assert factory.bare_keys[0].algorithm == "ecdsa-p256"
    key = serialization.load_pem_public_key(factory.bare_key_pem(0))
    assert isinstance(key, ec.EllipticCurvePublicKey)
    start = factory.start
    for cert in factory.certificates[:50]:
        nb = x509.load_der_x509_certificate(cert.der).not_valid_before_utc
        assert start <= nb < start + timedelta(days=30)


def test_start_must_be_inside_the_ca_validity(ca: SimCA) -> None:
    with pytest.raises(ValueError, match="outside"):
        EntryFactory(SEED, ca, pool=SMALL, start=datetime(2020, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="timezone"):
        EntryFactory(SEED, ca, pool=SMALL, start=datetime(2025, 1, 1))
