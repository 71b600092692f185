"""Any bit of a simulator-made image artifact flipped (payload or annotation): never valid,
never an exception; and the cases the flips found, kept as tests of their own."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.imagesig import (
    ImageArtifact,
    Status,
)
from monitor.imagesig.artifacts import (
    ANNOTATION_BUNDLE,
    ANNOTATION_CERTIFICATE,
    ANNOTATION_SIGNATURE,
)
from tests.imagesig_support import IMAGE, OURS, REF, Sim, sim_world

sim = pytest.fixture(scope="module")(sim_world)


@pytest.fixture(scope="module")
def made(sim: Sim) -> dict[str, tuple[ImageArtifact, int]]:
    out = {}
    for form in ("signature", "attestation", "bundle"):
        m = getattr(sim.signer, form)(IMAGE, OURS, REF)
        out[form] = (m.artifact, m.log_index)
    return out


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    form=st.sampled_from(["signature", "attestation", "bundle"]),
    where=st.sampled_from(
        ["payload", ANNOTATION_SIGNATURE, ANNOTATION_BUNDLE, "dev.sigstore.cosign/certificate"]
    ),
    at=st.integers(min_value=0),
    bit=st.integers(min_value=0, max_value=7),
)
def test_any_flipped_bit_is_caught_never_raised(
    sim: Sim,
    made: dict[str, tuple[ImageArtifact, int]],
    *,
    form: str,
    where: str,
    at: int,
    bit: int,
) -> None:
    artifact, index = made[form]
    benign = False  # a change that decodes to the same certificate (a padding bit, a space)
    if where == "payload":
        data = bytearray(artifact.payload)
        data[at % len(data)] ^= 1 << bit
        changed = dataclasses.replace(artifact, payload=bytes(data))
    else:
        text = artifact.annotations.get(where)
        if text is None:
            return
        raw = bytearray(text.encode())
        raw[at % len(raw)] ^= 1 << bit
        value = raw.decode("utf-8", "replace")
        changed = dataclasses.replace(artifact, annotations={**artifact.annotations, where: value})
        benign = where == ANNOTATION_CERTIFICATE and same_certificate(text, value)
    v = sim.verifier.verify(changed, IMAGE, sim.signer.proof(index))
    assert benign or v.status is not Status.VALID, (where, at, bit)


def same_certificate(pem: str, other: str) -> bool:
    try:
        changed = x509.load_pem_x509_certificate(other.encode())
    except ValueError:
        return False
    return changed == x509.load_pem_x509_certificate(pem.encode())


def test_a_certificate_without_key_usage_is_invalid_not_raised(
    sim: Sim, made: dict[str, tuple[ImageArtifact, int]]
) -> None:
    """Found by the bit flips above: one bit turned the keyUsage extension's OID into an
    unknown one, and sigstore let cryptography's ExtensionNotFound through."""
    artifact, index = made["signature"]
    pem = artifact.annotations[ANNOTATION_CERTIFICATE].encode()
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    key_usage_oid = b"\x06\x03\x55\x1d\x0f"  # 2.5.29.15
    assert der.count(key_usage_oid) == 1
    broken = der.replace(key_usage_oid, b"\x06\x03\x55\x1d\x7f")
    pem_broken = x509.load_der_x509_certificate(broken).public_bytes(serialization.Encoding.PEM)
    changed = dataclasses.replace(
        artifact,
        annotations={
            **artifact.annotations,
            "dev.sigstore.cosign/certificate": pem_broken.decode(),
        },
    )
    v = sim.verifier.verify(changed, IMAGE, sim.signer.proof(index))
    assert v.status is Status.INVALID
    assert v.reason
