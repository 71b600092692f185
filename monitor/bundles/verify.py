"""Offline verification of transparency-log evidence (bundles, LogEntry, LogInfo, v2 entries).

Every check is named so that a failure says exactly what broke:

- ``log``: the entry's log ID is in the trusted root;
- ``entry-id``: a v1 LogEntry's UUID is the leaf hash (and its tree prefix the proof's tree);
- ``body``: the body is a JSON entry of the kind and version the evidence claims;
- ``inclusion-proof``: the leaf hash of the body is at the (shard-local) index in the tree;
- ``checkpoint-signature``: the checkpoint is signed by that log's key, for that log's origin;
- ``checkpoint-agreement``: the checkpoint states the tree size and root the proof uses;
- ``log-index``: the global index is consistent with the shard-local one;
- ``signed-entry-timestamp``: the log's promise over (body, time, log ID, global index);
- ``log-key-validity``: the trusted root says since when the log key is trusted, and the entry
  was integrated while it was.

An entry whose form allows it (bundle v0.1, Rekor v1 JSON, cosign's rekor bundle) may verify on
its signed entry timestamp alone, without an inclusion proof bound to a signed checkpoint: the
report then says that the verdict rests on the log's promise only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric import ec

from monitor.bundles.parse import EntryEvidence, Evidence, InclusionEvidence, TreeHeadEvidence
from monitor.core.errors import VerificationError
from monitor.tlog.checkpoint import SignedCheckpoint, open_checkpoint, v1_tree_id
from monitor.tlog.merkle import leaf_hash, verify_inclusion
from monitor.tlog.promise import promise_verifies
from monitor.trust import TransparencyLog, TrustRoot


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class Report:
    """The result of verifying one entry or tree head."""

    label: str
    summary: str
    checks: tuple[Check, ...]
    promise: str | None = None  # set when the verdict rests on the log's promise only (a SET)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)


class _Checks:
    """Collects named checks; a check function raising ``VerificationError`` fails it."""

    def __init__(self) -> None:
        self.items: list[Check] = []

    def run(self, name: str, fn: Callable[[], str | None]) -> bool:
        try:
            detail = fn() or ""
        except VerificationError as e:
            self.items.append(Check(name, False, e.message))
            return False
        self.items.append(Check(name, True, detail))
        return True

    def fail(self, name: str, detail: str) -> None:
        self.items.append(Check(name, False, detail))


def verify_entry(
    ev: EntryEvidence,
    trust: TrustRoot,
    shard_offsets: Mapping[int, int] | None = None,
    *,
    require_proof: bool = False,
) -> Report:
    """Verify one entry. ``shard_offsets`` (Rekor v1 tree ID -> global index of its first
    entry, from a verified LogInfo) lets the global index be checked without a SET.

    An entry without an inclusion proof bound to a signed checkpoint may still verify on its
    SignedEntryTimestamp alone, where its form allows it (bundle v0.1, Rekor v1 JSON, cosign's
    rekor bundle) and ``require_proof`` is off: the report then says the verdict rests on the
    log's promise only (``Report.promise``)."""
    checks = _Checks()
    leaf = leaf_hash(ev.body)
    log = trust.log_by_id(ev.log_id)
    if log is None:
        checks.fail("log", f"log ID {ev.log_id.hex()} is not in the trusted root")
        return Report(ev.label, f"index {ev.log_index}", tuple(checks.items))
    checks.run("log", lambda: log.base_url)
    if ev.entry_id is not None:
        checks.run("entry-id", lambda: _check_entry_id(ev, leaf))
    if ev.kind is not None:
        checks.run("body", lambda: _check_body(ev))

    proof = ev.inclusion
    cp, promise = _check_proof(checks, ev, log, leaf, require_proof)
    if proof is not None:
        checks.run(
            "log-index", lambda: _check_index(ev, proof.leaf_index, log, cp, shard_offsets or {})
        )
    if ev.signed_entry_timestamp is not None:
        checks.run("signed-entry-timestamp", lambda: _check_set(ev, log))
    checks.run("log-key-validity", lambda: _check_key_validity(ev, log))

    summary = _entry_summary(ev, log, cp)
    return Report(ev.label, summary, tuple(checks.items), promise)


def _check_proof(
    checks: _Checks, ev: EntryEvidence, log: TransparencyLog, leaf: bytes, require_proof: bool
) -> tuple[SignedCheckpoint | None, str | None]:
    """The inclusion proof and its checkpoint: the signed checkpoint if one verified, and what
    the verdict rests on instead when the entry has only the log's promise."""
    proof = ev.inclusion
    if proof is not None and proof.checkpoint is not None:
        checks.run("inclusion-proof", lambda: _check_inclusion(proof, leaf))
        try:
            cp = _open_log_checkpoint(proof.checkpoint, log)
        except VerificationError as e:
            checks.fail("checkpoint-signature", e.message)
            return None, None
        checks.run("checkpoint-signature", lambda: _signed_by(log, cp))
        checks.run(
            "checkpoint-agreement", lambda: _check_agreement(cp, proof.tree_size, proof.root_hash)
        )
        return cp, None
    if _may_rest_on_promise(ev, require_proof):
        if proof is None:
            return None, "signed entry timestamp, no inclusion proof"
        checks.run("inclusion-proof", lambda: _check_inclusion(proof, leaf, signed=False))
        return None, "signed entry timestamp; the inclusion proof has no checkpoint"
    why = _why_proof_needed(ev, require_proof)
    if proof is None:
        checks.fail("inclusion-proof", f"no inclusion proof: nothing ties the entry to {why}")
    else:
        checks.run("inclusion-proof", lambda: _check_inclusion(proof, leaf))
        checks.fail(
            "checkpoint-signature",
            "no checkpoint: the inclusion proof is not bound to a signed tree head"
            + why.partition(" tree")[2],
        )
    return None, None


