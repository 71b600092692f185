"""Seeded, varied Rekor entries for the simulator, cheap enough for millions of indexes.

Construction builds a pool: GitHub Actions workflow runs, e-mail and username identities with
their Fulcio-like leaf certificates (from ``SimCA``), and bare keys (ECDSA, Ed25519, RSA). After
that every entry is templated from ``(seed, index)`` alone, so any index can be rebuilt at any
time and a log need not store bodies:

* the artifact digest is ``sha256(f"{seed}:{index}")``; its bytes also choose the entry's kind
  and signer (the signer skewed towards the start of the pool, as real logs have busy repos);
* signatures are DER-shaped ECDSA (or Ed25519/RSA-sized) bytes hashed from the index: the
  monitor never verifies artifact signatures, so real ones would only cost time;
* bodies are canonical JSON (keys sorted, compact) exactly as Rekor v1 and v2 write them
  (REKOR-FORMATS.md sections 4 and 6.4), built from templates made by ``json.dumps`` itself.

Mixes (basis points) are ``V1_MIX`` and ``V2_MIX``; an entry's ``description`` starts with its
group (``"hashedrekord/github: <identity>"``). ``plant`` replaces the entry at an index by one
naming a given identity, key, image or digest: the needle a monitor test then looks for.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Literal, Protocol, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from monitor.encoding import b64encode
from monitor.sim.ca import GitHubWorkflow, SimCA, derive_ec_key, seeded_bytes

INTOTO = "application/vnd.in-toto+json"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
COSIGN_ATTESTATION = "https://cosign.sigstore.dev/attestation/v1"
POOL_WINDOW = timedelta(days=30)  # pool certificates are issued within this of ``start``

V1_MIX: tuple[tuple[str, int], ...] = (
    ("hashedrekord/github", 5500),
    ("hashedrekord/email", 1000),
    ("hashedrekord/key", 800),
    ("dsse/github", 1000),
    ("intoto/github", 1000),
    ("rekord/key", 500),
    ("hashedrekord/username", 200),
)
"""Rekor v1 groups and their shares in basis points (they sum to 10,000)."""

V2_MIX: tuple[tuple[str, int], ...] = (
    ("hashedrekord/github", 6300),
    ("hashedrekord/email", 1000),
    ("hashedrekord/key", 1000),
    ("hashedrekord/dsse-pae", 1000),  # DSSE as Rekor v2 logs it: a hashedrekord over the PAE
    ("dsse/github", 500),
    ("hashedrekord/username", 200),
)
"""Rekor v2 groups and their shares in basis points."""


# --- identities, pool, plans --------------------------------------------------------------------


@dataclass(frozen=True)
class EmailIdentity:
    email: str
    issuer: str = "https://github.com/login/oauth"


@dataclass(frozen=True)
class UsernameIdentity:
    """Fulcio's username identity: the SAN otherName reads ``<username>!<subject domain>``."""

    username: str
    issuer: str


Identity = GitHubWorkflow | EmailIdentity | UsernameIdentity


@dataclass(frozen=True)
class SimEntry:
    """One entry: the body (the leaf bytes) and, for intoto, Rekor v1's ``attestation.data``."""

    body: bytes
    attestation: bytes | None
    kind: str
    api_version: str
    description: str


@dataclass(frozen=True)
class PoolSize:
    """How much the factory pre-generates (certificates: github + email + username ones)."""

    github_repos: int = 64
    refs_per_repo: int = 4
    runs_per_ref: int = 3
    emails: int = 32
    certs_per_email: int = 4
    usernames: int = 8
    certs_per_username: int = 2
    bare_keys: int = 16

    @property
    def certificates(self) -> int:
        return (
            self.github_repos * self.refs_per_repo * self.runs_per_ref
            + self.emails * self.certs_per_email
            + self.usernames * self.certs_per_username
        )


@dataclass(frozen=True)
class PoolCert:
    """A leaf certificate and everything an entry needs of it, encoded once."""

    identity: Identity
    der: bytes
    v1_key: str  # Rekor v1: base64 of the PEM
    v2_raw: str  # Rekor v2: rawBytes, base64 of the DER
    label: str  # the identity, for descriptions
    subject_name: str  # what its in-toto statements are about
    predicate_type: str
    predicate: str  # the statement's predicate, serialised
    v2_field: str = "x509Certificate"
    key_details: str = "PKIX_ECDSA_P256_SHA_256"
    algorithm: str = "ecdsa-p256"  # of the leaf key

    @property
    def fingerprint(self) -> str:
        return f"sha256:{hashlib.sha256(self.der).hexdigest()}"


@dataclass(frozen=True)
class BareKey:
    """A self-managed public key in every encoding the entry kinds use."""

    algorithm: str  # ecdsa-p256, ecdsa-p384, ed25519, rsa-2048
    public_pem: bytes
    spki_der: bytes
    key_details: str  # Rekor v2 PublicKeyDetails
    ssh: str | None  # OpenSSH public key line
    minisign: str | None  # minisign .pub file (Ed25519 keys)
    label: str
    v1_key: str  # base64 of the PEM
    v2_raw: str  # base64 of the DER SubjectPublicKeyInfo
    v2_field: str = "publicKey"

    @property
    def fingerprint(self) -> str:
        """``sha256:<hex>`` of the DER SubjectPublicKeyInfo, as the monitor prints it."""
        return f"sha256:{hashlib.sha256(self.spki_der).hexdigest()}"

    @property
    def hashedrekord_ok(self) -> bool:
        """hashedrekord signs a digest: pure Ed25519 cannot (it needs the whole message)."""
        return self.algorithm != "ed25519"


