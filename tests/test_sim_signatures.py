"""Every entry the simulator serves carries a signature that verifies with the key or certificate
it names, as Rekor requires before it logs an entry.

The checks here read only the served body (and what a client holds beside it: Rekor v1's
attestation for intoto, the DSSE payload a bundle carries), load the key or certificate, rebuild
what was signed (the DSSE PAE, the SSHSIG signed blob, the minisign message and trusted comment)
and verify with ``cryptography``, independently of the simulator's signing code. The artifact of
the generated entry at ``index`` is the text ``f"{seed}:{index}"`` (``EntryFactory.artifact``).
"""

from __future__ import annotations

import base64
import collections
import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from monitor.sim.ca import GitHubWorkflow, SimCA
from monitor.sim.factory import (
    V1_MIX,
    V2_MIX,
    EmailIdentity,
    EntryFactory,
    Plan,
    PlantDigest,
    PlantIdentity,
    PlantImage,
    PlantKey,
    PoolSize,
    SimEntry,
    UsernameIdentity,
)
from monitor.sim.logs import SimV1Log, SimV2Log
from monitor.sim.signing import NoteSigner
from tests.conftest import FIXTURES

SEED = 2718
COUNT = 3000  # entries in each log
POOL = PoolSize(github_repos=6, refs_per_repo=2, runs_per_ref=2, emails=3, usernames=2)
DSSE_TYPE = "application/vnd.in-toto+json"
HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
    "SHA2_256": hashes.SHA256,
    "SHA2_384": hashes.SHA384,
    "SHA2_512": hashes.SHA512,
}
WORKFLOW = GitHubWorkflow(owner="watched", repo="payments", ref="refs/tags/v1.0.0")
ROOT = UsernameIdentity("root!ops.example", "https://idp.ops.example")


# --- an independent verifier ---------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    """What a verified entry was: its kind (and rekord format) and its key's algorithm."""

    kind: str
    algorithm: str


def b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def algorithm(key: PublicKeyTypes) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ecdsa-{key.curve.name}"
    if isinstance(key, rsa.RSAPublicKey):
        return f"rsa-{key.key_size}"
    assert isinstance(key, ed25519.Ed25519PublicKey), type(key)
    return "ed25519"


def pem_key(pem: bytes) -> PublicKeyTypes:
    """A PEM certificate's key, or a PEM public key."""
    if pem.startswith(b"-----BEGIN CERTIFICATE-----"):
        return x509.load_pem_x509_certificate(pem).public_key()
    return serialization.load_pem_public_key(pem)


def v2_key(verifier: dict[str, Any]) -> PublicKeyTypes:
    if "x509Certificate" in verifier:
        return x509.load_der_x509_certificate(
            b64(verifier["x509Certificate"]["rawBytes"])
        ).public_key()
    return serialization.load_der_public_key(b64(verifier["publicKey"]["rawBytes"]))


def verify_digest(key: PublicKeyTypes, sig: bytes, digest: bytes, hash_name: str) -> None:
    """hashedrekord: the signature is over the digest, prehashed with the body's algorithm."""
    prehashed = utils.Prehashed(HASHES[hash_name]())
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(sig, digest, ec.ECDSA(prehashed))
    elif isinstance(key, rsa.RSAPublicKey):
        key.verify(sig, digest, padding.PKCS1v15(), prehashed)
    else:
        raise AssertionError(f"a {algorithm(key)} key cannot sign a digest")