def _may_rest_on_promise(ev: EntryEvidence, require_proof: bool) -> bool:
    return ev.signed_entry_timestamp is not None and not ev.proof_required and not require_proof


def _why_proof_needed(ev: EntryEvidence, require_proof: bool) -> str:
    """What the missing proof was needed for, as the end of "nothing ties the entry to";
    what follows " tree" also ends the message for a proof without a checkpoint."""
    if ev.signed_entry_timestamp is None:
        return "the log"
    if ev.proof_required:
        return "a signed tree; bundles v0.2 and later must carry one"
    return "a signed tree; --require-proof asks for one" if require_proof else "a signed tree"


def _check_inclusion(proof: InclusionEvidence, leaf: bytes, *, signed: bool = True) -> str:
    verify_inclusion(proof.leaf_index, proof.tree_size, leaf, proof.hashes, proof.root_hash)
    detail = f"leaf {leaf.hex()} at {proof.leaf_index} in tree size {proof.tree_size}"
    return detail if signed else detail + " (a root no checkpoint signs)"


def _open_log_checkpoint(raw: str, log: TransparencyLog) -> SignedCheckpoint:
    """The checkpoint, signed by this log's key: a Rekor v1 key under any name (found by its
    key hint), a C2SP key (Rekor v2) under the log's own name."""
    cp = open_checkpoint(raw, log.note_verifiers())
    if not log.origin_matches(cp.origin):
        raise VerificationError(
            "checkpoint-signature",
            f"origin {cp.origin!r} is not an origin of {log.key_name}",
        )
    return cp


def _signed_by(log: TransparencyLog, cp: SignedCheckpoint | None) -> str:
    names = ", ".join(cp.signers) if cp is not None else ""
    if names and names != log.key_name:
        return f"signed by {log.key_name}'s key as {names}"
    return f"signed by {log.key_name}"


def _entry_summary(ev: EntryEvidence, log: TransparencyLog, cp: SignedCheckpoint | None) -> str:
    where = cp.origin if cp is not None else log.key_name
    parts = [where, f"index {ev.log_index}"]
    if ev.inclusion is not None:
        parts.append(f"(leaf {ev.inclusion.leaf_index} of tree size {ev.inclusion.tree_size})")
    if ev.kind:
        parts.append(f"{ev.kind} {ev.version}")
    return " ".join(parts)


def _check_entry_id(ev: EntryEvidence, leaf: bytes) -> str:
    eid = ev.entry_id or ""
    uuid = eid[-64:]
    if uuid != leaf.hex():
        raise VerificationError("entry-id", f"entry UUID {uuid} is not the leaf hash {leaf.hex()}")
    if len(eid) == 80 and ev.inclusion is not None and ev.inclusion.checkpoint is not None:
        origin = ev.inclusion.checkpoint.split("\n", 1)[0]
        tree_id = v1_tree_id(origin)
        if tree_id is not None and int(eid[:16], 16) != tree_id:
            raise VerificationError(
                "entry-id", f"entry ID tree prefix {eid[:16]} is not tree {tree_id} of the proof"
            )
    return "UUID is the leaf hash"