@dataclass(frozen=True)
class PlantIdentity:
    """An entry signed by a certificate for ``identity`` (issued once per identity)."""

    identity: Identity
    kind: Literal["hashedrekord", "dsse", "intoto"] = "hashedrekord"
    digest: str | None = None  # hex sha256 of the artifact; None: the index's own


@dataclass(frozen=True)
class PlantKey:
    """A hashedrekord (rekord for Ed25519 in v1) signed by this public key (PEM)."""

    public_key_pem: bytes
    digest: str | None = None


@dataclass(frozen=True)
class PlantImage:
    """A container image attestation: v1 intoto with the statement as attestation, v2 dsse."""

    image: str  # e.g. ghcr.io/acme/app
    digest: str  # hex sha256 of the image manifest
    signer: Identity | None = None  # None: the pool's GitHub identity for the index


@dataclass(frozen=True)
class PlantDigest:
    """A hashedrekord for this artifact digest."""

    digest: str
    algorithm: Literal["sha256", "sha384", "sha512"] = "sha256"
    signer: Identity | None = None


Plan = PlantIdentity | PlantKey | PlantImage | PlantDigest

_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_V2_ALGORITHMS = {"sha256": "SHA2_256", "sha384": "SHA2_384", "sha512": "SHA2_512"}


def _check_hex(value: str, algorithm: str = "sha256") -> None:
    want = _HEX_LENGTHS[algorithm]
    if len(value) != want or value.strip("0123456789abcdef"):
        raise ValueError(f"{algorithm} digest must be {want} lower-case hex digits: {value!r}")


# --- body templates ------------------------------------------------------------------------------


