"""Entries before their signature: each kind's body, what its signature signs, and with which key.

A ``Draft`` is two steps: ``sign`` makes the entry's signature (``entry_signing.py``; the
costly part) and ``render`` fills the body's template (``bodies.py``) around a signature (the
cheap part). A log signs each entry once and keeps the signature; it renders the entry again
whenever it serves it. One signature per entry: for minisign the signature and the global
signature over the trusted comment together, for SSH the SSHSIG ``signature`` field.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from monitor.core.encoding import b64encode
from monitor.sim.bodies import (
    INTOTO,
    V1_DSSE,
    V1_HASHEDREKORD,
    V1_INTOTO,
    V1_REKORD,
    V2_DSSE,
    V2_HASHEDREKORD,
    envelope_hash,
)
from monitor.sim.entry_signing import (
    minisig_file,
    minisign_signature,
    pae,
    sign_digest,
    sign_message,
    ssh_signature,
    sshsig_armor,
)
from monitor.sim.keys import BareKey, SigningKey
from monitor.sim.pool import PoolCert

_V2_ALGORITHMS = {"sha256": "SHA2_256", "sha384": "SHA2_384", "sha512": "SHA2_512"}


@dataclass(frozen=True)
class SimEntry:
    """One entry: the body (the leaf bytes) and, for intoto, Rekor v1's ``attestation.data``."""

    body: bytes
    attestation: bytes | None
    kind: str
    api_version: str
    description: str
    # DSSE (v1 dsse and intoto, v2 dsse and the hashedrekord over a PAE): the envelope's
    # payload, which a client's bundle carries and the log does not keep, so that a test can
    # check the signature over its PAE
    payload: bytes | None = None


@dataclass(frozen=True, slots=True)
class Draft:
    """An entry before its signature: ``sign`` makes the signature (the costly part), ``render``
    the entry that carries it (cheap), so that a log can sign once and render many times."""

    sign: Callable[[], bytes]
    render: Callable[[bytes], SimEntry]

    def build(self) -> SimEntry:
        return self.render(self.sign())


class Verifier(Protocol):
    """What an entry needs of its signer: a pool certificate or a bare key."""

    @property
    def key(self) -> SigningKey: ...
    @property
    def v1_key(self) -> str: ...
    @property
    def v2_raw(self) -> str: ...
    @property
    def v2_field(self) -> str: ...
    @property
    def key_details(self) -> str: ...
    @property
    def label(self) -> str: ...


def in_toto_statement(predicate_type: str, predicate: str, name: str, digest_hex: str) -> bytes:
    """An in-toto v1 statement about one subject (a sha256 digest)."""
    subject = json.dumps([{"name": name, "digest": {"sha256": digest_hex}}], separators=(",", ":"))
    return (
        f'{{"_type":"https://in-toto.io/Statement/v1","subject":{subject},'
        f'"predicateType":"{predicate_type}","predicate":{predicate}}}'
    ).encode()


def cert_statement(cert: PoolCert, name: str, digest_hex: str) -> bytes:
    """A statement about ``name`` with ``cert``'s predicate, as its identity would sign it."""
    return in_toto_statement(cert.predicate_type, cert.predicate, name, digest_hex)


def _sign_pae(key: SigningKey, payload: bytes) -> bytes:
    return sign_message(key, pae(INTOTO, payload))


# --- hashedrekord: a signature over the artifact's digest -----------------------------------------


def hashedrekord_v1(description: str, v: Verifier, digest: bytes, alg: str = "sha256") -> Draft:
    def render(sig: bytes) -> SimEntry:
        body = V1_HASHEDREKORD % {
            "alg": alg,
            "digest": digest.hex(),
            "sig": b64encode(sig),
            "key": v.v1_key,
        }
        return SimEntry(body.encode(), None, "hashedrekord", "0.0.1", description)

    return Draft(partial(sign_digest, v.key, digest, alg), render)


def hashedrekord_v2(
    description: str,
    v: Verifier,
    digest: bytes,
    alg: str = "sha256",
    payload: bytes | None = None,  # of the DSSE envelope, when the digest is of its PAE
) -> Draft:
    def render(sig: bytes) -> SimEntry:
        body = V2_HASHEDREKORD[v.v2_field] % {
            "alg": _V2_ALGORITHMS[alg],
            "digest": b64encode(digest),
            "sig": b64encode(sig),
            "details": v.key_details,
            "raw": v.v2_raw,
        }
        return SimEntry(body.encode(), None, "hashedrekord", "0.0.2", description, payload)

    return Draft(partial(sign_digest, v.key, digest, alg), render)