def verify_message(key: PublicKeyTypes, sig: bytes, message: bytes) -> None:
    """DSSE and rekord x509: ECDSA and RSA over SHA-256 of the message (as Rekor loads these
    verifiers), pure Ed25519 over the message."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(sig, message, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPublicKey):
        key.verify(sig, message, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert isinstance(key, ed25519.Ed25519PublicKey)
        key.verify(sig, message)


def dsse_pae(payload_type: str, payload: bytes) -> bytes:
    parts = [b"DSSEv1", str(len(payload_type)).encode(), payload_type.encode()]
    return b" ".join([*parts, str(len(payload)).encode(), payload])


def envelope_sha256(payload: bytes, payload_type: str, sig_text: str) -> str:
    """sha256 of the DSSE envelope as a client submits it (canonical JSON)."""
    envelope = {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": payload_type,
        "signatures": [{"keyid": "", "sig": sig_text}],
    }
    text = json.dumps(envelope, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def check_subject(payload: bytes, artifact: bytes | None) -> None:
    if artifact is not None:
        (subject,) = json.loads(payload)["subject"]
        assert subject["digest"] == {"sha256": hashlib.sha256(artifact).hexdigest()}


class SshReader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def string(self) -> bytes:
        n = int.from_bytes(self.data[self.at : self.at + 4], "big")
        value = self.data[self.at + 4 : self.at + 4 + n]
        assert len(value) == n, "truncated SSH string"
        self.at += 4 + n
        return value

    def mpint(self) -> int:
        return int.from_bytes(self.string(), "big", signed=True)

    def done(self) -> bool:
        return self.at == len(self.data)


def ssh_string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def unarmor(text: str, label: str) -> bytes:
    lines = text.strip().splitlines()
    assert lines[0] == f"-----BEGIN {label}-----"
    assert lines[-1] == f"-----END {label}-----"
    return b64("".join(lines[1:-1]))


def verify_sshsig(public_line: bytes, armored: bytes, message: bytes) -> PublicKeyTypes:
    """PROTOCOL.sshsig: the signature is over a blob naming the namespace and H(message)."""
    key_type, key_b64 = public_line.decode().split()[:2]
    blob = unarmor(armored.decode(), "SSH SIGNATURE")
    assert blob[:6] == b"SSHSIG"
    assert int.from_bytes(blob[6:10], "big") == 1  # the version
    r = SshReader(blob[10:])
    public, namespace, reserved, hash_alg, signature = (r.string() for _ in range(5))
    assert r.done()
    assert public == b64(key_b64)
    assert namespace == b"file"  # what Rekor verifies rekord ssh signatures under
    signed = b"SSHSIG" + b"".join(
        ssh_string(f)
        for f in (namespace, reserved, hash_alg, hashlib.new(hash_alg.decode(), message).digest())
    )
    key = serialization.load_ssh_public_key(f"{key_type} {key_b64}".encode())
    s = SshReader(signature)
    sig_type, sig_blob = s.string(), s.string()
    assert s.done()
    assert sig_type.decode() == key_type
    if isinstance(key, ed25519.Ed25519PublicKey):
        key.verify(sig_blob, signed)
    else:
        assert isinstance(key, ec.EllipticCurvePublicKey)
        rs = SshReader(sig_blob)
        der = utils.encode_dss_signature(rs.mpint(), rs.mpint())
        assert rs.done()
        hash_for_curve = hashes.SHA256() if key.curve.key_size == 256 else hashes.SHA384()
        key.verify(der, signed, ec.ECDSA(hash_for_curve))
    return key


def verify_minisign(public_file: bytes, sig_file: bytes, message: bytes) -> PublicKeyTypes:
    """minisign: Ed25519 over the message ("Ed") or its BLAKE2b-512 ("ED"), then the global
    signature over that signature and the trusted comment."""
    raw = b64(public_file.decode().splitlines()[1])
    assert raw[:2] == b"Ed"
    key_id, key = raw[2:10], ed25519.Ed25519PublicKey.from_public_bytes(raw[10:])
    untrusted, line, trusted, global_line = sig_file.decode().splitlines()
    assert untrusted.startswith("untrusted comment: ")
    sig = b64(line)
    assert sig[2:10] == key_id
    signed = hashlib.blake2b(message, digest_size=64).digest() if sig[:2] == b"ED" else message
    assert sig[:2] in (b"ED", b"Ed")
    key.verify(sig[10:], signed)
    assert trusted.startswith("trusted comment: ")
    key.verify(b64(global_line), sig[10:] + trusted.removeprefix("trusted comment: ").encode())
    return key


@dataclass(frozen=True)
class Given:
    """An entry's body and what a verifier holds beside it."""

    entry: SimEntry
    spec: dict[str, Any]
    artifact: bytes | None  # the signed artifact, where known
    envelope_hash: bool  # check a DSSE envelope's hash too

    def payload(self) -> bytes:
        assert self.entry.payload is not None, "a DSSE entry comes with its envelope's payload"
        return self.entry.payload


