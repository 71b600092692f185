"""A realistic mix of real Rekor entry bodies, taken from the production fixtures.

Mostly GitHub Actions certificates, some e-mail identities, some bare keys, some in-toto with
the statement that Rekor v1 stores as ``attestation.data``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


@dataclass(frozen=True)
class Sample:
    name: str
    body: bytes
    attestation: bytes | None = None


def _bundle(name: str) -> tuple[bytes, bytes | None]:
    doc = json.loads((FIXTURES / "v1-bundles" / name).read_text())
    body = base64.b64decode(doc["verificationMaterial"]["tlogEntries"][0]["canonicalizedBody"])
    env = doc.get("dsseEnvelope")
    return body, base64.b64decode(env["payload"]) if env else None


# (fixture, weight, keep the statement as attestation.data?)
MIX: list[tuple[str, int, bool]] = [
    ("conformance.happy-path-v0.3.hashedrekord.sigstore.json", 20, False),  # GitHub Actions
    ("sigstore-python.bundle_v3_github.whl.hashedrekord.sigstore.json", 15, False),
    ("gh-cli.reusable-workflow-attestation.dsse.sigstore.json", 15, False),
    ("conformance.happy-path-intoto-in-dsse-v3.dsse.sigstore.json", 10, False),
    ("gh-cli.custom-issuer.dsse.sigstore.json", 5, False),
    ("sigstore-go.sigstore.js-2.0.0-provenance.intoto.sigstore.json", 5, True),  # in-toto
    ("gh-cli.sigstore-js-2.1.0.intoto.sigstore.json", 5, True),
    ("sigstore-js.bundleV03-dsse.sigstore.json", 5, False),  # e-mail identities
    ("cosign.oci-attestation.dsse.sigstore.json", 5, False),
    ("sigstore-java.PKIX_ECDSA_P384_SHA_384.hashedrekord.sigstore.json", 5, False),
    ("conformance.managed-key.hashedrekord-pubkey.sigstore.json", 10, False),  # bare key
]


def corpus() -> list[Sample]:
    """One sample per unit of weight (100 in all)."""
    out: list[Sample] = []
    for name, weight, attest in MIX:
        body, payload = _bundle(name)
        out += [Sample(name, body, payload if attest else None)] * weight
    return out