def canonical_json(doc: Any) -> str:
    """Rekor's canonical JSON: keys sorted, no whitespace."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _template(doc: dict[str, Any]) -> str:
    """A %-template of ``doc``'s canonical JSON; its ``%(name)s`` fields take JSON-safe text
    (hex, base64, fixed names), so the result stays canonical."""
    text = canonical_json(doc)
    assert text.count("%") == text.count("%("), "stray % in a body template"
    return text


_V1_HASHEDREKORD = _template(
    {
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "%(alg)s", "value": "%(digest)s"}},
            "signature": {"content": "%(sig)s", "publicKey": {"content": "%(key)s"}},
        },
    }
)
_V1_REKORD = _template(
    {
        "apiVersion": "0.0.1",
        "kind": "rekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": "%(digest)s"}},
            "signature": {
                "content": "%(sig)s",
                "format": "%(format)s",
                "publicKey": {"content": "%(key)s"},
            },
        },
    }
)
_V1_DSSE = _template(
    {
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": "%(envelope)s"},
            "payloadHash": {"algorithm": "sha256", "value": "%(payload)s"},
            "signatures": [{"signature": "%(sig)s", "verifier": "%(key)s"}],
        },
    }
)
_V1_INTOTO = _template(
    {
        "apiVersion": "0.0.2",
        "kind": "intoto",
        "spec": {
            "content": {
                "envelope": {
                    "payloadType": INTOTO,
                    "signatures": [{"publicKey": "%(key)s", "sig": "%(sig)s"}],
                },
                "hash": {"algorithm": "sha256", "value": "%(envelope)s"},
                "payloadHash": {"algorithm": "sha256", "value": "%(payload)s"},
            }
        },
    }
)


def _v2_verifier(field: str) -> dict[str, Any]:
    return {"keyDetails": "%(details)s", field: {"rawBytes": "%(raw)s"}}


def _v2_hashedrekord(field: str) -> str:
    return _template(
        {
            "apiVersion": "0.0.2",
            "kind": "hashedrekord",
            "spec": {
                "hashedRekordV002": {
                    "data": {"algorithm": "%(alg)s", "digest": "%(digest)s"},
                    "signature": {"content": "%(sig)s", "verifier": _v2_verifier(field)},
                }
            },
        }
    )


def _v2_dsse(field: str) -> str:
    return _template(
        {
            "apiVersion": "0.0.2",
            "kind": "dsse",
            "spec": {
                "dsseV002": {
                    "payloadHash": {"algorithm": "SHA2_256", "digest": "%(payload)s"},
                    "signatures": [{"content": "%(sig)s", "verifier": _v2_verifier(field)}],
                }
            },
        }
    )


_V2_HASHEDREKORD = {f: _v2_hashedrekord(f) for f in ("x509Certificate", "publicKey")}
_V2_DSSE = {f: _v2_dsse(f) for f in ("x509Certificate", "publicKey")}
_ENVELOPE = '{"payload":"%s","payloadType":"' + INTOTO + '","signatures":[{"keyid":"","sig":"%s"}]}'


def _pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


# --- signature-shaped bytes ----------------------------------------------------------------------


def _der_int(raw: bytes) -> bytes:
    # top bit clear and top byte non-zero: a minimal positive INTEGER without a pad byte
    value = bytes(((raw[0] & 0x7F) | 0x40,)) + raw[1:]
    return bytes((0x02, len(value))) + value


def _ecdsa_shaped(material: bytes) -> bytes:
    """A DER ECDSA-Sig-Value (r, s each half of ``material``): 70 bytes for P-256."""
    half = len(material) // 2
    body = _der_int(material[:half]) + _der_int(material[half:])
    return bytes((0x30, len(body))) + body


def _ssh_string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def _sshsig(key: BareKey, material: bytes) -> bytes:
    """An armored SSHSIG (``ssh-keygen -Y sign``) over 64 bytes of signature material."""
    key_type, blob_b64 = (key.ssh or "").split()[:2]
    if key.algorithm == "ed25519":
        inner = material
    else:  # ECDSA: mpint r, mpint s
        inner = _ssh_string(b"\x00" + material[:32]) + _ssh_string(b"\x00" + material[32:])
    blob = (
        b"SSHSIG"
        + (1).to_bytes(4, "big")
        + _ssh_string(base64.b64decode(blob_b64))
        + _ssh_string(b"file")
        + _ssh_string(b"")
        + _ssh_string(b"sha512")
        + _ssh_string(_ssh_string(key_type.encode()) + _ssh_string(inner))
    )
    text = b64encode(blob)
    lines = "\n".join(text[i : i + 70] for i in range(0, len(text), 70))
    return f"-----BEGIN SSH SIGNATURE-----\n{lines}\n-----END SSH SIGNATURE-----\n".encode()


def _minisig(material: bytes, timestamp: int, file_name: str) -> bytes:
    """A minisign signature file over 136 bytes of material (key ID, signatures)."""
    return (
        "untrusted comment: signature from minisign secret key\n"
        f"{b64encode(b'ED' + material[:72])}\n"
        f"trusted comment: timestamp:{timestamp}\tfile:{file_name}\thashed\n"
        f"{b64encode(material[72:])}\n"
    ).encode()


# --- deterministic key material ------------------------------------------------------------------

_SMALL_PRIMES = math.prod(
    p for p in range(3, 4000, 2) if all(p % q for q in range(3, math.isqrt(p) + 1, 2))
)


def _probable_prime(n: int, rng: random.Random, rounds: int = 8) -> bool:
    d, s = n - 1, 0
    while not d & 1:
        d, s = d >> 1, s + 1
    for _ in range(rounds):
        x = pow(rng.randrange(2, n - 2), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _seeded_prime(rng: random.Random, bits: int) -> int:
    while True:
        n = rng.getrandbits(bits) | 3 << (bits - 2) | 1
        if math.gcd(n, _SMALL_PRIMES) != 1 or pow(2, n - 1, n) != 1 or n % 65537 == 1:
            continue
        if _probable_prime(n, rng):
            return n


@lru_cache(maxsize=64)
def seeded_rsa_public_key(seed: int, label: str, bits: int = 2048) -> rsa.RSAPublicKey:
    """A real RSA public key (the product of two seeded primes), the same for every run."""
    rng = random.Random(f"tlog-monitor-sim:{seed}:rsa:{label}")  # noqa: S311 - seeded on purpose
    while True:
        p, q = _seeded_prime(rng, bits // 2), _seeded_prime(rng, bits // 2)
        if p != q and (p * q).bit_length() == bits:
            return rsa.RSAPublicNumbers(65537, p * q).public_key()


def bare_key(public_key: PublicKeyTypes, label: str, minisign_id: bytes | None = None) -> BareKey:
    """Describe a public key in all its encodings (minisign only for Ed25519 keys)."""
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    ssh: str | None = None
    minisign: str | None = None
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        bits = public_key.curve.key_size
        if bits not in (256, 384):
            raise ValueError(f"unsupported curve {public_key.curve.name}")
        algorithm = f"ecdsa-p{bits}"
        details = f"PKIX_ECDSA_P{bits}_SHA_{bits}"
    elif isinstance(public_key, rsa.RSAPublicKey):
        algorithm = f"rsa-{public_key.key_size}"
        details = f"PKIX_RSA_PKCS1V15_{public_key.key_size}_SHA256"
    elif isinstance(public_key, ed25519.Ed25519PublicKey):
        algorithm, details = "ed25519", "PKIX_ED25519_PH"
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        key_id = minisign_id or hashlib.sha256(raw).digest()[:8]
        line = b64encode(b"Ed" + key_id + raw)
        minisign = f"untrusted comment: minisign public key {key_id[::-1].hex().upper()}\n{line}\n"
    else:
        raise ValueError(f"unsupported key type {type(public_key).__name__}")
    if not isinstance(public_key, rsa.RSAPublicKey):
        openssh = public_key.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        ssh = f"{openssh.decode()} {label.replace(' ', '-')}@sim.invalid"
    return BareKey(
        algorithm, pem, spki, details, ssh, minisign, label, b64encode(pem), b64encode(spki)
    )


# --- pool generation ----------------------------------------------------------------------------

_OWNER_WORDS = (
    "acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell", "cyberdyne",
    "soylent", "aperture", "blackmesa", "vandelay", "wonka", "oscorp", "piedpiper", "dunder",
    "monarch", "nakatomi", "weyland", "virtucon", "spacely", "gringotts", "contoso",
)  # fmt: skip
_OWNER_SUFFIXES = ("", "-labs", "-dev", "-oss", "-io", "-hq")
_REPO_WORDS = (
    "api", "cli", "sdk", "web", "core", "agent", "operator", "gateway", "runtime", "scanner",
    "builder", "proxy", "worker", "dashboard", "controller", "plugin", "server", "client", "lib",
    "toolkit", "charts", "infra", "docs", "action",
)  # fmt: skip
_REPO_PREFIXES = ("", "", "go-", "py-", "js-", "rust-", "terraform-provider-")
_WORKFLOWS = (
    ("release.yml", "Release"),
    ("build.yml", "Build"),
    ("publish.yml", "Publish"),
    ("ci.yml", "CI"),
    ("docker.yml", "Docker"),
    ("provenance.yml", "SLSA provenance"),
    ("sign.yml", "Sign artifacts"),
)
_REUSABLE = (
    "slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml"
    "@refs/tags/v2.0.0",
    "slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml"
    "@refs/tags/v2.1.0",
)
_ENVIRONMENTS = ("production", "release", "pypi", "npm", "staging")
_FIRST = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yvonne",
)  # fmt: skip
_LAST = ("smith", "jones", "garcia", "chen", "patel", "kim", "okafor", "novak", "silva", "berg")
_EMAIL_DOMAINS = (
    ("gmail.com", "https://accounts.google.com"),
    ("example.com", "https://github.com/login/oauth"),
    ("users.noreply.github.com", "https://github.com/login/oauth"),
    ("outlook.com", "https://login.microsoftonline.com"),
    ("corp.example", "https://accounts.google.com"),
    ("gitlab.example", "https://gitlab.com"),
)
_USERNAME_ISSUERS = (
    ("sim-idp.example", "https://idp.sim-idp.example"),
    ("ci.example", "https://oidc.ci.example"),
)
_KEY_PATTERN = (
    "ecdsa-p256", "ecdsa-p256", "ecdsa-p256", "ecdsa-p256", "ecdsa-p384", "ed25519", "ed25519",
    "rsa-2048",
)  # fmt: skip


def _hex(rng: random.Random, nbytes: int = 20) -> str:
    return rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()


def _refs(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """(ref, trigger) pairs: main first, then tags, pull requests and release branches."""
    refs = [("refs/heads/main", "push")]
    major, minor, patch = rng.randrange(0, 5), rng.randrange(0, 20), rng.randrange(0, 10)
    while len(refs) < count:
        step = len(refs) % 3
        if step == 1:
            refs.append((f"refs/tags/v{major}.{minor}.{patch}", rng.choice(("push", "release"))))
            patch += 1
        elif step == 2:
            refs.append((f"refs/pull/{rng.randrange(1, 5000)}/merge", "pull_request"))
        else:
            refs.append((f"refs/heads/release/{major}.{minor + len(refs)}", "workflow_dispatch"))
    return refs


def _github_workflows(rng: random.Random, size: PoolSize) -> list[GitHubWorkflow]:
    n_owners = max(1, (size.github_repos + 2) // 3)
    owners: list[tuple[str, str]] = []
    while len(owners) < n_owners:
        word = rng.choice(_OWNER_WORDS) + rng.choice(_OWNER_SUFFIXES)
        if word not in (o[0] for o in owners):
            owners.append((word, str(rng.randrange(10**6, 10**8))))
    repos: set[str] = set()
    out: list[GitHubWorkflow] = []
    for r in range(size.github_repos):
        owner, owner_id = owners[r % n_owners]
        repo = rng.choice(_REPO_PREFIXES) + rng.choice(_REPO_WORDS)
        while f"{owner}/{repo}" in repos:
            repo = f"{repo}-{rng.randrange(2, 10)}"
        repos.add(f"{owner}/{repo}")
        workflow_file, workflow_name = rng.choice(_WORKFLOWS)
        repository_id = str(rng.randrange(10**8, 10**9))
        visibility = rng.choices(("public", "private", "internal"), (80, 15, 5))[0]
        runner = "self-hosted" if rng.random() < 0.1 else "github-hosted"
        environment = rng.choice(_ENVIRONMENTS) if rng.random() < 0.2 else None
        reusable = rng.choice(_REUSABLE) if rng.random() < 0.15 else None
        signer_sha = _hex(rng) if reusable else None
        for ref, trigger in _refs(rng, size.refs_per_repo):
            for _ in range(size.runs_per_ref):
                out.append(
                    GitHubWorkflow(
                        owner=owner,
                        repo=repo,
                        workflow_file=workflow_file,
                        ref=ref,
                        sha=_hex(rng),
                        workflow_name=workflow_name,
                        trigger=trigger,
                        repository_id=repository_id,
                        owner_id=owner_id,
                        run_id=str(rng.randrange(10**9, 2 * 10**10)),
                        run_attempt="2" if rng.random() < 0.05 else "1",
                        runner_environment=runner,
                        visibility=visibility,
                        environment=environment,
                        signer_workflow=reusable,
                        signer_sha=signer_sha,
                    )
                )
    return out


def _emails(rng: random.Random, count: int) -> list[EmailIdentity]:
    out: list[EmailIdentity] = []
    seen: set[str] = set()
    while len(out) < count:
        domain, issuer = rng.choice(_EMAIL_DOMAINS)
        local = f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}"
        if local in seen:
            local = f"{local}{rng.randrange(2, 100)}"
        if local not in seen:
            seen.add(local)
            out.append(EmailIdentity(f"{local}@{domain}", issuer))
    return out


def _usernames(rng: random.Random, count: int) -> list[UsernameIdentity]:
    out: list[UsernameIdentity] = []
    for n in range(count):
        domain, issuer = rng.choice(_USERNAME_ISSUERS)
        out.append(UsernameIdentity(f"{rng.choice(_FIRST)}{n}!{domain}", issuer))
    return out


def _predicate(identity: Identity, not_before: datetime) -> tuple[str, str]:
    """(predicateType, serialised predicate) of statements this identity signs."""
    if isinstance(identity, GitHubWorkflow):
        wf = identity
        doc: dict[str, Any] = {
            "buildDefinition": {
                "buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
                "externalParameters": {
                    "workflow": {
                        "ref": wf.ref,
                        "repository": wf.source_repository_uri,
                        "path": f".github/workflows/{wf.workflow_file}",
                    }
                },
                "internalParameters": {
                    "github": {
                        "event_name": wf.trigger,
                        "repository_id": wf.repository_id,
                        "repository_owner_id": wf.owner_id,
                    }
                },
                "resolvedDependencies": [
                    {
                        "uri": f"git+{wf.source_repository_uri}@{wf.ref}",
                        "digest": {"gitCommit": wf.sha},
                    }
                ],
            },
            "runDetails": {
                "builder": {"id": f"https://github.com/actions/runner/{wf.runner_environment}"},
                "metadata": {"invocationId": wf.run_invocation_uri},
            },
        }
        return SLSA_PROVENANCE_V1, json.dumps(doc, separators=(",", ":"))
    stamp = not_before.strftime("%Y-%m-%dT%H:%M:%SZ")
    return COSIGN_ATTESTATION, json.dumps({"Data": "", "Timestamp": stamp}, separators=(",", ":"))


def _describe(identity: Identity) -> tuple[str, str]:
    """(label, subject name) of an identity."""
    if isinstance(identity, GitHubWorkflow):
        return identity.san_uri, f"ghcr.io/{identity.repository.lower()}"
    if isinstance(identity, EmailIdentity):
        local = identity.email.split("@", 1)[0]
        return f"{identity.email} via {identity.issuer}", f"pkg:generic/{local}-artifact"
    user = identity.username.split("!", 1)[0]
    return f"{identity.username} via {identity.issuer}", f"pkg:generic/{user}-artifact"


# --- the factory --------------------------------------------------------------------------------


class _Verifier(Protocol):
    """What an entry needs of its signer: a pool certificate or a bare key."""

    @property
    def v1_key(self) -> str: ...
    @property
    def v2_raw(self) -> str: ...
    @property
    def v2_field(self) -> str: ...
    @property
    def key_details(self) -> str: ...
    @property
    def algorithm(self) -> str: ...
    @property
    def label(self) -> str: ...


_Builder = Callable[[int, bytes], SimEntry]
_V = TypeVar("_V", bound=_Verifier)


def _pick(pool: Sequence[_V], d: bytes) -> _V:
    """Skewed towards the start of the pool: a few identities sign most entries."""
    u = int.from_bytes(d[4:8], "big")
    return pool[(u * u * len(pool)) >> 64]


def _pick_uniform(pool: Sequence[_V], d: bytes) -> _V:
    return pool[int.from_bytes(d[8:12], "big") % len(pool)]


class EntryFactory:
    """Deterministic entries by index for one seed and CA; see the module docstring."""

    def __init__(
        self,
        seed: int,
        ca: SimCA,
        *,
        pool: PoolSize | None = None,
        start: datetime | None = None,
    ) -> None:
        self.seed = seed
        self.ca = ca
        self.pool_size = size = pool or PoolSize()
        self.start = start or ca.not_before + timedelta(days=366)
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if not ca.not_before <= self.start < ca.not_after - POOL_WINDOW - timedelta(days=1):
            raise ValueError(f"start {self.start.isoformat()} is outside the CA's validity")
        self._prefix = f"{seed}:"
        rng = random.Random(f"tlog-monitor-sim:{seed}:pool")  # noqa: S311 - seeded on purpose
        github = _github_workflows(rng, size)
        emails = [e for e in _emails(rng, size.emails) for _ in range(size.certs_per_email)]
        users = [u for u in _usernames(rng, size.usernames) for _ in range(size.certs_per_username)]
        self.github_certs = self._issue_all("github", github, rng)
        self.email_certs = self._issue_all("email", emails, rng)
        self.username_certs = self._issue_all("username", users, rng)
        self.bare_keys = tuple(self._bare_key(n) for n in range(size.bare_keys))
        self._digest_keys = tuple(k for k in self.bare_keys if k.hashedrekord_ok)
        self._ssh_keys = tuple(k for k in self.bare_keys if k.ssh is not None)
        self._minisign_keys = tuple(k for k in self.bare_keys if k.minisign is not None)
        if not (self.github_certs and self.email_certs and self.username_certs):
            raise ValueError("the pool needs GitHub, e-mail and username certificates")
        if not (self._digest_keys and self._ssh_keys and self._minisign_keys):
            raise ValueError("the pool needs at least 8 bare keys (ECDSA, Ed25519, RSA)")
        self._plants: dict[int, Plan] = {}
        self._planted_certs: dict[Identity, PoolCert] = {}
        self._planted_keys: dict[bytes, BareKey] = {}
        self._v1_table = _table(
            V1_MIX,
            {
                "hashedrekord/github": self._v1_plain("hashedrekord/github", self.github_certs),
                "hashedrekord/email": self._v1_plain("hashedrekord/email", self.email_certs),
                "hashedrekord/key": self._v1_plain("hashedrekord/key", self._digest_keys),
                "dsse/github": self._v1_dsse,
                "intoto/github": self._v1_intoto,
                "rekord/key": self._v1_rekord,
                "hashedrekord/username": self._v1_plain(
                    "hashedrekord/username", self.username_certs
                ),
            },
        )
        self._v2_table = _table(
            V2_MIX,
            {
                "hashedrekord/github": self._v2_plain("hashedrekord/github", self.github_certs),
                "hashedrekord/email": self._v2_plain("hashedrekord/email", self.email_certs),
                "hashedrekord/key": self._v2_plain("hashedrekord/key", self._digest_keys),
                "hashedrekord/dsse-pae": self._v2_pae,
                "dsse/github": self._v2_dsse,
                "hashedrekord/username": self._v2_plain(
                    "hashedrekord/username", self.username_certs
                ),
            },
        )

    # --- public API ---------------------------------------------------------------------------

    def v1_entry(self, index: int) -> SimEntry:
        """The Rekor v1 entry at ``index`` (a planted one if ``plant`` put one there)."""
        plan = self._plants.get(index)
        if plan is not None:
            return self._planted(index, plan, v2=False)
        d = self._digest(index)
        return self._v1_table[int.from_bytes(d[:4], "big") % 10_000](index, d)

    def v2_entry(self, index: int) -> SimEntry:
        """The Rekor v2 entry at ``index`` (a planted one if ``plant`` put one there)."""
        plan = self._plants.get(index)
        if plan is not None:
            return self._planted(index, plan, v2=True)
        d = self._digest(index)
        return self._v2_table[int.from_bytes(d[:4], "big") % 10_000](index, d)

    def plant(self, index: int, plan: Plan) -> None:
        """Make the entry at ``index`` the one ``plan`` describes, in v1 and v2 alike.

        Raises ``ValueError`` for a negative index, a malformed digest or an unusable key.
        """
        if index < 0:
            raise ValueError(f"index {index} is negative")
        if isinstance(plan, PlantDigest):
            _check_hex(plan.digest, plan.algorithm)
        elif plan.digest is not None:
            _check_hex(plan.digest)
        if isinstance(plan, PlantKey):
            self._plan_key(plan.public_key_pem)
        signer = plan.identity if isinstance(plan, PlantIdentity) else None
        if isinstance(plan, PlantImage | PlantDigest):
            signer = plan.signer
        if signer is not None:
            self.identity_certificate(signer)  # issued now, so that entries stay cheap
        self._plants[index] = plan

    def unplant(self, index: int) -> None:
        self._plants.pop(index, None)

    @property
    def plants(self) -> dict[int, Plan]:
        return dict(self._plants)

    def artifact_digest(self, index: int) -> str:
        """The hex sha256 the generated entry at ``index`` signs (its subject's, for DSSE)."""
        return self._digest(index).hex()

    def bare_key_pem(self, n: int) -> bytes:
        """The PEM public key of pool key ``n`` (key 0 is ECDSA P-256), e.g. to watch it."""
        return self.bare_keys[n].public_pem

    @property
    def certificates(self) -> tuple[PoolCert, ...]:
        return self.github_certs + self.email_certs + self.username_certs

    def identity_certificate(self, identity: Identity) -> PoolCert:
        """The certificate that planted entries of ``identity`` carry (issued on first use)."""
        cert = self._planted_certs.get(identity)
        if cert is None:
            n = len(self._planted_certs)
            when = self.start + timedelta(minutes=n % int(POOL_WINDOW.total_seconds() // 60))
            cert = self._issue(identity, f"planted:{n}:{identity!r}", when)
            self._planted_certs[identity] = cert
        return cert

    # --- pool ---------------------------------------------------------------------------------

    def _issue_all(
        self, kind: str, identities: Sequence[Identity], rng: random.Random
    ) -> tuple[PoolCert, ...]:
        window = int(POOL_WINDOW.total_seconds())
        certs = [
            self._issue(
                identity, f"{kind}:{n}", self.start + timedelta(seconds=rng.randrange(window))
            )
            for n, identity in enumerate(identities)
        ]
        rng.shuffle(certs)  # the busiest identities are any of them, not the first repo's
        return tuple(certs)

    def _issue(self, identity: Identity, label: str, not_before: datetime) -> PoolCert:
        key = derive_ec_key(self.seed, f"leaf:{label}", ec.SECP256R1()).public_key()
        cert: x509.Certificate
        if isinstance(identity, GitHubWorkflow):
            cert = self.ca.issue_github_actions(key, identity, not_before=not_before)
        elif isinstance(identity, EmailIdentity):
            cert = self.ca.issue_email(key, identity.email, identity.issuer, not_before=not_before)
        else:
            cert = self.ca.issue_username(
                key, identity.username, identity.issuer, not_before=not_before
            )
        der = cert.public_bytes(serialization.Encoding.DER)
        pem = cert.public_bytes(serialization.Encoding.PEM)
        name, subject = _describe(identity)
        predicate_type, predicate = _predicate(identity, not_before)
        return PoolCert(
            identity, der, b64encode(pem), b64encode(der), name, subject, predicate_type, predicate
        )

    def _bare_key(self, n: int) -> BareKey:
        algorithm = _KEY_PATTERN[n % len(_KEY_PATTERN)]
        public: PublicKeyTypes
        if algorithm == "ecdsa-p256":
            public = derive_ec_key(self.seed, f"bare:{n}", ec.SECP256R1()).public_key()
        elif algorithm == "ecdsa-p384":
            public = derive_ec_key(self.seed, f"bare:{n}", ec.SECP384R1()).public_key()
        elif algorithm == "ed25519":
            raw = seeded_bytes(self.seed, f"bare:{n}")
            public = ed25519.Ed25519PrivateKey.from_private_bytes(raw).public_key()
        else:
            public = seeded_rsa_public_key(self.seed, f"bare:{n}")
        return bare_key(public, f"key {n} {algorithm}", seeded_bytes(self.seed, f"minisign:{n}", 8))

    def _plan_key(self, pem: bytes) -> BareKey:
        key = self._planted_keys.get(pem)
        if key is None:
            key = bare_key(load_pem_public_key(pem), f"planted key {len(self._planted_keys)}")
            self._planted_keys[pem] = key
        return key

    # --- shared pieces ------------------------------------------------------------------------

    def _digest(self, index: int) -> bytes:
        if index < 0:
            raise ValueError(f"index {index} is negative")
        return hashlib.sha256((self._prefix + str(index)).encode()).digest()

    def _material(self, index: int, size: int, salt: str = "sig") -> bytes:
        return hashlib.shake_256(f"{self._prefix}{index}:{salt}".encode()).digest(size)

    def _sig_bytes(self, index: int, algorithm: str) -> bytes:
        """Bytes shaped like a signature of ``algorithm``: DER (r, s) for ECDSA."""
        if algorithm == "ecdsa-p256":
            return _ecdsa_shaped(self._material(index, 64))
        if algorithm == "ecdsa-p384":
            return _ecdsa_shaped(self._material(index, 96))
        if algorithm == "ed25519":
            return self._material(index, 64)
        raw = self._material(index, int(algorithm.rsplit("-", 1)[1]) // 8)  # RSA: modulus size
        return bytes((raw[0] & 0x7F,)) + raw[1:]

    def _sig(self, index: int, algorithm: str) -> str:
        return b64encode(self._sig_bytes(index, algorithm))

    @staticmethod
    def _statement(cert: PoolCert, name: str, digest_hex: str, alg: str = "sha256") -> bytes:
        """An in-toto v1 statement about one subject, with ``cert``'s predicate."""
        subject = json.dumps([{"name": name, "digest": {alg: digest_hex}}], separators=(",", ":"))
        return (
            f'{{"_type":"https://in-toto.io/Statement/v1","subject":{subject},'
            f'"predicateType":"{cert.predicate_type}","predicate":{cert.predicate}}}'
        ).encode()

    def _attestation(self, d: bytes) -> tuple[PoolCert, bytes, str]:
        """A pool GitHub certificate, a statement about the index's artifact, a label."""
        cert = _pick(self.github_certs, d)
        statement = self._statement(cert, cert.subject_name, d.hex())
        return cert, statement, f"{cert.label} {cert.subject_name}@sha256:{d.hex()}"

    # --- entry bodies -------------------------------------------------------------------------

    def _hr1(
        self, group: str, v: _Verifier, index: int, digest: str, *, alg: str = "sha256"
    ) -> SimEntry:
        sig = self._sig(index, v.algorithm)
        body = _V1_HASHEDREKORD % {"alg": alg, "digest": digest, "sig": sig, "key": v.v1_key}
        return SimEntry(body.encode(), None, "hashedrekord", "0.0.1", f"{group}: {v.label}")

    def _hr2(
        self, group: str, v: _Verifier, index: int, digest: bytes, *, alg: str = "SHA2_256"
    ) -> SimEntry:
        body = _V2_HASHEDREKORD[v.v2_field] % {
            "alg": alg,
            "digest": b64encode(digest),
            "sig": self._sig(index, v.algorithm),
            "details": v.key_details,
            "raw": v.v2_raw,
        }
        return SimEntry(body.encode(), None, "hashedrekord", "0.0.2", f"{group}: {v.label}")

    def _dsse1(
        self, group: str, v: _Verifier, index: int, statement: bytes, label: str
    ) -> SimEntry:
        sig = self._sig(index, v.algorithm)
        body = _V1_DSSE % {
            "envelope": _envelope_hash(statement, sig),
            "payload": hashlib.sha256(statement).hexdigest(),
            "sig": sig,
            "key": v.v1_key,
        }
        return SimEntry(body.encode(), None, "dsse", "0.0.1", f"{group}: {label}")

    def _intoto1(
        self, group: str, v: _Verifier, index: int, statement: bytes, label: str
    ) -> SimEntry:
        sig = self._sig(index, v.algorithm)
        body = _V1_INTOTO % {
            "envelope": _envelope_hash(statement, sig),
            "payload": hashlib.sha256(statement).hexdigest(),
            "sig": b64encode(sig.encode()),  # Rekor's intoto 0.0.2 quirk: base64 twice
            "key": v.v1_key,
        }
        return SimEntry(body.encode(), statement, "intoto", "0.0.2", f"{group}: {label}")

    def _dsse2(
        self, group: str, v: _Verifier, index: int, statement: bytes, label: str
    ) -> SimEntry:
        body = _V2_DSSE[v.v2_field] % {
            "payload": b64encode(hashlib.sha256(statement).digest()),
            "sig": self._sig(index, v.algorithm),
            "details": v.key_details,
            "raw": v.v2_raw,
        }
        return SimEntry(body.encode(), None, "dsse", "0.0.2", f"{group}: {label}")

    def _rekord1(self, key: BareKey, fmt: str, index: int, digest: str, group: str) -> SimEntry:
        if fmt == "ssh":
            key_text, sig = (key.ssh or "").encode(), _sshsig(key, self._material(index, 64))
        elif fmt == "minisign":
            stamp = int(self.start.timestamp()) + index
            sig = _minisig(self._material(index, 136), stamp, f"artifact-{index}.tar.gz")
            key_text = (key.minisign or "").encode()
        else:
            key_text, sig = key.public_pem, self._sig_bytes(index, key.algorithm)
        body = _V1_REKORD % {
            "digest": digest,
            "sig": b64encode(sig),
            "format": fmt,
            "key": b64encode(key_text),
        }
        return SimEntry(body.encode(), None, "rekord", "0.0.1", f"{group}: {fmt} {key.label}")

    # --- generated entries --------------------------------------------------------------------

    def _v1_plain(self, group: str, pool: Sequence[_Verifier]) -> _Builder:
        def build(index: int, d: bytes) -> SimEntry:
            return self._hr1(group, _pick(pool, d), index, d.hex())

        return build

    def _v2_plain(self, group: str, pool: Sequence[_Verifier]) -> _Builder:
        def build(index: int, d: bytes) -> SimEntry:
            return self._hr2(group, _pick(pool, d), index, d)

        return build

    def _v1_dsse(self, index: int, d: bytes) -> SimEntry:
        cert, statement, label = self._attestation(d)
        return self._dsse1("dsse/github", cert, index, statement, label)

    def _v1_intoto(self, index: int, d: bytes) -> SimEntry:
        cert, statement, label = self._attestation(d)
        return self._intoto1("intoto/github", cert, index, statement, label)

    def _v1_rekord(self, index: int, d: bytes) -> SimEntry:
        choice = d[12] % 20  # 60% x509, 25% ssh, 15% minisign
        if choice < 12:
            return self._rekord1(
                _pick_uniform(self.bare_keys, d), "x509", index, d.hex(), "rekord/key"
            )
        if choice < 17:
            return self._rekord1(
                _pick_uniform(self._ssh_keys, d), "ssh", index, d.hex(), "rekord/key"
            )
        key = _pick_uniform(self._minisign_keys, d)
        return self._rekord1(key, "minisign", index, d.hex(), "rekord/key")

    def _v2_pae(self, index: int, d: bytes) -> SimEntry:
        """DSSE as Rekor v2 logs it: a hashedrekord over the PAE of the envelope."""
        cert, statement, label = self._attestation(d)
        entry = self._hr2("hashedrekord/dsse-pae", cert, index, _pae_digest(statement))
        return replace(entry, description=f"hashedrekord/dsse-pae: {label}")

    def _v2_dsse(self, index: int, d: bytes) -> SimEntry:
        cert, statement, label = self._attestation(d)
        return self._dsse2("dsse/github", cert, index, statement, label)

    # --- planted entries ----------------------------------------------------------------------

    def _signer(self, signer: Identity | None, d: bytes) -> PoolCert:
        return _pick(self.github_certs, d) if signer is None else self.identity_certificate(signer)

    def _planted(self, index: int, plan: Plan, *, v2: bool) -> SimEntry:
        d = self._digest(index)
        if isinstance(plan, PlantKey):
            return self._planted_key(index, plan, plan.digest or d.hex(), v2=v2)
        if isinstance(plan, PlantDigest):
            cert = self._signer(plan.signer, d)
            if v2:
                alg = _V2_ALGORITHMS[plan.algorithm]
                return self._hr2("planted/digest", cert, index, bytes.fromhex(plan.digest), alg=alg)
            return self._hr1("planted/digest", cert, index, plan.digest, alg=plan.algorithm)
        if isinstance(plan, PlantImage):
            cert = self._signer(plan.signer, d)
            statement = self._statement(cert, plan.image, plan.digest)
            label = f"{cert.label} {plan.image}@sha256:{plan.digest}"
            build = self._dsse2 if v2 else self._intoto1
            return build("planted/image", cert, index, statement, label)
        return self._planted_identity(index, plan, plan.digest or d.hex(), v2=v2)

    def _planted_key(self, index: int, plan: PlantKey, digest: str, *, v2: bool) -> SimEntry:
        key = self._plan_key(plan.public_key_pem)
        if v2:
            return self._hr2("planted/key", key, index, bytes.fromhex(digest))
        if key.hashedrekord_ok:
            return self._hr1("planted/key", key, index, digest)
        return self._rekord1(key, "x509", index, digest, "planted/key")

    def _planted_identity(
        self, index: int, plan: PlantIdentity, digest: str, *, v2: bool
    ) -> SimEntry:
        cert = self.identity_certificate(plan.identity)
        if plan.kind == "hashedrekord" and v2:
            return self._hr2("planted/identity", cert, index, bytes.fromhex(digest))
        if plan.kind == "hashedrekord":
            return self._hr1("planted/identity", cert, index, digest)
        statement = self._statement(cert, cert.subject_name, digest)
        label = f"{cert.label} {cert.subject_name}@sha256:{digest}"
        build = self._dsse2 if v2 else self._dsse1 if plan.kind == "dsse" else self._intoto1
        return build("planted/identity", cert, index, statement, label)


def _table(mix: tuple[tuple[str, int], ...], builders: dict[str, _Builder]) -> list[_Builder]:
    """10,000 slots, each group's builder in as many as its share in basis points."""
    table: list[_Builder] = []
    for group, share in mix:
        table += [builders[group]] * share
    if len(table) != 10_000:
        raise ValueError("a mix must add up to 10,000 basis points")
    return table


def _envelope_hash(statement: bytes, sig: str) -> str:
    """sha256 of the DSSE envelope JSON a client would have submitted."""
    envelope = _ENVELOPE % (b64encode(statement), sig)
    return hashlib.sha256(envelope.encode()).hexdigest()


def _pae_digest(statement: bytes) -> bytes:
    return hashlib.sha256(_pae(INTOTO, statement)).digest()