def hashedrekord_v1(g: Given) -> PublicKeyTypes:
    data, sig = g.spec["data"]["hash"], g.spec["signature"]
    key = pem_key(b64(sig["publicKey"]["content"]))
    digest = bytes.fromhex(data["value"])
    verify_digest(key, b64(sig["content"]), digest, data["algorithm"])
    if g.artifact is not None:
        assert digest == hashlib.new(data["algorithm"], g.artifact).digest()
    return key


def hashedrekord_v2(g: Given) -> PublicKeyTypes:
    body = g.spec["hashedRekordV002"]
    data, sig = body["data"], body["signature"]
    key, signature, digest = v2_key(sig["verifier"]), b64(sig["content"]), b64(data["digest"])
    verify_digest(key, signature, digest, data["algorithm"])
    if g.entry.payload is not None:  # DSSE in Rekor v2: the envelope's signature of its PAE
        pae = dsse_pae(DSSE_TYPE, g.entry.payload)
        verify_message(key, signature, pae)
        assert digest == hashlib.sha256(pae).digest()
        check_subject(g.entry.payload, g.artifact)
    elif g.artifact is not None:
        assert digest == hashlib.sha256(g.artifact).digest()
    return key


def dsse_v1(g: Given) -> PublicKeyTypes:
    (sig,) = g.spec["signatures"]
    key, payload = pem_key(b64(sig["verifier"])), g.payload()
    verify_message(key, b64(sig["signature"]), dsse_pae(DSSE_TYPE, payload))
    assert g.spec["payloadHash"]["value"] == hashlib.sha256(payload).hexdigest()
    if g.envelope_hash:
        want = envelope_sha256(payload, DSSE_TYPE, sig["signature"])
        assert g.spec["envelopeHash"]["value"] == want
    check_subject(payload, g.artifact)
    return key


def intoto_v1(g: Given) -> PublicKeyTypes:
    content = g.spec["content"]
    envelope = content["envelope"]
    (sig,) = envelope["signatures"]
    sig_text = b64(sig["sig"]).decode()  # base64 twice
    payload = g.entry.attestation  # as Rekor v1 serves it
    assert payload is not None
    key = pem_key(b64(sig["publicKey"]))
    verify_message(key, b64(sig_text), dsse_pae(envelope["payloadType"], payload))
    assert content["payloadHash"]["value"] == hashlib.sha256(payload).hexdigest()
    if g.envelope_hash:
        want = envelope_sha256(payload, envelope["payloadType"], sig_text)
        assert content["hash"]["value"] == want
    check_subject(payload, g.artifact)
    return key


def dsse_v2(g: Given) -> PublicKeyTypes:
    body = g.spec["dsseV002"]
    (sig,) = body["signatures"]
    key, payload = v2_key(sig["verifier"]), g.payload()
    verify_message(key, b64(sig["content"]), dsse_pae(DSSE_TYPE, payload))
    assert b64(body["payloadHash"]["digest"]) == hashlib.sha256(payload).digest()
    check_subject(payload, g.artifact)
    return key


