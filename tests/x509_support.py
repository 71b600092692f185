"""What the certificate tests share: the signing certificates of the fixtures, the trusted
CAs of production and staging, PEM armour, and certificates made to order (a P-256 key, the
Fulcio intermediate's name)."""

from __future__ import annotations

import base64
import functools
import json
import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

from monitor.trust.root import CertificateAuthority, load_trust_root
from tests.conftest import FIXTURES, STAGING_ROOT

# --- reading the certificates out of the fixtures ---------------------------------------------


def _load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def fixture_der(path: Path) -> bytes | None:
    """The signing certificate of a bundle or v2 entry fixture, or None if it has none."""
    doc = _load_json(path)
    material = doc.get("verificationMaterial")
    if material is not None:
        if "certificate" in material:
            return base64.b64decode(material["certificate"]["rawBytes"])
        if "x509CertificateChain" in material:
            chain = material["x509CertificateChain"]["certificates"]
            return base64.b64decode(chain[0]["rawBytes"])
        return None
    if "canonicalizedBody" in doc:
        body = json.loads(base64.b64decode(doc["canonicalizedBody"]))
        verifier = body["spec"]["hashedRekordV002"]["signature"]["verifier"]
        if "x509Certificate" in verifier:
            return base64.b64decode(verifier["x509Certificate"]["rawBytes"])
    return None


def certificate_fixtures() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for sub in ("v1-bundles", "v2"):
        for path in sorted((FIXTURES / sub).glob("*.json")):
            der = fixture_der(path)
            if der is not None:
                out[path.name] = der
    return out


CERTS = certificate_fixtures()


def der_of(name: str) -> bytes:
    return CERTS[name]


@functools.cache
def prod_cas() -> tuple[CertificateAuthority, ...]:
    return load_trust_root().certificate_authorities


@functools.cache
def staging_cas() -> tuple[CertificateAuthority, ...]:
    return load_trust_root(str(STAGING_ROOT)).certificate_authorities


REUSABLE = "gh-cli.reusable-workflow-attestation.dsse.sigstore.json"


def pem(der: bytes) -> bytes:
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n".encode()


def prod_intermediate() -> CertificateAuthority:
    (ca,) = [ca for ca in prod_cas() if ca.valid_until is None]
    return ca


# --- self-made certificates -------------------------------------------------------------------

SIGSTORE_DN = x509.Name(
    [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sigstore.dev"),
        x509.NameAttribute(NameOID.COMMON_NAME, "sigstore-intermediate"),
    ]
)
NOW = datetime.now(UTC).replace(microsecond=0)
KEY = ec.generate_private_key(ec.SECP256R1())


def unknown(oid: str, value: bytes) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(ObjectIdentifier(oid), value)


def make_cert(
    *,
    extensions: Sequence[x509.ExtensionType] = (),
    issuer: x509.Name = SIGSTORE_DN,
    signing_key: ec.EllipticCurvePrivateKey = KEY,
    subject_key: Any = None,
    not_before: datetime = NOW,
    lifetime: timedelta = timedelta(minutes=10),
    serial: int = 1,
    subject: x509.Name | None = None,
) -> bytes:
    """A DER certificate; ``KEY`` signs unless ``signing_key`` is given."""
    public = (subject_key or signing_key).public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject or x509.Name([]))
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_before + lifetime)
    )
    for ext in extensions:
        builder = builder.add_extension(ext, critical=False)
    return builder.sign(signing_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def make_ca(
    key: ec.EllipticCurvePrivateKey, not_before: datetime, lifetime: timedelta
) -> x509.Certificate:
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    der = make_cert(
        extensions=[x509.BasicConstraints(ca=True, path_length=0), ski],
        subject=SIGSTORE_DN,
        signing_key=key,
        not_before=not_before,
        lifetime=lifetime,
    )
    return x509.load_der_x509_certificate(der)
