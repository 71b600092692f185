"""The simulator's pool of signers: identities and their Fulcio-like leaf certificates.

GitHub Actions workflow runs (repositories with refs, runs and sometimes a reusable workflow),
e-mail and username identities, all drawn from a seeded ``random.Random``; each gets a leaf
certificate from ``SimCA`` whose private key comes from ``derive_ec_key(seed, "leaf:<label>")``,
so that the entries it signs carry real signatures. In-toto statements of an identity carry
the predicate its kind of signer would write (SLSA provenance for workflows).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from monitor.core.encoding import b64encode
from monitor.sim.ca import GitHubWorkflow, SimCA, derive_ec_key

SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
COSIGN_ATTESTATION = "https://cosign.sigstore.dev/attestation/v1"
POOL_WINDOW = timedelta(days=30)  # pool certificates are issued within this of ``start``


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
    """A leaf certificate, its private key, and everything an entry needs of it, encoded once."""

    identity: Identity
    der: bytes
    v1_key: str  # Rekor v1: base64 of the PEM
    v2_raw: str  # Rekor v2: rawBytes, base64 of the DER
    label: str  # the identity, for descriptions
    subject_name: str  # what its in-toto statements are about
    predicate_type: str
    predicate: str  # the statement's predicate, serialised
    key: ec.EllipticCurvePrivateKey = field(compare=False, repr=False)  # signs its entries
    v2_field: str = "x509Certificate"
    key_details: str = "PKIX_ECDSA_P256_SHA_256"
    algorithm: str = "ecdsa-p256"  # of the leaf key

    @property
    def fingerprint(self) -> str:
        return f"sha256:{hashlib.sha256(self.der).hexdigest()}"


def issue(ca: SimCA, seed: int, identity: Identity, label: str, not_before: datetime) -> PoolCert:
    """A leaf certificate for ``identity``; its key is derived from ``seed`` and ``label``."""
    key = derive_ec_key(seed, f"leaf:{label}", ec.SECP256R1())
    public = key.public_key()
    if isinstance(identity, GitHubWorkflow):
        cert = ca.issue_github_actions(public, identity, not_before=not_before)
    elif isinstance(identity, EmailIdentity):
        cert = ca.issue_email(public, identity.email, identity.issuer, not_before=not_before)
    else:
        cert = ca.issue_username(public, identity.username, identity.issuer, not_before=not_before)
    der = cert.public_bytes(serialization.Encoding.DER)
    pem = cert.public_bytes(serialization.Encoding.PEM)
    name, subject = describe(identity)
    predicate_type, predicate_text = predicate(identity, not_before)
    return PoolCert(
        identity=identity,
        der=der,
        v1_key=b64encode(pem),
        v2_raw=b64encode(der),
        label=name,
        subject_name=subject,
        predicate_type=predicate_type,
        predicate=predicate_text,
        key=key,
    )


def issue_all(
    ca: SimCA,
    seed: int,
    kind: str,
    identities: Sequence[Identity],
    *,
    rng: random.Random,
    start: datetime,
) -> tuple[PoolCert, ...]:
    """Certificates for ``identities``, issued within ``POOL_WINDOW`` of ``start``, shuffled."""
    window = int(POOL_WINDOW.total_seconds())
    certs = [
        issue(ca, seed, identity, f"{kind}:{n}", start + timedelta(seconds=rng.randrange(window)))
        for n, identity in enumerate(identities)
    ]
    rng.shuffle(certs)  # the busiest identities are any of them, not the first repo's
    return tuple(certs)


# --- identities ---------------------------------------------------------------------------------

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


def github_workflows(rng: random.Random, size: PoolSize) -> list[GitHubWorkflow]:
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


def emails(rng: random.Random, count: int) -> list[EmailIdentity]:
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


def usernames(rng: random.Random, count: int) -> list[UsernameIdentity]:
    out: list[UsernameIdentity] = []
    for n in range(count):
        domain, issuer = rng.choice(_USERNAME_ISSUERS)
        out.append(UsernameIdentity(f"{rng.choice(_FIRST)}{n}!{domain}", issuer))
    return out


def predicate(identity: Identity, not_before: datetime) -> tuple[str, str]:
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


def describe(identity: Identity) -> tuple[str, str]:
    """(label, subject name) of an identity."""
    if isinstance(identity, GitHubWorkflow):
        return identity.san_uri, f"ghcr.io/{identity.repository.lower()}"
    if isinstance(identity, EmailIdentity):
        local = identity.email.split("@", 1)[0]
        return f"{identity.email} via {identity.issuer}", f"pkg:generic/{local}-artifact"
    user = identity.username.split("!", 1)[0]
    return f"{identity.username} via {identity.issuer}", f"pkg:generic/{user}-artifact"