def rekord_v1(g: Given) -> PublicKeyTypes:
    artifact = g.artifact
    assert artifact is not None, "a rekord signs an artifact"
    assert g.spec["data"]["hash"]["value"] == hashlib.sha256(artifact).hexdigest()
    sig = g.spec["signature"]
    fmt, content, public = sig["format"], b64(sig["content"]), b64(sig["publicKey"]["content"])
    if fmt == "ssh":
        return verify_sshsig(public, content, artifact)
    if fmt == "minisign":
        return verify_minisign(public, content, artifact)
    assert fmt == "x509", fmt
    key = pem_key(public)
    verify_message(key, content, artifact)
    return key


VERIFIERS = {
    "hashedrekord 0.0.1": hashedrekord_v1,
    "hashedrekord 0.0.2": hashedrekord_v2,
    "dsse 0.0.1": dsse_v1,
    "intoto 0.0.2": intoto_v1,
    "dsse 0.0.2": dsse_v2,
    "rekord 0.0.1": rekord_v1,
}


def verify_entry(entry: SimEntry, artifact: bytes | None, *, envelope_hash: bool = True) -> Checked:
    """Verify the entry's signature (raises ``InvalidSignature`` if it fails), then that its
    hashes are those of what it names; ``artifact``: the signed artifact, where known.
    ``envelope_hash``: check a DSSE envelope's hash too (the simulator's clients serialise
    the envelope as canonical JSON; real clients each in their own way)."""
    doc = json.loads(entry.body)
    kind, spec = f"{doc['kind']} {doc['apiVersion']}", doc["spec"]
    key = VERIFIERS[kind](Given(entry, spec, artifact, envelope_hash))
    if doc["kind"] == "rekord":
        kind = f"{kind} {spec['signature']['format']}"
    return Checked(kind, algorithm(key))


@pytest.mark.parametrize(
    "path", sorted((FIXTURES / "v1-bundles").glob("*.sigstore.json")), ids=lambda p: p.name
)
def test_the_verifier_accepts_real_rekor_entries(path: Path) -> None:
    """The checks above, on production entries and the envelopes of their bundles."""
    doc = json.loads(path.read_text())
    body = b64(doc["verificationMaterial"]["tlogEntries"][0]["canonicalizedBody"])
    envelope = doc.get("dsseEnvelope")
    payload = b64(envelope["payload"]) if envelope else None
    kind = json.loads(body)["kind"]
    attestation = payload if kind == "intoto" else None  # what Rekor v1 serves beside it
    entry = SimEntry(body, attestation, kind, "", path.name, payload)
    verify_entry(entry, None, envelope_hash=False)
    with pytest.raises(InvalidSignature):
        verify_entry(tampered(entry), None, envelope_hash=False)


# --- tampering -----------------------------------------------------------------------------------


def flip(raw: bytes) -> bytes:
    return raw[:-1] + bytes((raw[-1] ^ 0x01,))


def flip_b64(text: str) -> str:
    return base64.b64encode(flip(b64(text))).decode()


def tampered(entry: SimEntry) -> SimEntry:
    """The entry with one byte of its signature changed (the last: inside ECDSA's s, RSA's
    value, Ed25519's S), everything else as it was."""
    doc = json.loads(entry.body)
    spec = doc["spec"]
    kind = f"{doc['kind']} {doc['apiVersion']}"
    if kind == "hashedrekord 0.0.1":
        spec["signature"]["content"] = flip_b64(spec["signature"]["content"])
    elif kind == "hashedrekord 0.0.2":
        sig = spec["hashedRekordV002"]["signature"]
        sig["content"] = flip_b64(sig["content"])
    elif kind == "dsse 0.0.1":
        spec["signatures"][0]["signature"] = flip_b64(spec["signatures"][0]["signature"])
    elif kind == "intoto 0.0.2":
        sig = spec["content"]["envelope"]["signatures"][0]
        sig["sig"] = base64.b64encode(flip_b64(b64(sig["sig"]).decode()).encode()).decode()
    elif kind == "dsse 0.0.2":
        sig = spec["dsseV002"]["signatures"][0]
        sig["content"] = flip_b64(sig["content"])
    else:
        sig = spec["signature"]
        if sig["format"] == "x509":
            new = flip(b64(sig["content"]))
        elif sig["format"] == "ssh":
            text = b64(sig["content"]).decode()
            blob = flip(unarmor(text, "SSH SIGNATURE"))  # its last byte is the signature's
            armored = base64.b64encode(blob).decode()
            new = (
                f"-----BEGIN SSH SIGNATURE-----\n{armored}\n-----END SSH SIGNATURE-----\n".encode()
            )
        else:
            lines = b64(sig["content"]).decode().splitlines()
            lines[1] = flip_b64(lines[1])
            new = ("\n".join(lines) + "\n").encode()
        sig["content"] = base64.b64encode(new).decode()
    changed = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    assert changed != entry.body
    return replace(entry, body=changed)


