"""Transparency-log evidence as users hold it: Sigstore bundles, Rekor v1 LogEntry and LogInfo
JSON, and Rekor v2 TransparencyLogEntry JSON, parsed into one shape for offline verification.

Parsing is strict and never raises anything but ``MalformedInputError`` (with the JSON path of
the problem): these files come from users and from the network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from monitor.entries.statement import Envelope
from monitor.errors import MalformedInputError
from monitor.jsonread import JsonReader

MAX_EVIDENCE_BYTES = 32 << 20


@dataclass(frozen=True)
class InclusionEvidence:
    """An inclusion proof as shipped with an entry; ``leaf_index`` is shard-local in Rekor v1."""

    leaf_index: int
    tree_size: int
    root_hash: bytes
    hashes: tuple[bytes, ...]
    checkpoint: str | None


@dataclass(frozen=True)
class EntryEvidence:
    """One log entry with everything needed to check it against the log's signed tree."""

    label: str
    body: bytes
    log_index: int  # global (virtual) index in Rekor v1
    log_id: bytes
    integrated_time: int | None
    kind: str | None
    version: str | None
    entry_id: str | None  # Rekor v1 LogEntry key: 64-hex UUID or 80-hex EntryID
    inclusion: InclusionEvidence | None
    signed_entry_timestamp: bytes | None
    attestation: bytes | None = None  # Rekor v1 attestation.data (an in-toto statement)


@dataclass(frozen=True)
class TreeHeadEvidence:
    """One tree of a Rekor v1 LogInfo: its signed tree head and the values stated beside it."""

    label: str
    tree_id: str
    tree_size: int
    root_hash: bytes
    signed_tree_head: str


@dataclass(frozen=True)
class Evidence:
    """What one file holds: entries (bundles, LogEntry, v2 entries) or tree heads (LogInfo)."""

    form: str
    entries: tuple[EntryEvidence, ...] = ()
    tree_heads: tuple[TreeHeadEvidence, ...] = ()
    envelope: Envelope | None = None  # a bundle's DSSE envelope


def parse_evidence(data: bytes) -> Evidence:
    """Recognise and parse a bundle, a LogEntry, a LogInfo or a v2 TransparencyLogEntry."""
    if len(data) > MAX_EVIDENCE_BYTES:
        raise MalformedInputError(f"file is larger than {MAX_EVIDENCE_BYTES} bytes")
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MalformedInputError(f"not JSON: {e}") from None
    except RecursionError:
        raise MalformedInputError("not JSON: nested too deeply") from None
    top = JsonReader(doc, "")
    obj = top.obj()
    if "mediaType" in obj and "verificationMaterial" in obj:
        return _parse_bundle(top)
    if "signedTreeHead" in obj and "treeID" in obj:
        return _parse_loginfo(top)
    if "canonicalizedBody" in obj and "logIndex" in obj:
        return Evidence("transparency log entry", (_parse_tle(top, "entry"),))
    if len(obj) == 1:
        (key,) = obj
        inner = obj[key]
        if isinstance(inner, dict) and "body" in inner and "logIndex" in inner:
            return Evidence("Rekor v1 LogEntry", (_parse_logentry(key, top.get(key)),))
    raise MalformedInputError(
        "not a Sigstore bundle, Rekor LogEntry, LogInfo or TransparencyLogEntry"
    )


_BUNDLE_MEDIA_TYPES = {
    "application/vnd.dev.sigstore.bundle+json;version=0.1": "0.1",
    "application/vnd.dev.sigstore.bundle+json;version=0.2": "0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.3": "0.3",
    "application/vnd.dev.sigstore.bundle.v0.3+json": "0.3",
}


