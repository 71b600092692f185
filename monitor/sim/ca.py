"""A small Fulcio-like CA for the simulator: a root, an intermediate, short-lived leaves.

Everything is derived from a seed: the keys (scalars hashed from the seed), the serial numbers
and the signatures (RFC 6979 deterministic ECDSA), so one seed always gives the same DER bytes.

Leaves look like Fulcio's (REKOR-FORMATS.md section 5): an empty subject, a critical SAN naming
the identity, KeyUsage digitalSignature (critical), EKU codeSigning, SKI/AKI, then the Fulcio
extensions: ``.1.1``-``.1.6`` with the raw string as extnValue, ``.1.8`` onward as a DER
UTF8String. Usernames are an otherName ``.1.7`` holding a UTF8String.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from monitor.core.encoding import b64encode

if TYPE_CHECKING:  # ct.py derives its key with this module
    from monitor.sim.ct import SimCTLog

FULCIO_ARC = "1.3.6.1.4.1.57264.1"
USERNAME_SAN_OID = f"{FULCIO_ARC}.7"
GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"
LEAF_LIFETIME = timedelta(minutes=10)
DEFAULT_CA_START = datetime(2024, 1, 1, tzinfo=UTC)
CA_LIFETIME = timedelta(days=3653)
SIM_ORGANIZATION = "tlog-monitor-sim"
SIM_FULCIO_URI = "https://fulcio.sim.tlog-monitor.invalid"

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P384_ORDER = int(
    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
    16,
)


def seeded_bytes(seed: int, label: str, size: int = 32) -> bytes:
    """``size`` pseudo-random bytes for ``label`` under ``seed`` (SHAKE-256)."""
    return hashlib.shake_256(f"tlog-monitor-sim:{seed}:{label}".encode()).digest(size)


def derive_ec_key(seed: int, label: str, curve: ec.EllipticCurve) -> ec.EllipticCurvePrivateKey:
    """An EC private key whose scalar is hashed from ``seed`` and ``label``."""
    if not isinstance(curve, ec.SECP256R1 | ec.SECP384R1):
        raise ValueError(f"unsupported curve {curve.name}")
    order = P384_ORDER if isinstance(curve, ec.SECP384R1) else P256_ORDER
    scalar = int.from_bytes(seeded_bytes(seed, label, 64), "big") % (order - 1) + 1
    return ec.derive_private_key(scalar, curve)


def seeded_serial(seed: int, label: str) -> int:
    """A positive 159-bit serial number, as Fulcio's 20-byte random serials."""
    return int.from_bytes(seeded_bytes(seed, f"serial:{label}", 20), "big") >> 1 | 1 << 150


