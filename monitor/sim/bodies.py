"""Templates of the entry bodies the simulator serves: canonical JSON exactly as Rekor v1 and
v2 write it (REKOR-FORMATS.md sections 4 and 6.4), made by ``json.dumps`` itself and filled
in with ``%``, which is much cheaper than serialising a document per entry.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from monitor.core.encoding import b64encode

INTOTO = "application/vnd.in-toto+json"


def canonical_json(doc: Any) -> str:
    """Rekor's canonical JSON: keys sorted, no whitespace."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def template(doc: dict[str, Any]) -> str:
    """A %-template of ``doc``'s canonical JSON; its ``%(name)s`` fields take JSON-safe text
    (hex, base64, fixed names), so the result stays canonical."""
    text = canonical_json(doc)
    assert text.count("%") == text.count("%("), "stray % in a body template"
    return text


V1_HASHEDREKORD = template(
    {
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "%(alg)s", "value": "%(digest)s"}},
            "signature": {"content": "%(sig)s", "publicKey": {"content": "%(key)s"}},
        },
    }
)
V1_REKORD = template(
    {
        "apiVersion": "0.0.1",
        "kind": "rekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": "%(digest)s"}},
            "signature": {
                "content": "%(sig)s",
                "format": "%(format)s",
                "publicKey": {"content": "%(key)s"},
            },
        },
    }
)
V1_DSSE = template(
    {
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": "%(envelope)s"},
            "payloadHash": {"algorithm": "sha256", "value": "%(payload)s"},
            "signatures": [{"signature": "%(sig)s", "verifier": "%(key)s"}],
        },
    }
)
V1_INTOTO = template(
    {
        "apiVersion": "0.0.2",
        "kind": "intoto",
        "spec": {
            "content": {
                "envelope": {
                    "payloadType": INTOTO,
                    "signatures": [{"publicKey": "%(key)s", "sig": "%(sig)s"}],
                },
                "hash": {"algorithm": "sha256", "value": "%(envelope)s"},
                "payloadHash": {"algorithm": "sha256", "value": "%(payload)s"},
            }
        },
    }
)


def _v2_verifier(field: str) -> dict[str, Any]:
    return {"keyDetails": "%(details)s", field: {"rawBytes": "%(raw)s"}}


def _v2_hashedrekord(field: str) -> str:
    return template(
        {
            "apiVersion": "0.0.2",
            "kind": "hashedrekord",
            "spec": {
                "hashedRekordV002": {
                    "data": {"algorithm": "%(alg)s", "digest": "%(digest)s"},
                    "signature": {"content": "%(sig)s", "verifier": _v2_verifier(field)},
                }
            },
        }
    )


def _v2_dsse(field: str) -> str:
    return template(
        {
            "apiVersion": "0.0.2",
            "kind": "dsse",
            "spec": {
                "dsseV002": {
                    "payloadHash": {"algorithm": "SHA2_256", "digest": "%(payload)s"},
                    "signatures": [{"content": "%(sig)s", "verifier": _v2_verifier(field)}],
                }
            },
        }
    )


V2_HASHEDREKORD = {f: _v2_hashedrekord(f) for f in ("x509Certificate", "publicKey")}
V2_DSSE = {f: _v2_dsse(f) for f in ("x509Certificate", "publicKey")}
ENVELOPE = '{"payload":"%s","payloadType":"' + INTOTO + '","signatures":[{"keyid":"","sig":"%s"}]}'


def envelope_hash(statement: bytes, sig: str) -> str:
    """sha256 of the DSSE envelope JSON a client would have submitted (``sig``: its base64)."""
    envelope = ENVELOPE % (b64encode(statement), sig)
    return hashlib.sha256(envelope.encode()).hexdigest()
