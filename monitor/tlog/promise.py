"""A Rekor v1 log's promise of an entry (its SignedEntryTimestamp): an ECDSA signature over
the entry's body, integrated time, log ID and index, as canonical JSON. Keys are ASCII and
values strings or integers, so sorted compact JSON is RFC 8785 exact."""

from __future__ import annotations

import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from monitor.core.encoding import b64encode

__all__ = ["promise_payload", "promise_verifies"]


def promise_payload(body: bytes, integrated_time: int, log_id: bytes, log_index: int) -> bytes:
    """What the log signs when it promises an entry."""
    return json.dumps(
        {
            "body": b64encode(body),
            "integratedTime": integrated_time,
            "logID": log_id.hex(),
            "logIndex": log_index,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


def promise_verifies(
    key: object, signature: bytes, *, body: bytes, integrated_time: int, log_id: bytes, index: int
) -> bool:
    """Whether ``signature`` is ``key``'s promise of the entry (False for a key that is not
    an ECDSA key: Rekor v1 signs its promises with one)."""
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    payload = promise_payload(body, integrated_time, log_id, index)
    try:
        key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True
