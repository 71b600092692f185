"""The stable JSON shape of a parse result (``inspect --json``, and later the API and
webhooks). Field names are part of the interface: add, never rename."""

from __future__ import annotations

import hashlib
from typing import Any

from monitor.core.encoding import b64encode
from monitor.entries.record import (
    CertificateSigner,
    Digest,
    KeySigner,
    MalformedEntry,
    ParseResult,
    Signer,
)
from monitor.tlog.merkle import leaf_hash

JSON = dict[str, Any]


def digest_json(d: Digest | None) -> JSON | None:
    return None if d is None else {"algorithm": d.algorithm, "value": d.value}


def key_json(k: KeySigner) -> JSON:
    return {
        "type": "key",
        "key_type": k.key_type,
        "fingerprint": k.fingerprint,
        "size": k.size,
        "curve": k.curve,
        "details": [{"name": n, "value": v} for n, v in k.details],
    }


def signer_json(s: Signer) -> JSON:
    if isinstance(s, KeySigner):
        return key_json(s)
    return certificate_json(s)


def certificate_json(c: CertificateSigner) -> JSON:
    return {
        "type": "certificate",
        "sans": [{"type": str(san.type), "value": san.value} for san in c.sans],
        "issuer": c.issuer,
        "extensions": [
            {"oid": e.oid, "name": e.name, "value": e.value, "critical": e.critical}
            for e in c.extensions
        ],
        "serial": c.serial,
        "not_before": c.not_before.isoformat(),
        "not_after": c.not_after.isoformat(),
        "issuer_dn": c.issuer_dn,
        "subject_dn": c.subject_dn,
        "fingerprint": c.fingerprint,
        "chain": str(c.chain),
        "key": key_json(c.key),
    }


def result_json(r: ParseResult, *, include_body: bool = False) -> JSON:
    common: JSON = {
        "log": r.log,
        "index": r.index,
        "body_sha256": hashlib.sha256(r.raw_body).hexdigest(),
        "leaf_hash": leaf_hash(r.raw_body).hex(),
    }
    if include_body:
        common["body"] = b64encode(r.raw_body)
    if isinstance(r, MalformedEntry):
        return {
            "result": "malformed",
            **common,
            "kind": r.kind,
            "api_version": r.api_version,
            "reason": r.reason,
        }
    return {
        "result": "record",
        **common,
        "kind": r.kind,
        "api_version": r.api_version,
        "known": r.known,
        "integrated_time": r.integrated_time,
        "signers": [signer_json(s) for s in r.signers],
        "artifact_digests": [digest_json(d) for d in r.artifact_digests],
        "payload_hash": digest_json(r.payload_hash),
        "envelope_hash": digest_json(r.envelope_hash),
        "payload_type": r.payload_type,
        "subjects": [
            {"name": s.name, "digests": [digest_json(d) for d in s.digests]} for s in r.subjects
        ],
        "subjects_source": str(r.subjects_source),
        "notes": list(r.notes),
    }