def _check_body(ev: EntryEvidence) -> str:
    try:
        body = json.loads(ev.body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise VerificationError("body", "body is not JSON") from None
    if not isinstance(body, dict):
        raise VerificationError("body", "body is not a JSON object")
    kind, version = body.get("kind"), body.get("apiVersion")
    if (kind, version) != (ev.kind, ev.version):
        raise VerificationError(
            "body", f"body is {kind} {version}, evidence says {ev.kind} {ev.version}"
        )
    return f"{kind} {version}"


def _check_agreement(cp: SignedCheckpoint, size: int, root: bytes) -> str:
    if cp.size != size:
        raise VerificationError(
            "checkpoint-agreement", f"checkpoint tree size {cp.size} != proof tree size {size}"
        )
    if cp.root_hash != root:
        raise VerificationError(
            "checkpoint-agreement",
            f"checkpoint root {cp.root_hash.hex()} != proof root {root.hex()}",
        )
    return f"tree size {size}"


def _check_index(
    ev: EntryEvidence,
    local: int,
    log: TransparencyLog,
    cp: SignedCheckpoint | None,
    shard_offsets: Mapping[int, int],
) -> str:
    tree_id = v1_tree_id(cp.origin) if cp is not None else None
    # Rekor v1 is sharded: said by the signing config, by a v1 checkpoint origin, or, for a log
    # the signing config does not list, by a signed entry timestamp (Rekor v2 makes none)
    sharded = (
        log.api_version == 1
        or tree_id is not None
        or (log.api_version is None and ev.signed_entry_timestamp is not None)
    )
    if not sharded:
        if ev.log_index != local:
            raise VerificationError(
                "log-index", f"log index {ev.log_index} != inclusion proof index {local}"
            )
        return "unsharded"
    # Rekor v1: global = (sizes of earlier shards) + local; the offset can't be negative
    offset = ev.log_index - local
    if offset < 0:
        raise VerificationError(
            "log-index", f"global index {ev.log_index} is below shard-local index {local}"
        )
    expected = shard_offsets.get(tree_id) if tree_id is not None else None
    if expected is not None:
        if offset != expected:
            raise VerificationError(
                "log-index",
                f"global index {ev.log_index} - shard index {local} = {offset}, but tree "
                f"{tree_id} starts at global index {expected}",
            )
        return f"shard offset {offset} matches the log's shard layout"
    if ev.signed_entry_timestamp is None:
        return f"shard offset {offset} (unchecked: no SET binds it; pass a LogInfo to check it)"
    return f"shard offset {offset} (bound by the SET)"


def _check_set(ev: EntryEvidence, log: TransparencyLog) -> str:
    if ev.integrated_time is None:
        raise VerificationError("signed-entry-timestamp", "SET present without integrated time")
    if not isinstance(log.public_key, ec.EllipticCurvePublicKey):
        raise VerificationError("signed-entry-timestamp", "log key is not an ECDSA key")
    if not promise_verifies(
        log.public_key,
        ev.signed_entry_timestamp or b"",
        body=ev.body,
        integrated_time=ev.integrated_time,
        log_id=ev.log_id,
        index=ev.log_index,
    ):
        raise VerificationError(
            "signed-entry-timestamp", "signature over (body, time, log ID, index) does not verify"
        )
    return "verified"


def _check_key_validity(ev: EntryEvidence, log: TransparencyLog) -> str:
    problem = log.validity_problem()
    if problem is not None:
        raise VerificationError("log-key-validity", problem)
    if not ev.integrated_time:  # Rekor v2 has none (a write response says 0)
        start = log.valid_from.isoformat() if log.valid_from else ""
        return f"no integrated time; the key is trusted from {start}"
    try:
        when = datetime.fromtimestamp(ev.integrated_time, tz=UTC)
    except (OverflowError, ValueError, OSError):
        raise VerificationError(
            "log-key-validity", f"integrated time {ev.integrated_time} is out of range"
        ) from None
    if not log.valid_at(when):
        raise VerificationError(
            "log-key-validity",
            f"integrated at {when.isoformat()}, outside the log key's validity",
        )
    return when.isoformat()


def shard_offsets_from_loginfo(evidence: Evidence, trust: TrustRoot) -> dict[int, int]:
    """Tree ID -> global index of the tree's first entry, from a LogInfo whose every tree head
    verifies. Inactive shards are listed oldest first; the active tree follows them."""
    if not evidence.tree_heads:
        raise VerificationError("log-info", f"a {evidence.form} is not a LogInfo")
    for th in evidence.tree_heads:
        report = verify_tree_head(th, trust)
        if not report.ok:
            failure = report.failures[0]
            raise VerificationError("log-info", f"{th.label}: {failure.name}: {failure.detail}")
    active, *inactive = evidence.tree_heads
    offsets: dict[int, int] = {}
    start = 0
    for th in inactive:
        offsets[int(th.tree_id)] = start
        start += th.tree_size
    offsets[int(active.tree_id)] = start
    return offsets


def verify_tree_head(th: TreeHeadEvidence, trust: TrustRoot) -> Report:
    checks = _Checks()
    cp: SignedCheckpoint | None = None
    try:
        cp = open_checkpoint(th.signed_tree_head, trust.note_verifiers())
        checks.run("checkpoint-signature", lambda: ", ".join(cp.signers) if cp else "")
    except VerificationError as e:
        checks.fail("checkpoint-signature", e.message)
    if cp is not None:
        signed = cp

        def agreement() -> str:
            tid = v1_tree_id(signed.origin)
            if tid is None or str(tid) != th.tree_id:
                raise VerificationError(
                    "checkpoint-agreement", f"origin {signed.origin!r} is not tree {th.tree_id}"
                )
            return _check_agreement(signed, th.tree_size, th.root_hash)

        checks.run("checkpoint-agreement", agreement)
    summary = f"{th.label} {th.tree_id} size {th.tree_size}"
    return Report(th.label, summary, tuple(checks.items))


def verify_evidence(
    evidence: Evidence,
    trust: TrustRoot,
    shard_offsets: Mapping[int, int] | None = None,
    *,
    require_proof: bool = False,
) -> tuple[Report, ...]:
    reports = [
        verify_entry(e, trust, shard_offsets, require_proof=require_proof) for e in evidence.entries
    ]
    reports += [verify_tree_head(t, trust) for t in evidence.tree_heads]
    return tuple(reports)
