"""A realistic mix of real Rekor entry bodies, taken from the production fixtures.

Mostly GitHub Actions certificates, some e-mail identities, some bare keys, some in-toto with
the statement that Rekor v1 stores as ``attestation.data``.

``corpus`` repeats the same eleven entries, so whatever a parser remembers from one certificate
to the next is always there. ``production_corpus`` is the same mix as production sees it: every
Fulcio certificate is issued afresh (a new key, serial, validity, subject key identifier and
SCT, as Fulcio issues every certificate), re-signed by a throwaway CA under the fixture's
issuer name; with ``new_identities``, each also for a new run of a new identity (workflow
repository and commit, or e-mail address).
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

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


def signer_fields(spec: Any, kind: str) -> list[tuple[Any, str]]:
    """Where each kind of the corpus keeps the base64 of its certificate or key: (the object
    holding it, its key)."""
    if kind == "hashedrekord":
        return [(spec["signature"]["publicKey"], "content")]
    if kind == "dsse":
        return [(sig, "verifier") for sig in spec["signatures"]]
    return [(sig, "publicKey") for sig in spec["content"]["envelope"]["signatures"]]


_SCT_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
_FULCIO_ARC = "1.3.6.1.4.1.57264.1."
_RAW_FULCIO = {f"{_FULCIO_ARC}{n}" for n in range(1, 7)}  # bare strings; the rest UTF8String
_RUN = f"{_FULCIO_ARC}21"
# the repository, the commit, the repository's and its owner's ids, the run
_IDENTITY = {f"{_FULCIO_ARC}{n}" for n in (3, 5, 15, 17)} | {_RUN}
_RUN_ID = re.compile(rb"/runs/([0-9]+)/")
_LOWER = string.ascii_lowercase + string.digits


class _Issuer:
    """Issues fresh certificates like a fixture's: same extensions, issuer name, curve."""

    def __init__(self, cert: x509.Certificate, rng: random.Random) -> None:
        self.cert, self.rng = cert, rng
        key = cert.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)
        self.curve = key.curve
        self.ca_key = ec.generate_private_key(ec.SECP384R1())
        self.subs = self._identity_parts()

    def _identity_parts(self) -> list[bytes]:
        """The identity strings a fresh certificate replaces: the repository owner and name and
        their ids, the commit, the run id; or the e-mail address's local part."""
        parts: list[bytes] = []
        for ext in self.cert.extensions:
            value, oid = ext.value, ext.oid.dotted_string
            if isinstance(value, x509.SubjectAlternativeName):
                for email in value.get_values_for_type(x509.RFC822Name):
                    parts.append(email.split("@")[0].encode())
            elif isinstance(value, x509.UnrecognizedExtension) and oid in _IDENTITY:
                raw = value.value if oid in _RAW_FULCIO else _utf8_content(value.value)
                if oid == _RUN:
                    parts.append(_RUN_ID.search(raw).group(1))  # type: ignore[union-attr]
                else:
                    parts += raw.split(b"/")
        # longest first ("owner" inside "owner-repo"); never a part of the issuer's names
        return sorted({p for p in parts if len(p) > 3 and p != b"github"}, key=len, reverse=True)

    def _fresh(self, old: bytes) -> bytes:
        rng = self.rng
        if old.isdigit():
            return str(rng.randrange(10 ** (len(old) - 1), 10 ** len(old))).encode()
        if re.fullmatch(rb"[0-9a-f]{40}", old):
            return rng.randbytes(20).hex().encode()
        size = max(3, len(old) + rng.randrange(-3, 4))
        return "".join(rng.choice(_LOWER) for _ in range(size)).encode()

    def _rewrite(self, text: bytes, table: dict[bytes, bytes]) -> bytes:
        for old, new in table.items():
            text = text.replace(old, new)
        return text

    def _sct(self, value: x509.PrecertificateSignedCertificateTimestamps) -> bytes:
        """A fresh SCT list extension value: the same log, a new timestamp and signature."""
        items = b""
        for sct in value:
            sig = (
                b"\x30\x44\x02\x20" + self.rng.randbytes(32) + b"\x02\x20" + self.rng.randbytes(32)
            )
            data = (
                b"\x00" + sct.log_id + self.rng.randbytes(8)  # v1, log, timestamp
                + b"\x00\x00\x04\x03"  # no extensions, SHA-256 with ECDSA
                + len(sig).to_bytes(2, "big") + sig
            )  # fmt: skip
            items += len(data).to_bytes(2, "big") + data
        tls = len(items).to_bytes(2, "big") + items
        return b"\x04" + _der_length(len(tls)) + tls

    def issue(self, new_identity: bool) -> bytes:
        """The DER of a fresh certificate; for a new identity, commit and run too when
        ``new_identity``."""
        rng, cert = self.rng, self.cert
        table = {old: self._fresh(old) for old in self.subs} if new_identity else {}
        key = ec.generate_private_key(self.curve).public_key()
        start = cert.not_valid_before_utc + timedelta(seconds=rng.randrange(10**7))
        builder = (
            x509.CertificateBuilder()
            .issuer_name(cert.issuer)
            .subject_name(cert.subject)
            .public_key(key)
            .serial_number(rng.getrandbits(159) | 1 << 150)
            .not_valid_before(start)
            .not_valid_after(start + timedelta(minutes=10))
        )
        for ext in cert.extensions:
            value: x509.ExtensionType = ext.value
            oid = ext.oid.dotted_string
            if isinstance(value, x509.SubjectKeyIdentifier):
                value = x509.SubjectKeyIdentifier.from_public_key(key)
            elif isinstance(value, x509.SubjectAlternativeName):
                value = x509.SubjectAlternativeName(
                    [_rewritten_name(n, lambda t: self._rewrite(t, table)) for n in value]
                )
            elif isinstance(value, x509.PrecertificateSignedCertificateTimestamps):
                value = x509.UnrecognizedExtension(_SCT_OID, self._sct(value))
            elif isinstance(value, x509.UnrecognizedExtension) and oid in _RAW_FULCIO:
                value = x509.UnrecognizedExtension(ext.oid, self._rewrite(value.value, table))
            elif isinstance(value, x509.UnrecognizedExtension) and oid.startswith(_FULCIO_ARC):
                text = self._rewrite(_utf8_content(value.value), table)
                value = x509.UnrecognizedExtension(ext.oid, b"\x0c" + _der_length(len(text)) + text)
            builder = builder.add_extension(value, ext.critical)
        signed = builder.sign(self.ca_key, hashes.SHA384())
        return signed.public_bytes(serialization.Encoding.DER)


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    size = (n.bit_length() + 7) // 8
    return bytes((0x80 | size,)) + n.to_bytes(size, "big")


