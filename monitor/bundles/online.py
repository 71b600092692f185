"""Completing evidence that rests on the log's promise: ask the log for the proof.

A SignedEntryTimestamp says that the log promised to include an entry; an inclusion proof and
a signed checkpoint show that it did. For evidence that carries only the promise (bundle v0.1,
cosign's rekor bundle, a Rekor v1 LogEntry without a proof), ``fetch_proof`` asks the Rekor v1
log the trusted root names for the entry at the promised index, and returns the evidence with
the log's inclusion proof and checkpoint, for ``verify_entry`` to verify in full. Nothing the
log sends is trusted: the entry it serves must be the one the promise covers, and the proof and
checkpoint are then checked like any other.
"""

from __future__ import annotations

from dataclasses import replace

import aiohttp

from monitor.bundles.parse import EntryEvidence, InclusionEvidence
from monitor.core.errors import LogResponseError, TransientLogError, VerificationError
from monitor.core.metrics import ClientMetrics
from monitor.logclient.http import HttpPolicy, LogHttp
from monitor.logclient.v1 import RekorV1Client
from monitor.trust import TransparencyLog

# One entry, asked once by a person at a terminal: fail in seconds rather than minutes.
POLICY = HttpPolicy(requests_per_second=4.0, timeout_seconds=20.0, max_attempts=3)


class OnlineError(TransientLogError):
    """The log could not be asked (network, refusal, nonsense answer): nothing was checked."""


async def fetch_proof(
    ev: EntryEvidence,
    log: TransparencyLog,
    session: aiohttp.ClientSession,
    *,
    policy: HttpPolicy = POLICY,
) -> EntryEvidence:
    """``ev`` with the inclusion proof and checkpoint that ``log`` serves for its index.

    ``OnlineError`` if the log cannot be asked; ``VerificationError`` (check ``online``) if it
    answers with another entry than the one the evidence holds, or with none."""
    http = LogHttp(
        log.base_url, session, log=log.key_name, metrics=ClientMetrics.standalone(),
        policy=policy,
    )  # fmt: skip
    client = RekorV1Client(http, log)
    try:
        entry = await client.entry(ev.log_index)
    except (TransientLogError, LogResponseError) as e:
        raise OnlineError(f"cannot fetch entry {ev.log_index} from {log.base_url}: {e}") from None
    if entry is None:
        raise VerificationError(
            "online", f"{log.base_url} has no entry at index {ev.log_index}, which it promised"
        )
    if entry.body != ev.body:
        raise VerificationError(
            "online", f"{log.base_url} serves another entry at index {ev.log_index}"
        )
    if entry.log_id != ev.log_id or entry.integrated_time != ev.integrated_time:
        raise VerificationError(
            "online",
            f"{log.base_url} serves entry {ev.log_index} with another log ID or integrated time",
        )
    proof = entry.inclusion
    if proof is None:
        raise VerificationError(
            "online", f"{log.base_url} serves entry {ev.log_index} without an inclusion proof"
        )
    inclusion = InclusionEvidence(
        proof.index, proof.tree_size, proof.root_hash, proof.hashes, proof.checkpoint
    )
    entry_id = ev.entry_id or entry.entry_id  # so that the UUID and its tree are checked too
    return replace(ev, inclusion=inclusion, entry_id=entry_id, proof_required=True)