def _parse_bundle(top: JsonReader) -> Evidence:
    media = top.get("mediaType").str()
    version = _BUNDLE_MEDIA_TYPES.get(media)
    if version is None:
        raise top.get("mediaType").fail(f"unsupported bundle media type {media[:80]!r}")
    tles = top.get("verificationMaterial").get("tlogEntries").items()
    if not tles:
        raise MalformedInputError("verificationMaterial.tlogEntries: empty")
    entries = tuple(_parse_tle(t, t.path) for t in tles)
    dsse = top.opt("dsseEnvelope")
    envelope = None
    if dsse is not None:
        envelope = Envelope(dsse.get("payloadType").str(), dsse.get("payload").b64())
    return Evidence(f"Sigstore bundle v{version}", entries, envelope=envelope)


def _parse_tle(t: JsonReader, label: str) -> EntryEvidence:
    """A protobuf-JSON TransparencyLogEntry (in a bundle, or a Rekor v2 write response)."""
    kv = t.opt("kindVersion")
    proof = t.opt("inclusionProof")
    inclusion = None
    if proof is not None:
        cp = proof.opt("checkpoint")
        inclusion = InclusionEvidence(
            leaf_index=proof.get("logIndex").int(),
            tree_size=proof.get("treeSize").int(),
            root_hash=proof.get("rootHash").b64(),
            hashes=tuple(h.b64() for h in proof.get("hashes").items()),
            checkpoint=cp.get("envelope").str() if cp is not None else None,
        )
    promise = t.opt("inclusionPromise")
    set_reader = promise.opt("signedEntryTimestamp") if promise is not None else None
    it = t.opt("integratedTime")
    return EntryEvidence(
        label=label,
        body=t.get("canonicalizedBody").b64(),
        log_index=t.get("logIndex").int(),
        log_id=t.get("logId").get("keyId").b64(),
        integrated_time=it.int() if it is not None else None,
        kind=kv.get("kind").str() if kv is not None else None,
        version=kv.get("version").str() if kv is not None else None,
        entry_id=None,
        inclusion=inclusion,
        signed_entry_timestamp=set_reader.b64() if set_reader is not None else None,
    )


def _parse_logentry(key: str, e: JsonReader) -> EntryEvidence:
    if len(key) not in (64, 80) or not all(c in "0123456789abcdef" for c in key):
        raise MalformedInputError(f"LogEntry key {key[:90]!r} is not a 64- or 80-hex entry ID")
    verification = e.opt("verification")
    inclusion = None
    sig = None
    if verification is not None:
        proof = verification.opt("inclusionProof")
        if proof is not None:
            cp = proof.opt("checkpoint")
            inclusion = InclusionEvidence(
                leaf_index=proof.get("logIndex").int(),
                tree_size=proof.get("treeSize").int(),
                root_hash=proof.get("rootHash").hex(),
                hashes=tuple(h.hex() for h in proof.get("hashes").items()),
                checkpoint=cp.str() if cp is not None else None,
            )
        set_reader = verification.opt("signedEntryTimestamp")
        sig = set_reader.b64() if set_reader is not None else None
    return EntryEvidence(
        label=key,
        body=e.get("body").b64(),
        log_index=e.get("logIndex").int(),
        log_id=e.get("logID").hex(),
        integrated_time=e.get("integratedTime").int(),
        kind=None,
        version=None,
        entry_id=key,
        inclusion=inclusion,
        signed_entry_timestamp=sig,
        attestation=att.get("data").b64() if (att := e.opt("attestation")) else None,
    )


def _parse_loginfo(top: JsonReader) -> Evidence:
    heads = [_tree_head(top, "active tree")]
    shards = top.opt("inactiveShards")
    if shards is not None:
        heads += [_tree_head(s, f"inactive tree {i}") for i, s in enumerate(shards.items())]
    return Evidence("Rekor v1 LogInfo", tree_heads=tuple(heads))


def _tree_head(r: JsonReader, label: str) -> TreeHeadEvidence:
    tree_id = r.get("treeID")
    tid = tree_id.str()
    if not tid.isascii() or not tid.isdigit():
        raise tree_id.fail("expected a decimal tree ID string")
    return TreeHeadEvidence(
        label=label,
        tree_id=tid,
        tree_size=r.get("treeSize").int(),
        root_hash=r.get("rootHash").hex(),
        signed_tree_head=r.get("signedTreeHead").str(),
    )