# --- the logs ------------------------------------------------------------------------------------


def plans(factory: EntryFactory) -> dict[int, tuple[Plan, bool]]:
    """A plant of every plan type at an index, and whether it signs that index's artifact."""
    p384, ed = factory.bare_keys[4], factory.bare_keys[5]
    rsa_key = factory.bare_keys[7]
    assert (p384.algorithm, ed.algorithm, rsa_key.algorithm) == (
        "ecdsa-p384",
        "ed25519",
        "rsa-2048",
    )
    fresh = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        10: (PlantIdentity(WORKFLOW), True),
        11: (PlantIdentity(EmailIdentity("ceo@watched.example"), kind="dsse"), True),
        12: (PlantIdentity(ROOT, kind="intoto"), True),
        13: (PlantIdentity(WORKFLOW, kind="dsse", digest="ab" * 32), False),
        14: (PlantKey(factory.bare_key_private_pem(0)), True),
        15: (PlantKey(factory.bare_key_private_pem(0), digest="cd" * 32), False),
        16: (PlantKey(factory.bare_key_private_pem(4)), True),
        17: (PlantKey(factory.bare_key_private_pem(7), digest="ef" * 32), False),
        18: (PlantKey(factory.bare_key_private_pem(5)), True),
        19: (PlantKey(fresh), True),
        20: (PlantImage("ghcr.io/acme/app", "01" * 32, signer=WORKFLOW), False),
        21: (PlantImage("registry.example/team/svc", "02" * 32), False),
        22: (PlantDigest("5e" * 64, "sha512", signer=ROOT), False),
        23: (PlantDigest("07" * 48, "sha384"), False),
        24: (PlantDigest("09" * 32), False),
    }


@dataclass(frozen=True)
class Logs:
    factory: EntryFactory
    v1: SimV1Log
    v2: SimV2Log
    planted: dict[int, tuple[Plan, bool]]

    def artifact(self, index: int) -> bytes | None:
        plan = self.planted.get(index)
        return f"{SEED}:{index}".encode() if plan is None or plan[1] else None


@pytest.fixture(scope="module")
def logs() -> Logs:
    factory = EntryFactory(SEED, SimCA.create(SEED), pool=POOL)
    planted = plans(factory)
    for index, (plan, _) in planted.items():
        factory.plant(index, plan)  # before the logs reach them, as the server requires
    v1 = SimV1Log(NoteSigner.ecdsa("sim", SEED, "rekor-v1"), factory)
    v2 = SimV2Log("sim/v2", NoteSigner.ed25519("sim/v2", SEED, "rekor-v2"), factory)
    v1.append(COUNT)
    v2.append(COUNT)
    return Logs(factory, v1, v2, planted)


