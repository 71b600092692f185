"""A certificate-transparency log for the simulator's CA: it signs SCTs, which the CA embeds
in its leaves as Fulcio does (sigstore-python verifies no certificate without one).

An embedded SCT signs the precertificate: the final TBSCertificate without the SCT list
extension, with the issuer's key hash (RFC 6962 section 3.2). The CA builds the leaf without
the extension, has its TBS signed, then appends the extension last, so that removing it
gives back exactly the bytes that were signed.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from monitor.core.encoding import b64encode
from monitor.sim.ca import derive_ec_key

SCT_LIST_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
SIM_CT_URL = "https://ctfe.sim.tlog-monitor.invalid"
_PRECERT_ENTRY = 1


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _der_octets(content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes((0x04, n)) + content
    size = (n.bit_length() + 7) // 8
    return bytes((0x04, 0x80 | size)) + n.to_bytes(size, "big") + content


@dataclass(frozen=True)
class SimCTLog:
    """An ECDSA P-256 CT log key; its log ID is the SHA-256 of its SubjectPublicKeyInfo."""

    key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls, seed: int) -> SimCTLog:
        return cls(derive_ec_key(seed, "ct:log", ec.SECP256R1()))

    @property
    def log_id(self) -> bytes:
        return hashlib.sha256(_spki(self.key.public_key())).digest()

    def sct_extension(
        self, precert_tbs: bytes, issuer: ec.EllipticCurvePublicKey, when: datetime
    ) -> x509.UnrecognizedExtension:
        """The SCT list extension for a leaf whose TBS (without this extension) is
        ``precert_tbs``, issued by the holder of ``issuer``."""
        stamp = int(when.timestamp()) * 1000  # whole seconds: exact through float round trips
        issuer_key_hash = hashlib.sha256(_spki(issuer)).digest()
        signed = (
            struct.pack("!BBQH", 0, 0, stamp, _PRECERT_ENTRY)
            + issuer_key_hash
            + len(precert_tbs).to_bytes(3, "big")
            + precert_tbs
            + struct.pack("!H", 0)  # no extensions
        )
        sig = self.key.sign(signed, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
        sct = (
            struct.pack("!B32sQH", 0, self.log_id, stamp, 0)
            + struct.pack(
                "!BBH",
                4,
                3,
                len(sig),  # sha256, ecdsa
            )
            + sig
        )
        listed = struct.pack("!H", len(sct)) + sct
        return x509.UnrecognizedExtension(
            SCT_LIST_OID, _der_octets(struct.pack("!H", len(listed)) + listed)
        )

    def trust_root_json(self, start: str) -> dict[str, Any]:
        """This log as an element of a Sigstore TrustedRoot's ``ctlogs``."""
        return {
            "baseUrl": SIM_CT_URL,
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": b64encode(_spki(self.key.public_key())),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": {"start": start},
            },
            "logId": {"keyId": b64encode(self.log_id)},
        }
