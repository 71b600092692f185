"""Seeded, varied Rekor entries for the simulator, cheap to serve, each signed as Rekor requires.

Construction builds a pool: GitHub Actions workflow runs, e-mail and username identities with
their Fulcio-like leaf certificates (``pool.py``, from ``SimCA``), and bare keys (ECDSA P-256
and P-384, Ed25519, RSA; ``keys.py``), every private key derived from the seed. After that
every entry is built from ``(seed, index)`` alone, so any index can be rebuilt at any time and
its leaf hash never changes:

* the artifact of the entry at ``index`` is the UTF-8 text ``f"{seed}:{index}"`` (``artifact``)
  and its digest ``sha256(f"{seed}:{index}")``; the digest's bytes also choose the entry's kind
  and signer (the signer skewed towards the start of the pool, as real logs have busy repos);
* every entry carries a signature that verifies with the key or certificate it names, since
  Rekor refuses any other (``entry_signing.py``): hashedrekord over the artifact digest, DSSE
  and in-toto over the PAE of their statement (about the artifact), rekord over the artifact
  bytes (x509, a real SSHSIG, a real minisign signature). Every one is deterministic (RFC 6979
  ECDSA, Ed25519, PKCS#1 v1.5), so a rebuilt entry has the same bytes;
* bodies are canonical JSON exactly as Rekor v1 and v2 write them (REKOR-FORMATS.md sections 4
  and 6.4), filled into templates made by ``json.dumps`` itself (``bodies.py``).

Signing costs several times what the rest of an entry does (ECDSA P-256 and Ed25519 about
30 us, RSA-2048 and P-384 about 300 us, the rest about 10 us), and the simulator shares its
machine with the monitor it serves. So an entry comes as a ``Draft`` (``drafts.py``): ``sign``
makes the signature, ``render`` the entry that carries it. A log signs each entry once, when
it is appended, and keeps the signature (``logs.SignatureColumn``, about 80 bytes an entry);
serving renders the entry again around the kept signature and never signs. Measured with
``bench/bench_sim.py`` (50,000 entries a log, one core): appending went from about 90,000 to
about 20,000 entries a second (starting a 1,000,000-entry simulator takes about a minute a
log), serving Rekor v2 entry bundles stayed at about 120,000 entries a second, and the
simulator's CPU while the daemon benchmark backfills it did not grow. ``v1_entry`` and
``v2_entry`` do both steps, for callers that want one entry.

Mixes (basis points) are ``V1_MIX`` and ``V2_MIX``; an entry's ``description`` starts with its
group (``"hashedrekord/github: <identity>"``). ``plant`` replaces the entry at an index by one
naming a given identity, key, image or digest: the needle a monitor test then looks for. A
planted key is a private key, which signs the entry. An Ed25519 key signs messages, never a
digest: its entry is a rekord (x509) over the index's own artifact in Rekor v1 and a dsse over
a statement about that artifact in Rekor v2; a digest planted with one is refused, since no
artifact stands behind a bare digest.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from cryptography.hazmat.primitives import serialization

from monitor.sim.bodies import INTOTO
from monitor.sim.ca import SimCA
from monitor.sim.drafts import (
    Draft,
    SimEntry,
    Verifier,
    cert_statement,
    dsse_v1,
    dsse_v2,
    hashedrekord_v1,
    hashedrekord_v2,
    in_toto_statement,
    intoto_v1,
    pae_hashedrekord_v2,
    rekord_v1,
)
from monitor.sim.keys import BareKey, bare_key, load_signing_key, pool_key
from monitor.sim.pool import (
    COSIGN_ATTESTATION,
    POOL_WINDOW,
    EmailIdentity,
    Identity,
    PoolCert,
    PoolSize,
    UsernameIdentity,
    emails,
    github_workflows,
    issue,
    issue_all,
    usernames,
)

__all__ = [
    "INTOTO",
    "V1_MIX",
    "V2_MIX",
    "BareKey",
    "Draft",
    "EmailIdentity",
    "EntryFactory",
    "Identity",
    "Plan",
    "PlantDigest",
    "PlantEntry",
    "PlantIdentity",
    "PlantImage",
    "PlantKey",
    "PoolCert",
    "PoolSize",
    "SimEntry",
    "UsernameIdentity",
    "cert_statement",
]

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


# --- plans ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlantIdentity:
    """An entry signed by a certificate for ``identity`` (issued once per identity)."""

    identity: Identity
    kind: Literal["hashedrekord", "dsse", "intoto"] = "hashedrekord"
    digest: str | None = None  # hex sha256 of the artifact; None: the index's own


@dataclass(frozen=True)
class PlantKey:
    """An entry signed by this private key (PEM, PKCS#8, unencrypted): a hashedrekord for
    ECDSA and RSA keys; for Ed25519 a rekord in v1 and a dsse in v2, over the index's own
    artifact (so no ``digest``)."""

    private_key_pem: bytes
    digest: str | None = None


@dataclass(frozen=True)
class PlantImage:
    """A container image attestation: v1 intoto with the statement as attestation, v2 dsse."""

    image: str  # e.g. ghcr.io/acme/app
    digest: str  # hex sha256 of the image manifest
    signer: Identity | None = None  # None: the pool's GitHub identity for the index


@dataclass(frozen=True)
class PlantDigest:
    """A hashedrekord for this artifact digest, signed by a certificate."""

    digest: str
    algorithm: Literal["sha256", "sha384", "sha512"] = "sha256"
    signer: Identity | None = None


@dataclass(frozen=True)
class PlantEntry:
    """A Rekor v1 entry made and signed elsewhere (an image signature), logged as it is. The
    Rekor v2 log keeps its generated entry at that index."""

    entry: SimEntry


Plan = PlantIdentity | PlantKey | PlantImage | PlantDigest | PlantEntry

_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


def _check_hex(value: str, algorithm: str = "sha256") -> None:
    want = _HEX_LENGTHS[algorithm]
    if len(value) != want or value.strip("0123456789abcdef"):
        raise ValueError(f"{algorithm} digest must be {want} lower-case hex digits: {value!r}")


# --- the factory --------------------------------------------------------------------------------

_Builder = Callable[[int, bytes], Draft]
_V = TypeVar("_V", bound=Verifier)


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
        github = github_workflows(rng, size)
        mails = [e for e in emails(rng, size.emails) for _ in range(size.certs_per_email)]
        users = [u for u in usernames(rng, size.usernames) for _ in range(size.certs_per_username)]
        self.github_certs = issue_all(ca, seed, "github", github, rng=rng, start=self.start)
        self.email_certs = issue_all(ca, seed, "email", mails, rng=rng, start=self.start)
        self.username_certs = issue_all(ca, seed, "username", users, rng=rng, start=self.start)
        self.bare_keys = tuple(pool_key(seed, n) for n in range(size.bare_keys))
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

    def v1_draft(self, index: int) -> Draft:
        """The Rekor v1 entry at ``index`` before its signature (a planted one if planted)."""
        plan = self._plants.get(index)
        if isinstance(plan, PlantEntry):
            entry = plan.entry
            return Draft(lambda: b"", lambda _sig: entry)  # signed already
        if plan is not None:
            return self._planted(index, plan, v2=False)
        d = self._digest(index)
        return self._v1_table[int.from_bytes(d[:4], "big") % 10_000](index, d)

    def v2_draft(self, index: int) -> Draft:
        """The Rekor v2 entry at ``index`` before its signature (a planted one if planted)."""
        plan = self._plants.get(index)
        if plan is not None and not isinstance(plan, PlantEntry):  # a v1 entry stays in v1
            return self._planted(index, plan, v2=True)
        d = self._digest(index)
        return self._v2_table[int.from_bytes(d[:4], "big") % 10_000](index, d)

    def v1_entry(self, index: int) -> SimEntry:
        """The Rekor v1 entry at ``index``, signed (a log keeps signatures: ``v1_draft``)."""
        return self.v1_draft(index).build()

    def v2_entry(self, index: int) -> SimEntry:
        """The Rekor v2 entry at ``index``, signed (a log keeps signatures: ``v2_draft``)."""
        return self.v2_draft(index).build()

    def plant(self, index: int, plan: Plan) -> None:
        """Make the entry at ``index`` the one ``plan`` describes, in v1 and v2 alike. A log
        keeps the signatures of the entries it holds: plant only beyond its end.

        Raises ``ValueError`` for a negative index, a malformed digest, a key that cannot sign
        (a public key, an unsupported algorithm) or a digest for an Ed25519 key.
        """
        if index < 0:
            raise ValueError(f"index {index} is negative")
        if isinstance(plan, PlantEntry):
            self._plants[index] = plan
            return
        if isinstance(plan, PlantDigest):
            _check_hex(plan.digest, plan.algorithm)
        elif plan.digest is not None:
            _check_hex(plan.digest)
        if isinstance(plan, PlantKey):
            key = self._plan_key(plan.private_key_pem)
            if plan.digest is not None and not key.hashedrekord_ok:
                raise ValueError(
                    "an Ed25519 key signs the artifact itself, not a digest, and a planted "
                    "digest has no artifact behind it: plant the key without a digest (it "
                    "then signs the index's own artifact) or use an ECDSA or RSA key"
                )
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

    def artifact(self, index: int) -> bytes:
        """The artifact the generated entry at ``index`` is about: ``f"{seed}:{index}"``."""
        if index < 0:
            raise ValueError(f"index {index} is negative")
        return (self._prefix + str(index)).encode()

    def artifact_digest(self, index: int) -> str:
        """The hex sha256 of ``artifact(index)`` (its subject's digest, for DSSE)."""
        return self._digest(index).hex()

    def bare_key_pem(self, n: int) -> bytes:
        """The PEM public key of pool key ``n`` (key 0 is ECDSA P-256), e.g. to watch it."""
        return self.bare_keys[n].public_pem

    def bare_key_private_pem(self, n: int) -> bytes:
        """The private key of pool key ``n`` (PKCS#8 PEM), e.g. to plant an entry it signs."""
        return self.bare_keys[n].key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def certificates(self) -> tuple[PoolCert, ...]:
        return self.github_certs + self.email_certs + self.username_certs

    def identity_certificate(self, identity: Identity) -> PoolCert:
        """The certificate that planted entries of ``identity`` carry (issued on first use)."""
        cert = self._planted_certs.get(identity)
        if cert is None:
            n = len(self._planted_certs)
            when = self.start + timedelta(minutes=n % int(POOL_WINDOW.total_seconds() // 60))
            cert = issue(self.ca, self.seed, identity, f"planted:{n}:{identity!r}", when)
            self._planted_certs[identity] = cert
        return cert

    # --- shared pieces ------------------------------------------------------------------------

    def _plan_key(self, pem: bytes) -> BareKey:
        key = self._planted_keys.get(pem)
        if key is None:
            key = bare_key(load_signing_key(pem), f"planted key {len(self._planted_keys)}")
            self._planted_keys[pem] = key
        return key

    def _digest(self, index: int) -> bytes:
        return hashlib.sha256(self.artifact(index)).digest()

    def _attestation(self, d: bytes) -> tuple[PoolCert, bytes, str]:
        """A pool GitHub certificate, a statement about the index's artifact, a label."""
        cert = _pick(self.github_certs, d)
        statement = cert_statement(cert, cert.subject_name, d.hex())
        return cert, statement, f"{cert.label} {cert.subject_name}@sha256:{d.hex()}"

    def _rekord1(self, key: BareKey, fmt: str, index: int, group: str) -> Draft:
        """A rekord over the index's own artifact."""
        stamp = int(self.start.timestamp()) + index
        comment = f"timestamp:{stamp}\tfile:artifact-{index}.tar.gz\thashed"  # minisign's
        description = f"{group}: {fmt} {key.label}"
        return rekord_v1(description, key, fmt, self.artifact(index), comment)

    # --- generated entries --------------------------------------------------------------------

    def _v1_plain(self, group: str, pool: Sequence[Verifier]) -> _Builder:
        def build(index: int, d: bytes) -> Draft:
            v = _pick(pool, d)
            return hashedrekord_v1(f"{group}: {v.label}", v, d)

        return build

    def _v2_plain(self, group: str, pool: Sequence[Verifier]) -> _Builder:
        def build(index: int, d: bytes) -> Draft:
            v = _pick(pool, d)
            return hashedrekord_v2(f"{group}: {v.label}", v, d)

        return build

    def _v1_dsse(self, index: int, d: bytes) -> Draft:
        cert, statement, label = self._attestation(d)
        return dsse_v1(f"dsse/github: {label}", cert, statement)

    def _v1_intoto(self, index: int, d: bytes) -> Draft:
        cert, statement, label = self._attestation(d)
        return intoto_v1(f"intoto/github: {label}", cert, statement)

    def _v1_rekord(self, index: int, d: bytes) -> Draft:
        choice = d[12] % 20  # 60% x509, 25% ssh, 15% minisign
        if choice < 12:
            return self._rekord1(_pick_uniform(self.bare_keys, d), "x509", index, "rekord/key")
        if choice < 17:
            return self._rekord1(_pick_uniform(self._ssh_keys, d), "ssh", index, "rekord/key")
        key = _pick_uniform(self._minisign_keys, d)
        return self._rekord1(key, "minisign", index, "rekord/key")

    def _v2_pae(self, index: int, d: bytes) -> Draft:
        cert, statement, label = self._attestation(d)
        return pae_hashedrekord_v2(f"hashedrekord/dsse-pae: {label}", cert, statement)

    def _v2_dsse(self, index: int, d: bytes) -> Draft:
        cert, statement, label = self._attestation(d)
        return dsse_v2(f"dsse/github: {label}", cert, statement)

    # --- planted entries ----------------------------------------------------------------------

    def _signer(self, signer: Identity | None, d: bytes) -> PoolCert:
        return _pick(self.github_certs, d) if signer is None else self.identity_certificate(signer)

    def _planted(
        self, index: int, plan: PlantIdentity | PlantKey | PlantImage | PlantDigest, *, v2: bool
    ) -> Draft:
        d = self._digest(index)
        hashedrekord = hashedrekord_v2 if v2 else hashedrekord_v1
        if isinstance(plan, PlantKey):
            return self._planted_key(index, plan, v2=v2)
        if isinstance(plan, PlantDigest):
            cert = self._signer(plan.signer, d)
            digest = bytes.fromhex(plan.digest)
            return hashedrekord(f"planted/digest: {cert.label}", cert, digest, plan.algorithm)
        if isinstance(plan, PlantImage):
            cert = self._signer(plan.signer, d)
            statement = cert_statement(cert, plan.image, plan.digest)
            label = f"planted/image: {cert.label} {plan.image}@sha256:{plan.digest}"
            return (dsse_v2 if v2 else intoto_v1)(label, cert, statement)
        cert = self.identity_certificate(plan.identity)
        digest = bytes.fromhex(plan.digest) if plan.digest else d
        if plan.kind == "hashedrekord":
            return hashedrekord(f"planted/identity: {cert.label}", cert, digest)
        statement = cert_statement(cert, cert.subject_name, digest.hex())
        label = f"planted/identity: {cert.label} {cert.subject_name}@sha256:{digest.hex()}"
        build = dsse_v2 if v2 else dsse_v1 if plan.kind == "dsse" else intoto_v1
        return build(label, cert, statement)

    def _planted_key(self, index: int, plan: PlantKey, *, v2: bool) -> Draft:
        key = self._plan_key(plan.private_key_pem)
        if key.hashedrekord_ok:
            digest = bytes.fromhex(plan.digest) if plan.digest else self._digest(index)
            build = hashedrekord_v2 if v2 else hashedrekord_v1
            return build(f"planted/key: {key.label}", key, digest)
        # Ed25519 (``plant`` refused a digest): the index's own artifact, signed whole
        if not v2:
            return self._rekord1(key, "x509", index, "planted/key")
        name = f"artifact-{index}.tar.gz"
        stamp = (self.start + timedelta(seconds=index)).strftime("%Y-%m-%dT%H:%M:%SZ")
        predicate = json.dumps({"Data": "", "Timestamp": stamp}, separators=(",", ":"))
        about = in_toto_statement(COSIGN_ATTESTATION, predicate, name, self.artifact_digest(index))
        return dsse_v2(f"planted/key: {key.label} {name}", key, about)


def _table(mix: tuple[tuple[str, int], ...], builders: dict[str, _Builder]) -> list[_Builder]:
    """10,000 slots, each group's builder in as many as its share in basis points."""
    table: list[_Builder] = []
    for group, share in mix:
        table += [builders[group]] * share
    if len(table) != 10_000:
        raise ValueError("a mix must add up to 10,000 basis points")
    return table