def der_utf8(text: str) -> bytes:
    """A DER UTF8String."""
    content = text.encode("utf-8")
    n = len(content)
    if n < 0x80:
        return bytes((0x0C, n)) + content
    size = (n.bit_length() + 7) // 8
    return bytes((0x0C, 0x80 | size)) + n.to_bytes(size, "big") + content


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class GitHubWorkflow:
    """A GitHub Actions workflow run: the OIDC claims Fulcio copies into the certificate.

    ``signer_workflow`` names a reusable workflow (``owner/repo/.github/workflows/f.yml@ref``):
    then it is the SAN and the build signer, and the caller stays the build config.
    """

    owner: str
    repo: str
    workflow_file: str = "release.yml"
    ref: str = "refs/heads/main"
    sha: str = "0" * 40
    workflow_name: str = "Release"
    trigger: str = "push"
    repository_id: str = "1"
    owner_id: str = "1"
    run_id: str = "1"
    run_attempt: str = "1"
    runner_environment: str = "github-hosted"
    visibility: str = "public"
    environment: str | None = None
    signer_workflow: str | None = None
    signer_sha: str | None = None
    server_url: str = "https://github.com"
    issuer: str = GITHUB_ACTIONS_ISSUER

    @property
    def repository(self) -> str:
        return f"{self.owner}/{self.repo}"

    @property
    def workflow_ref(self) -> str:
        return f"{self.repository}/.github/workflows/{self.workflow_file}@{self.ref}"

    @property
    def build_config_uri(self) -> str:
        return f"{self.server_url}/{self.workflow_ref}"

    @property
    def build_signer_uri(self) -> str:
        return f"{self.server_url}/{self.signer_workflow or self.workflow_ref}"

    @property
    def san_uri(self) -> str:
        """The certificate's identity: the workflow that ran the signing job."""
        return self.build_signer_uri

    @property
    def source_repository_uri(self) -> str:
        return f"{self.server_url}/{self.repository}"

    @property
    def owner_uri(self) -> str:
        return f"{self.server_url}/{self.owner}"

    @property
    def run_invocation_uri(self) -> str:
        return (
            f"{self.source_repository_uri}/actions/runs/{self.run_id}/attempts/{self.run_attempt}"
        )

    def fulcio_extensions(self) -> dict[int, str]:
        """Fulcio extension number (the last arc of ``1.3.6.1.4.1.57264.1.N``) -> value."""
        values = {
            1: self.issuer,
            2: self.trigger,
            3: self.sha,
            4: self.workflow_name,
            5: self.repository,
            6: self.ref,
            8: self.issuer,
            9: self.build_signer_uri,
            10: self.signer_sha or self.sha,
            11: self.runner_environment,
            12: self.source_repository_uri,
            13: self.sha,
            14: self.ref,
            15: self.repository_id,
            16: self.owner_uri,
            17: self.owner_id,
            18: self.build_config_uri,
            19: self.sha,
            20: self.trigger,
            21: self.run_invocation_uri,
            22: self.visibility,
        }
        if self.environment is not None:
            values[23] = self.environment
        return values


def _fulcio_extension(number: int, value: str) -> x509.UnrecognizedExtension:
    raw = value.encode("utf-8") if number <= 6 else der_utf8(value)
    return x509.UnrecognizedExtension(x509.ObjectIdentifier(f"{FULCIO_ARC}.{number}"), raw)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, SIM_ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


_CA_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)
_LEAF_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


