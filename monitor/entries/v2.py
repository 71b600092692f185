"""Rekor v2 entry kinds: hashedrekord 0.0.2 and dsse 0.0.2 (protobuf JSON, REKOR-FORMATS §6.4).

Verifiers carry DER bytes (a SubjectPublicKeyInfo or a certificate), digests are base64. In
Rekor v2 a DSSE envelope is usually logged as a hashedrekord over the DSSE PAE digest: the
entry alone cannot tell that from a plain blob signature; an envelope held beside it can.
"""

from __future__ import annotations

from collections.abc import Callable

from monitor.core.errors import MalformedInputError
from monitor.core.jsonread import JsonReader
from monitor.entries.common import EntryFields
from monitor.entries.keys import parse_pkix_public_key
from monitor.entries.record import Digest, Signer
from monitor.entries.x509 import parse_certificate_pem_or_der

MAX_SIGNATURES = 64
_ALGORITHMS = {
    "SHA2_256": ("sha256", 32),
    "SHA2_384": ("sha384", 48),
    "SHA2_512": ("sha512", 64),
    "SHA3_256": ("sha3-256", 32),
    "SHA3_384": ("sha3-384", 48),
}


def _digest(r: JsonReader) -> Digest:
    alg_r = r.get("algorithm")
    alg = _ALGORITHMS.get(alg_r.str())
    if alg is None:
        raise alg_r.fail(f"unknown hash algorithm {alg_r.str()[:30]!r}")
    raw = r.get("digest").b64()
    if len(raw) != alg[1]:
        raise r.get("digest").fail(f"{alg[0]} digest is {len(raw)} bytes, expected {alg[1]}")
    return Digest(alg[0], raw.hex())


def _verifier(r: JsonReader) -> Signer:
    cert = r.opt("x509Certificate")
    key = r.opt("publicKey")
    if (cert is None) == (key is None):
        raise r.fail("needs exactly one of x509Certificate and publicKey")
    field = (cert or key or r).get("rawBytes")
    raw = field.b64()
    try:
        if cert is not None:
            return parse_certificate_pem_or_der(raw)
        return parse_pkix_public_key(raw)
    except MalformedInputError as e:
        raise field.fail(str(e)) from None


def hashedrekord(spec: JsonReader) -> EntryFields:
    body = spec.get("hashedRekordV002")
    signer = _verifier(body.get("signature").get("verifier"))
    return EntryFields(signers=(signer,), artifact_digests=(_digest(body.get("data")),))


def dsse(spec: JsonReader) -> EntryFields:
    body = spec.get("dsseV002")
    sigs = body.get("signatures")
    items = sigs.items()
    if not items or len(items) > MAX_SIGNATURES:
        raise sigs.fail(f"needs 1 to {MAX_SIGNATURES} signatures, has {len(items)}")
    signers = tuple(_verifier(s.get("verifier")) for s in items)
    return EntryFields(signers=signers, payload_hash=_digest(body.get("payloadHash")))


KINDS: dict[tuple[str, str], Callable[[JsonReader], EntryFields]] = {
    ("hashedrekord", "0.0.2"): hashedrekord,
    ("dsse", "0.0.2"): dsse,
}