def _der_head(tlv: bytes) -> bytes:
    return tlv[: 2 + (tlv[1] & 0x7F if tlv[1] & 0x80 else 0)]


def _utf8_content(tlv: bytes) -> bytes:
    assert tlv[0] == 0x0C
    return tlv[len(_der_head(tlv)) :]


def _rewritten_name(name: x509.GeneralName, rewrite: Any) -> x509.GeneralName:
    if isinstance(name, x509.UniformResourceIdentifier):
        return x509.UniformResourceIdentifier(rewrite(name.value.encode()).decode())
    if isinstance(name, x509.RFC822Name):
        return x509.RFC822Name(rewrite(name.value.encode()).decode())
    return name


def production_corpus(
    size: int = 2000, seed: int = 1, *, new_identities: bool = False
) -> list[Sample]:
    """``size`` entries of the same mix as ``corpus``, each of whose certificates is fresh: a
    new key, serial, validity, subject key identifier and SCT, as Fulcio issues every one. The
    identities, commits and runs are the fixtures' (as when runs of a few workflows sign many
    artifacts), unless ``new_identities``: then every certificate is also for a new identity,
    commit and run, which nothing repeats (the worst case for what is remembered)."""
    rng = random.Random(seed)  # noqa: S311 - test data, reproducible by its seed
    base = corpus()
    issuers: dict[str, _Issuer] = {}
    out: list[Sample] = []
    for i in range(size):
        sample = base[i % len(base)]
        doc = json.loads(sample.body)
        for holder, field in signer_fields(doc["spec"], doc["kind"]):
            pem = base64.b64decode(holder[field])
            if not pem.startswith(b"-----BEGIN CERTIFICATE-----"):
                continue
            issuer = issuers.get(sample.name)
            if issuer is None:
                issuer = issuers[sample.name] = _Issuer(x509.load_pem_x509_certificate(pem), rng)
            fresh = x509.load_der_x509_certificate(issuer.issue(new_identities))
            holder[field] = base64.b64encode(
                fresh.public_bytes(serialization.Encoding.PEM)
            ).decode()
        body = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        out.append(Sample(sample.name, body, sample.attestation))
    return out
