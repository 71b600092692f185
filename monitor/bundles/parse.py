"""Transparency-log evidence as users hold it, parsed into one shape for offline verification:

- Sigstore bundles v0.1 to v0.3 (protobuf JSON: proto or JSON field names, nulls, URL-safe
  base64 all accepted, as Sigstore's clients accept them);
- Rekor v1 ``LogEntry`` JSON (keyed by its UUID), a bare ``LogEntryAnon`` (the same without
  the key), and ``LogInfo``;
- a Rekor v2 ``TransparencyLogEntry`` (a write response);
- cosign's legacy ``rekorBundle`` (``{"SignedEntryTimestamp", "Payload"}``, as cosign keeps it
  beside a signature, e.g. the ``dev.sigstore.cosign/bundle`` annotation).

Which forms may rest on the log's promise alone (a SignedEntryTimestamp, no inclusion proof with
a checkpoint) is said per entry: bundles v0.2 and later must carry the proof.

Parsing is strict and never raises anything but ``MalformedInputError`` (with the JSON path of
the problem), or its ``UnreadableInputError`` when the input is not JSON or of no known form:
these files come from users and from the network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from monitor.core.errors import MalformedInputError, UnreadableInputError
from monitor.core.jsonread import JsonReader
from monitor.core.protojson import normalize
from monitor.entries.statement import Envelope

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
    # the form requires an inclusion proof with a checkpoint (bundles v0.2 and later); others
    # may rest on a SignedEntryTimestamp alone, as every Sigstore client accepts them
    proof_required: bool = False


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


_V1_FIELDS = {"body", "integratedTime", "logID", "logIndex"}


def parse_evidence(data: bytes) -> Evidence:
    """Recognise and parse any of the forms in the module docstring."""
    if len(data) > MAX_EVIDENCE_BYTES:
        raise UnreadableInputError(f"file is larger than {MAX_EVIDENCE_BYTES} bytes")
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UnreadableInputError(f"not JSON: {e}") from None
    except RecursionError:
        raise UnreadableInputError("not JSON: nested too deeply") from None
    if not isinstance(doc, dict):
        kind = "a list" if isinstance(doc, list) else "a JSON " + type(doc).__name__
        raise UnreadableInputError(f"(top): expected an object, got {kind}")
    # protobuf forms may use proto field names and nulls; Rekor v1's REST JSON has no
    # underscores in its keys, so one rewrite serves every form
    top = JsonReader(normalize(doc), "")
    obj = top.obj()
    if "mediaType" in obj and "verificationMaterial" in obj:
        return _parse_bundle(top)
    if "signedTreeHead" in obj and "treeID" in obj:
        return _parse_loginfo(top)
    if "canonicalizedBody" in obj and "logIndex" in obj:
        return Evidence("transparency log entry", (_parse_tle(top, "entry"),))
    if "SignedEntryTimestamp" in obj and "Payload" in obj:
        return Evidence("cosign rekor bundle", (_parse_rekor_bundle(top),))
    if obj.keys() >= _V1_FIELDS:
        return Evidence("Rekor v1 LogEntryAnon", (_parse_logentry(None, top),))
    if len(obj) == 1:
        (key,) = obj
        inner = obj[key]
        if isinstance(inner, dict) and "body" in inner and "logIndex" in inner:
            return Evidence("Rekor v1 LogEntry", (_parse_logentry(key, top.get(key)),))
    raise UnreadableInputError(
        "not a Sigstore bundle, Rekor LogEntry, LogEntryAnon, LogInfo, TransparencyLogEntry or "
        "cosign rekor bundle"
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
        # a bundle of a version we do not know: its rules are unknown, so nothing is checked
        raise UnreadableInputError(f"mediaType: unsupported bundle media type {media[:80]!r}")
    material = top.get("verificationMaterial")
    listed = material.opt("tlogEntries")  # protobuf JSON leaves an empty list out
    tles = listed.items() if listed is not None else []
    if not tles:
        raise MalformedInputError(
            "verificationMaterial.tlogEntries: none: the bundle has no transparency-log entry"
        )
    required = version != "0.1"  # "v0.2 and later: an inclusion proof with a checkpoint"
    entries = tuple(_parse_tle(t, t.path, proof_required=required) for t in tles)
    dsse = top.opt("dsseEnvelope")
    envelope = None
    if dsse is not None:
        envelope = Envelope(dsse.get("payloadType").str(), dsse.get("payload").proto_bytes())
    return Evidence(f"Sigstore bundle v{version}", entries, envelope=envelope)


def _parse_tle(t: JsonReader, label: str, *, proof_required: bool | None = None) -> EntryEvidence:
    """A protobuf-JSON TransparencyLogEntry (in a bundle, or a Rekor v2 write response).

    Alone (``proof_required`` None), it may rest on its SignedEntryTimestamp if it has one:
    Rekor v1 entries in that form predate bundles v0.2."""
    kv = t.opt("kindVersion")
    proof = t.opt("inclusionProof")
    inclusion = None
    if proof is not None:
        cp = proof.opt("checkpoint")
        inclusion = InclusionEvidence(
            leaf_index=proof.get("logIndex").int(),
            tree_size=proof.get("treeSize").int(),
            root_hash=proof.get("rootHash").proto_bytes(),
            hashes=tuple(h.proto_bytes() for h in proof.get("hashes").items()),
            checkpoint=cp.get("envelope").str() if cp is not None else None,
        )
    promise = t.opt("inclusionPromise")
    set_reader = promise.opt("signedEntryTimestamp") if promise is not None else None
    it = t.opt("integratedTime")
    signed_entry_timestamp = set_reader.proto_bytes() if set_reader is not None else None
    return EntryEvidence(
        label=label,
        body=t.get("canonicalizedBody").proto_bytes(),
        log_index=t.get("logIndex").int(),
        log_id=t.get("logId").get("keyId").proto_bytes(),
        integrated_time=it.int() if it is not None else None,
        kind=kv.get("kind").str() if kv is not None else None,
        version=kv.get("version").str() if kv is not None else None,
        entry_id=None,
        inclusion=inclusion,
        signed_entry_timestamp=signed_entry_timestamp,
        proof_required=signed_entry_timestamp is None if proof_required is None else proof_required,
    )


def _parse_logentry(key: str | None, e: JsonReader) -> EntryEvidence:
    """A Rekor v1 LogEntry's value (``key`` its UUID), or a bare LogEntryAnon (no key)."""
    if key is not None and (
        len(key) not in (64, 80) or not all(c in "0123456789abcdef" for c in key)
    ):
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
    attestation = att.get("data").b64() if (att := e.opt("attestation")) else None
    return _v1_entry(
        e, key or "entry", key, inclusion=inclusion, signed_entry_timestamp=sig,
        attestation=attestation,
    )  # fmt: skip


def _v1_entry(
    r: JsonReader,
    label: str,
    entry_id: str | None,
    *,
    inclusion: InclusionEvidence | None,
    signed_entry_timestamp: bytes | None,
    attestation: bytes | None = None,
) -> EntryEvidence:
    """An entry from Rekor v1's REST fields (``body``, ``logIndex``, ``logID``,
    ``integratedTime``): base64 body, hex log ID, global index."""
    return EntryEvidence(
        label=label,
        body=r.get("body").b64(),
        log_index=r.get("logIndex").int(),
        log_id=r.get("logID").hex(),
        integrated_time=r.get("integratedTime").int(),
        kind=None,
        version=None,
        entry_id=entry_id,
        inclusion=inclusion,
        signed_entry_timestamp=signed_entry_timestamp,
        attestation=attestation,
    )


def _parse_rekor_bundle(top: JsonReader) -> EntryEvidence:
    """cosign's ``{"SignedEntryTimestamp": b64, "Payload": {body, integratedTime, logIndex,
    logID}}``: exactly what the SET signs, and no inclusion proof."""
    sig = top.get("SignedEntryTimestamp").b64()
    return _v1_entry(
        top.get("Payload"), "rekor bundle", None, inclusion=None, signed_entry_timestamp=sig
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
