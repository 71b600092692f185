"""An evidence file for a stored entry, for users to keep and check offline with
``tlog-monitor verify-bundle``: the entry's body with an inclusion proof and a signed
checkpoint, fetched from its log now (the monitor keeps each log's compact range, not every
tree node) and verified here before it is handed out.

- Rekor v1: the log's own ``LogEntry`` (``GET /api/v1/log/entries?logIndex=``), its body
  checked against the stored one, written in that form.
- Rekor v2: a ``TransparencyLogEntry`` with the stored body, an inclusion proof read from the
  hash tiles of the log's current checkpoint (whose signature the client verified) and that
  checkpoint.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from monitor.bundles.parse import parse_evidence
from monitor.bundles.verify import verify_evidence
from monitor.core.errors import LogResponseError, VerificationError
from monitor.daemon.runners import Runner
from monitor.daemon.v1source import RekorV1Source
from monitor.daemon.v2source import RekorV2Source
from monitor.storage.ports import HistoryReader
from monitor.tlog.tileproofs import v2_inclusion_proof
from monitor.trust import TrustRoot


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


async def _v1(source: RekorV1Source, index: int, body: bytes) -> dict[str, Any]:
    entry = await source.client.entry(index)
    if entry is None:
        raise LogResponseError(f"{source.client.log.key_name}: has no entry {index} now")
    if entry.body != body:
        raise VerificationError(
            "body", f"{source.client.log.key_name}: entry {index} is not the body stored"
        )
    if entry.inclusion is None:
        raise LogResponseError(
            f"{source.client.log.key_name}: entry {index} came without an inclusion proof"
        )
    proof = entry.inclusion
    return {
        entry.entry_id: {
            "body": _b64(entry.body),
            "integratedTime": entry.integrated_time,
            "logID": entry.log_id.hex(),
            "logIndex": entry.log_index,
            "verification": {
                "inclusionProof": {
                    "logIndex": proof.index,
                    "treeSize": proof.tree_size,
                    "rootHash": proof.root_hash.hex(),
                    "hashes": [h.hex() for h in proof.hashes],
                    "checkpoint": proof.checkpoint,
                }
            },
        }
    }


async def _v2(
    runner: Runner, source: RekorV2Source, index: int, body: bytes, *, kind: str, version: str
) -> dict[str, Any]:
    checkpoint = await source.client.checkpoint()
    hashes = await v2_inclusion_proof(source.client, index, checkpoint)
    return {
        "logIndex": str(index),
        "logId": {"keyId": _b64(runner.tlog.log_id)},
        "kindVersion": {"kind": kind, "version": version},
        "canonicalizedBody": _b64(body),
        "inclusionProof": {
            "logIndex": str(index),
            "rootHash": _b64(checkpoint.root_hash),
            "treeSize": str(checkpoint.size),
            "hashes": [_b64(h) for h in hashes],
            "checkpoint": {"envelope": checkpoint.raw},
        },
    }


async def evidence_file(
    runner: Runner, trust: TrustRoot, index: int, body: bytes, *, kind: str, version: str
) -> bytes:
    """The evidence of entry ``index`` (stored with ``body``, ``kind`` and ``version``) of
    ``runner``'s log, as JSON bytes that ``verify-bundle`` accepts; raises
    ``VerificationError`` rather than hand out a file that would not verify."""
    source = runner.source
    if isinstance(source, RekorV1Source):
        doc = await _v1(source, index, body)
    elif isinstance(source, RekorV2Source):
        doc = await _v2(runner, source, index, body, kind=kind, version=version)
    else:
        raise LogResponseError(f"{runner.name}: its API serves no inclusion proofs")
    data = json.dumps(doc, indent=2).encode()
    reports = verify_evidence(parse_evidence(data), trust, require_proof=True)
    failed = [c for r in reports for c in r.failures]
    if not reports or failed:
        why = "; ".join(f"{c.name}: {c.detail}" for c in failed) or "nothing verified"
        raise VerificationError("evidence", f"{runner.name}: entry {index}: {why}")
    return data


async def stored_evidence(
    store: HistoryReader, runners: Mapping[str, Runner], trust: TrustRoot, log: str, index: int
) -> bytes:
    """``evidence_file`` of a stored entry of a log this daemon tails."""
    runner = runners.get(log)
    if runner is None:
        raise LogResponseError(f"{log}: not tailed by this monitor: no log to ask for a proof")
    entry = await store.entry(log, index)
    if entry is None:
        raise LogResponseError(f"{log}: no stored entry {index}")
    return await evidence_file(
        runner, trust, index, entry.raw_body, kind=entry.kind, version=entry.api_version
    )
