"""The signing record: what one Rekor entry says about who signed what.

Every entry the log serves becomes exactly one ``ParseResult``: a ``SigningRecord`` (known
kinds, and unknown kinds recorded as such) or a ``MalformedEntry`` (with the reason and the raw
bytes). Field names here are the stable names of ``tlog-monitor inspect --json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Digest:
    """A hash: ``algorithm`` is lower-case (``sha256``, ``sha384``, ``sha512``, ``sha1``,
    ``md5``), ``value`` lower-case hex."""

    algorithm: str
    value: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.value}"


class SanType(StrEnum):
    EMAIL = "email"
    URI = "uri"
    USERNAME = "username"  # otherName 1.3.6.1.4.1.57264.1.7
    DNS = "dns"
    IP = "ip"
    OTHER = "other"  # any other otherName: value is "<type OID>:<hex of the value>"


@dataclass(frozen=True, slots=True)
class SubjectAltName:
    type: SanType
    value: str


@dataclass(frozen=True, slots=True)
class CertExtension:
    """A certificate extension: Fulcio ones by name (``source-repository-uri``), others with
    ``name`` None. ``value`` is the decoded text for Fulcio extensions, hex otherwise."""

    oid: str
    name: str | None
    value: str
    critical: bool = False


class ChainStatus(StrEnum):
    """Whether a certificate chains to a Fulcio CA of the trusted root."""

    VERIFIED = "verified"  # signed by a Fulcio CA, issued while that CA was valid
    UNTRUSTED = "untrusted"  # does not chain: spam or impersonation looks exactly like this
    UNCHECKED = "unchecked"  # not checked yet (the check costs a signature verification)


@dataclass(frozen=True, slots=True)
class KeySigner:
    """A bare public key (or the key inside a certificate).

    ``key_type``: ``ecdsa``, ``rsa``, ``ed25519``, ``pgp``, ``ssh``, ``minisign``, ``unknown``.
    ``fingerprint``: ``sha256:<hex>`` of the DER SubjectPublicKeyInfo for PKIX keys; for PGP
    the hex v4/v5 fingerprint, for SSH ``SHA256:<unpadded base64>``, for minisign the key ID.
    """

    key_type: str
    fingerprint: str
    size: int | None = None  # bits (RSA) or curve size
    curve: str | None = None  # e.g. P-256, Ed25519
    details: tuple[tuple[str, str], ...] = ()  # e.g. PGP user IDs, SSH comment


@dataclass(frozen=True, slots=True)
class CertificateSigner:
    """A certificate, usually a short-lived Fulcio certificate naming an OIDC identity."""

    sans: tuple[SubjectAltName, ...]
    issuer: str | None  # OIDC issuer: extension .1.8, else legacy .1.1
    extensions: tuple[CertExtension, ...]
    serial: str  # hex
    not_before: datetime
    not_after: datetime
    issuer_dn: str
    subject_dn: str
    fingerprint: str  # sha256:<hex> of the DER certificate
    key: KeySigner
    chain: ChainStatus = ChainStatus.UNCHECKED
    der: bytes = field(default=b"", repr=False, compare=False)

    def extension(self, name: str) -> str | None:
        """The value of a Fulcio extension by name or of any extension by dotted OID."""
        for ext in self.extensions:
            if name in (ext.name, ext.oid):
                return ext.value
        return None


Signer = CertificateSigner | KeySigner


@dataclass(frozen=True, slots=True)
class Subject:
    """An in-toto subject: an artifact name and its digests."""

    name: str
    digests: tuple[Digest, ...]


class StatementSource(StrEnum):
    """Where in-toto subjects came from, and whether they were checked."""

    NONE = "none"
    ATTESTATION = "attestation"  # Rekor v1 attestation.data, sha256 equal to payloadHash
    ENVELOPE = "envelope"  # a DSSE envelope held beside the entry (bundle), hash checked


@dataclass(frozen=True, slots=True)
class SigningRecord:
    """One parsed log entry. ``known`` is False for kinds or versions this parser does not
    know: they are kept (kind, version, raw body) but say nothing about signers."""

    log: str
    index: int
    kind: str
    api_version: str
    integrated_time: int | None = None
    known: bool = True
    signers: tuple[Signer, ...] = ()
    artifact_digests: tuple[Digest, ...] = ()
    payload_hash: Digest | None = None  # DSSE / in-toto payload
    envelope_hash: Digest | None = None
    payload_type: str | None = None
    subjects: tuple[Subject, ...] = ()
    subjects_source: StatementSource = StatementSource.NONE
    notes: tuple[str, ...] = ()  # facts worth showing a person, e.g. an attestation mismatch
    raw_body: bytes = field(default=b"", repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class MalformedEntry:
    """An entry that could not be parsed. Nothing is dropped: the raw bytes are kept."""

    log: str
    index: int
    reason: str
    raw_body: bytes = field(repr=False, compare=False)
    kind: str | None = None
    api_version: str | None = None


ParseResult = SigningRecord | MalformedEntry