def group(entry: SimEntry) -> str:
    return entry.description.split(": ", 1)[0]


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_every_served_entry_verifies(logs: Logs, api: str) -> None:
    log = logs.v1 if api == "v1" else logs.v2
    checked: collections.Counter[Checked] = collections.Counter()
    groups: collections.Counter[str] = collections.Counter()
    for index in range(COUNT):
        entry = log.entry(index)
        checked[verify_entry(entry, logs.artifact(index))] += 1
        groups[group(entry)] += 1
    mix = V1_MIX if api == "v1" else V2_MIX
    for name, _ in mix:
        assert groups[name] >= 40, (name, groups)
    kinds = collections.Counter(c.kind for c in checked.elements())
    algorithms = collections.Counter(c.algorithm for c in checked.elements())
    common = {"ecdsa-secp256r1", "ecdsa-secp384r1", "rsa-2048"}
    # Rekor v2 holds no Ed25519 key but planted ones: hashedrekord cannot carry pure Ed25519
    if api == "v1":
        common.add("ed25519")
    assert all(algorithms[a] >= 4 for a in common), algorithms
    if api == "v1":
        assert set(kinds) == {
            "hashedrekord 0.0.1",
            "dsse 0.0.1",
            "intoto 0.0.2",
            "rekord 0.0.1 x509",
            "rekord 0.0.1 ssh",
            "rekord 0.0.1 minisign",
        }, kinds
        assert set(algorithms) == {"ecdsa-secp256r1", "ecdsa-secp384r1", "rsa-2048", "ed25519"}
        # every key algorithm each rekord format can carry
        for fmt, want in (
            ("x509", {"ecdsa-secp256r1", "ecdsa-secp384r1", "rsa-2048", "ed25519"}),
            ("ssh", {"ecdsa-secp256r1", "ecdsa-secp384r1", "ed25519"}),
            ("minisign", {"ed25519"}),
        ):
            seen = {c.algorithm for c in checked if c.kind == f"rekord 0.0.1 {fmt}"}
            assert seen == want, (fmt, seen)
    else:
        assert set(kinds) == {"hashedrekord 0.0.2", "dsse 0.0.2"}, kinds
        assert set(algorithms) == {"ecdsa-secp256r1", "ecdsa-secp384r1", "rsa-2048", "ed25519"}
    assert sum(kinds.values()) == COUNT


def test_every_plan_type_verifies_in_both_logs(logs: Logs) -> None:
    kinds = set()
    for index, (plan, _) in logs.planted.items():
        for log in (logs.v1, logs.v2):
            entry = log.entry(index)
            assert group(entry).startswith("planted/"), (index, entry.description)
            kinds.add(verify_entry(entry, logs.artifact(index)).kind)
            if isinstance(plan, PlantDigest | PlantKey) and plan.digest is not None:
                doc = json.loads(entry.body)["spec"]
                digest = doc["data"]["hash"]["value"] if "data" in doc else None
                if digest is None:
                    digest = b64(doc["hashedRekordV002"]["data"]["digest"]).hex()
                assert digest == plan.digest
    assert kinds == {
        "hashedrekord 0.0.1",
        "hashedrekord 0.0.2",
        "dsse 0.0.1",
        "dsse 0.0.2",
        "intoto 0.0.2",
        "rekord 0.0.1 x509",  # Ed25519 keys in v1
    }


def test_served_entries_are_the_factorys_signed_afresh(logs: Logs) -> None:
    """The logs keep each signature from the append; a rebuild signs again, identically."""
    for index in [*range(0, COUNT, 97), *logs.planted]:
        assert logs.v1.entry(index) == logs.factory.v1_entry(index)
        assert logs.v2.entry(index) == logs.factory.v2_entry(index)


def test_a_signature_with_one_byte_changed_fails(logs: Logs) -> None:
    seen: dict[str, int] = {}
    for log in (logs.v1, logs.v2):
        for index in range(COUNT):
            entry = log.entry(index)
            artifact = logs.artifact(index)
            kind = verify_entry(entry, artifact).kind
            if seen.get(kind, 0) >= 3:
                continue
            seen[kind] = seen.get(kind, 0) + 1
            with pytest.raises(InvalidSignature):
                verify_entry(tampered(entry), artifact)
    assert len(seen) == 8, seen  # every kind and rekord format
    assert set(seen.values()) == {3}, seen