# --- DSSE: a signature over the PAE of the statement ---------------------------------------------


def dsse_v1(description: str, v: Verifier, payload: bytes) -> Draft:
    payload_hash = hashlib.sha256(payload).hexdigest()

    def render(sig: bytes) -> SimEntry:
        text = b64encode(sig)
        body = V1_DSSE % {
            "envelope": envelope_hash(payload, text),
            "payload": payload_hash,
            "sig": text,
            "key": v.v1_key,
        }
        return SimEntry(body.encode(), None, "dsse", "0.0.1", description, payload)

    return Draft(partial(_sign_pae, v.key, payload), render)


def intoto_v1(description: str, v: Verifier, payload: bytes) -> Draft:
    """intoto 0.0.2, with the statement as Rekor v1's attestation."""
    payload_hash = hashlib.sha256(payload).hexdigest()

    def render(sig: bytes) -> SimEntry:
        text = b64encode(sig)
        body = V1_INTOTO % {
            "envelope": envelope_hash(payload, text),
            "payload": payload_hash,
            "sig": b64encode(text.encode()),  # Rekor's intoto 0.0.2 quirk: base64 twice
            "key": v.v1_key,
        }
        return SimEntry(body.encode(), payload, "intoto", "0.0.2", description, payload)

    return Draft(partial(_sign_pae, v.key, payload), render)


def dsse_v2(description: str, v: Verifier, payload: bytes) -> Draft:
    payload_hash = b64encode(hashlib.sha256(payload).digest())

    def render(sig: bytes) -> SimEntry:
        body = V2_DSSE[v.v2_field] % {
            "payload": payload_hash,
            "sig": b64encode(sig),
            "details": v.key_details,
            "raw": v.v2_raw,
        }
        return SimEntry(body.encode(), None, "dsse", "0.0.2", description, payload)

    return Draft(partial(_sign_pae, v.key, payload), render)


def pae_hashedrekord_v2(description: str, v: Verifier, payload: bytes) -> Draft:
    """DSSE as Rekor v2 logs it: a hashedrekord whose digest is the sha256 of the envelope's
    PAE and whose signature is the envelope's (over the PAE)."""
    digest = hashlib.sha256(pae(INTOTO, payload)).digest()
    return hashedrekord_v2(description, v, digest, payload=payload)


# --- rekord: a signature over the artifact's bytes -----------------------------------------------


def rekord_v1(
    description: str, key: BareKey, fmt: str, artifact: bytes, trusted_comment: str = ""
) -> Draft:
    """A rekord of ``artifact`` in ``fmt``: x509 (the key's PEM), ssh or minisign (with its
    ``trusted_comment``, signed too)."""
    sign: Callable[[], bytes]
    wrap: Callable[[bytes], bytes]
    if fmt == "ssh" and key.ssh is not None and key.ssh_blob is not None:
        public = key.ssh.encode()
        sign = partial(ssh_signature, key.key, artifact)
        wrap = partial(sshsig_armor, key.ssh_blob)
    elif fmt == "minisign" and key.minisign is not None and key.minisign_id is not None:
        public = key.minisign.encode()
        sign = partial(minisign_signature, key.key, artifact, trusted_comment)
        wrap = partial(_minisig, key.minisign_id, trusted_comment)
    elif fmt == "x509":
        public = key.public_pem
        sign = partial(sign_message, key.key, artifact)
        wrap = bytes
    else:
        raise ValueError(f"{key.label} has no {fmt} encoding")
    digest = hashlib.sha256(artifact).hexdigest()
    public_b64 = b64encode(public)

    def render(sig: bytes) -> SimEntry:
        body = V1_REKORD % {
            "digest": digest,
            "sig": b64encode(wrap(sig)),
            "format": fmt,
            "key": public_b64,
        }
        return SimEntry(body.encode(), None, "rekord", "0.0.1", description)

    return Draft(sign, render)


def _minisig(key_id: bytes, comment: str, signatures: bytes) -> bytes:
    return minisig_file(key_id, signatures, comment)