@dataclass(frozen=True)
class SimCA:
    """A root and an intermediate (ECDSA P-384), issuing Fulcio-like leaf certificates."""

    seed: int
    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    intermediate_key: ec.EllipticCurvePrivateKey
    intermediate: x509.Certificate
    uri: str = SIM_FULCIO_URI

    @classmethod
    def create(cls, seed: int, *, not_before: datetime = DEFAULT_CA_START) -> SimCA:
        """The CA of ``seed``, valid for ten years from ``not_before``."""
        root_key = derive_ec_key(seed, "ca:root", ec.SECP384R1())
        inter_key = derive_ec_key(seed, "ca:intermediate", ec.SECP384R1())
        root_name = _name("sim-fulcio-root")
        root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
        root = (
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(root_key.public_key())
            .serial_number(seeded_serial(seed, "ca:root"))
            .not_valid_before(not_before)
            .not_valid_after(not_before + CA_LIFETIME)
            .add_extension(_CA_USAGE, critical=True)
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(root_ski, critical=False)
            .sign(root_key, hashes.SHA384(), ecdsa_deterministic=True)
        )
        inter = (
            x509.CertificateBuilder()
            .subject_name(_name("sim-fulcio-intermediate"))
            .issuer_name(root_name)
            .public_key(inter_key.public_key())
            .serial_number(seeded_serial(seed, "ca:intermediate"))
            .not_valid_before(not_before)
            .not_valid_after(not_before + CA_LIFETIME)
            .add_extension(_CA_USAGE, critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(inter_key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski),
                critical=False,
            )
            .sign(root_key, hashes.SHA384(), ecdsa_deterministic=True)
        )
        return cls(seed, root_key, root, inter_key, inter)

    @property
    def not_before(self) -> datetime:
        return self.intermediate.not_valid_before_utc

    @property
    def not_after(self) -> datetime:
        return self.intermediate.not_valid_after_utc

    def chain_der(self) -> tuple[bytes, bytes]:
        """(intermediate, root) as DER."""
        der = serialization.Encoding.DER
        return self.intermediate.public_bytes(der), self.root.public_bytes(der)

    def trust_root_ca_json(self) -> dict[str, Any]:
        """This CA as an element of a Sigstore TrustedRoot's ``certificateAuthorities``."""
        inter, root = self.chain_der()
        return {
            "subject": {"organization": SIM_ORGANIZATION, "commonName": "sim-fulcio"},
            "uri": self.uri,
            "certChain": {
                "certificates": [{"rawBytes": b64encode(inter)}, {"rawBytes": b64encode(root)}]
            },
            "validFor": {"start": _iso(self.not_before)},
        }

    # --- leaves -------------------------------------------------------------------------------

    def _leaf(
        self,
        public_key: CertificatePublicKeyTypes,
        san: x509.GeneralName,
        extensions: dict[int, str],
        not_before: datetime,
        serial: int | None,
        *,
        ct: SimCTLog | None = None,
    ) -> x509.Certificate:
        if serial is None:
            spki = public_key.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            serial = seeded_serial(self.seed, f"leaf:{spki.hex()}:{not_before.isoformat()}")
        inter_ski = x509.SubjectKeyIdentifier.from_public_key(self.intermediate_key.public_key())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.intermediate.subject)
            .public_key(public_key)
            .serial_number(serial)
            .not_valid_before(not_before)
            .not_valid_after(not_before + LEAF_LIFETIME)
            .add_extension(_LEAF_USAGE, critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(inter_ski),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName([san]), critical=True)
        )
        for number, value in sorted(extensions.items()):
            builder = builder.add_extension(_fulcio_extension(number, value), critical=False)
        if ct is not None:  # the SCT signs the leaf without it: append it last
            precert = builder.sign(self.intermediate_key, hashes.SHA384(), ecdsa_deterministic=True)
            issuer = self.intermediate_key.public_key()
            sct = ct.sct_extension(precert.tbs_certificate_bytes, issuer, not_before)
            builder = builder.add_extension(sct, critical=False)
        return builder.sign(self.intermediate_key, hashes.SHA384(), ecdsa_deterministic=True)

    def issue_github_actions(
        self,
        public_key: CertificatePublicKeyTypes,
        workflow: GitHubWorkflow,
        *,
        not_before: datetime,
        serial: int | None = None,
        ct: SimCTLog | None = None,
    ) -> x509.Certificate:
        """A GitHub Actions leaf: SAN URI of the workflow, every Fulcio extension filled."""
        san = x509.UniformResourceIdentifier(workflow.san_uri)
        return self._leaf(public_key, san, workflow.fulcio_extensions(), not_before, serial, ct=ct)

    def issue_email(
        self,
        public_key: CertificatePublicKeyTypes,
        email: str,
        issuer: str,
        *,
        not_before: datetime,
        serial: int | None = None,
        ct: SimCTLog | None = None,
    ) -> x509.Certificate:
        """An e-mail identity (SAN rfc822Name) from an OIDC ``issuer``."""
        san = x509.RFC822Name(email)
        return self._leaf(public_key, san, {1: issuer, 8: issuer}, not_before, serial, ct=ct)

    def issue_username(
        self,
        public_key: CertificatePublicKeyTypes,
        username: str,
        issuer: str,
        *,
        not_before: datetime,
        serial: int | None = None,
        ct: SimCTLog | None = None,
    ) -> x509.Certificate:
        """A username identity: SAN otherName ``1.3.6.1.4.1.57264.1.7`` with a UTF8String."""
        san = x509.OtherName(x509.ObjectIdentifier(USERNAME_SAN_OID), der_utf8(username))
        return self._leaf(public_key, san, {1: issuer, 8: issuer}, not_before, serial, ct=ct)
