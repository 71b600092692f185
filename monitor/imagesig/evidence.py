"""Sigstore bundles for sigstore-python to verify, built from what cosign stored.

A bundle referrer is a bundle already. A legacy ``.sig`` or ``.att`` layer carries the leaf
certificate and Rekor v1's promise (the ``dev.sigstore.cosign/bundle`` SET) beside the
payload: that is a v0.1 bundle, whose entry sigstore-python 4 accepts only together with an
inclusion proof and a signed checkpoint (``TransparencyLogEntry._validate``), so the caller
supplies the proof, from the log or from the monitor's own verified tree (``InclusionProof``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from monitor.core.encoding import b64encode, hexdecode_strict
from monitor.core.errors import MalformedInputError
from monitor.core.jsonread import JsonReader
from monitor.imagesig.artifacts import CosignBundle, load_json
from monitor.tlog.merkle import leaf_hash

BUNDLE_V01 = "application/vnd.dev.sigstore.bundle+json;version=0.1"
MAX_PROOF_HASHES = 64  # a tree of 2^64 leaves needs fewer


@dataclass(frozen=True)
class InclusionProof:
    """The log's proof that an entry is in a signed tree: ``log_index`` is the tree-local
    index (a Rekor v1 shard's), ``checkpoint`` the signed note of that tree."""

    log_index: int
    tree_size: int
    root_hash: bytes
    hashes: tuple[bytes, ...]
    checkpoint: str


def inclusion_proof_from_v1(doc: Any) -> InclusionProof:
    """The ``verification.inclusionProof`` object of a Rekor v1 LogEntry (hex hashes, the
    checkpoint as text); raises ``MalformedInputError``."""
    top = JsonReader(doc, "inclusionProof")
    hashes = top.get("hashes").items()
    if len(hashes) > MAX_PROOF_HASHES:
        raise top.get("hashes").fail(f"more than {MAX_PROOF_HASHES} hashes")
    return InclusionProof(
        log_index=top.get("logIndex").int(),
        tree_size=top.get("treeSize").int(),
        root_hash=_hash(top.get("rootHash")),
        hashes=tuple(_hash(h) for h in hashes),
        checkpoint=top.get("checkpoint").str(),
    )


def _hash(reader: JsonReader) -> bytes:
    try:
        value = hexdecode_strict(reader.str())
    except ValueError:
        raise reader.fail("not hex") from None
    if len(value) != 32:
        raise reader.fail("not a SHA-256 hash")
    return value


@dataclass(frozen=True)
class LogEntryRef:
    """The log entry an artifact names, so that it can be tied to the monitor's own log."""

    log_id: bytes
    log_index: int  # global (Rekor v1: across shards)
    integrated_time: int | None
    kind: str
    api_version: str
    body: bytes = field(repr=False)  # the canonicalized body
    # the log's signed promise of it (a legacy form's SignedEntryTimestamp), when it came
    promise: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def body_sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    @property
    def leaf_hash(self) -> bytes:
        return leaf_hash(self.body)


def entry_kind(body: bytes) -> tuple[str, str]:
    """(kind, apiVersion) of a Rekor v1 entry body."""
    top = JsonReader(load_json(body, "the log entry body"), "body")
    return top.get("kind").str(), top.get("apiVersion").str()


def ref_of(promise: CosignBundle) -> LogEntryRef:
    kind, version = entry_kind(promise.body)
    return LogEntryRef(
        log_id=promise.log_id,
        log_index=promise.log_index,
        integrated_time=promise.integrated_time,
        kind=kind,
        api_version=version,
        body=promise.body,
        promise=promise.signed_entry_timestamp,
    )


def load_pem_certificate(text: str, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(text.encode())
    except ValueError:
        raise MalformedInputError(f"{what} is not a PEM certificate") from None


def _der(cert: x509.Certificate) -> str:
    return b64encode(cert.public_bytes(serialization.Encoding.DER))


def tlog_entry_json(promise: CosignBundle, proof: InclusionProof) -> dict[str, Any]:
    kind, version = entry_kind(promise.body)
    return {
        "logIndex": str(promise.log_index),
        "logId": {"keyId": b64encode(promise.log_id)},
        "kindVersion": {"kind": kind, "version": version},
        "integratedTime": str(promise.integrated_time),
        "inclusionPromise": {"signedEntryTimestamp": b64encode(promise.signed_entry_timestamp)},
        "inclusionProof": {
            "logIndex": str(proof.log_index),
            "rootHash": b64encode(proof.root_hash),
            "treeSize": str(proof.tree_size),
            "hashes": [b64encode(h) for h in proof.hashes],
            "checkpoint": {"envelope": proof.checkpoint},
        },
        "canonicalizedBody": b64encode(promise.body),
    }


def message_bundle(
    cert: x509.Certificate,
    signature: bytes,
    payload: bytes,
    promise: CosignBundle,
    proof: InclusionProof,
) -> bytes:
    """The v0.1 bundle of a legacy ``.sig``: a message signature over the payload."""
    doc = {
        "mediaType": BUNDLE_V01,
        "verificationMaterial": {
            "x509CertificateChain": {"certificates": [{"rawBytes": _der(cert)}]},
            "tlogEntries": [tlog_entry_json(promise, proof)],
        },
        "messageSignature": {
            "messageDigest": {
                "algorithm": "SHA2_256",
                "digest": b64encode(hashlib.sha256(payload).digest()),
            },
            "signature": b64encode(signature),
        },
    }
    return json.dumps(doc).encode()


def dsse_bundle(
    cert: x509.Certificate, envelope: dict[str, Any], promise: CosignBundle, proof: InclusionProof
) -> bytes:
    """The v0.1 bundle of a legacy ``.att``: its DSSE envelope as it stands."""
    doc = {
        "mediaType": BUNDLE_V01,
        "verificationMaterial": {
            "x509CertificateChain": {"certificates": [{"rawBytes": _der(cert)}]},
            "tlogEntries": [tlog_entry_json(promise, proof)],
        },
        "dsseEnvelope": envelope,
    }
    return json.dumps(doc).encode()
