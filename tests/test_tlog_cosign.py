"""The monitor's own cosignature/v1 key: read in Go's signed-note private key form (checked on
the reference implementation's own example key and signature), and its cosignatures verified
by the same verifier that checks real witnesses' cosignatures."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization

from monitor.core.errors import WitnessConfigError
from monitor.tlog.cosign import CheckpointCosigner
from monitor.tlog.witness import WitnessKey, verify_note_cosignatures

# golang.org/x/mod/sumdb/note's documented example: its key, text and signed note
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIG = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)


def test_the_go_reference_key_reads_as_go_writes_it() -> None:
    c = CheckpointCosigner.parse(GO_SKEY)
    assert c.name == "PeterNeumann"
    public = c.key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert "+".join(GO_VKEY.split("+")[:2]) == "PeterNeumann+c74f20a3"
    assert base64.b64decode(GO_VKEY.split("+")[2]) == b"\x01" + public
    # Ed25519 is deterministic: the same key gives the reference's signature exactly
    blob = base64.b64decode(GO_SIG)
    assert blob[4:] == c.key.sign(GO_TEXT.encode())
    assert c.private_text() == GO_SKEY


def cosigned_checkpoint(c: CheckpointCosigner, when: int) -> str:
    note = (
        "log2025-1.rekor.sigstore.dev\n42\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n"
        "\u2014 log2025-1.rekor.sigstore.dev abcdAAAA\n"
    )
    return c.cosign(note, when)


def test_its_cosignature_verifies_as_a_witness_cosignature() -> None:
    c = CheckpointCosigner.generate("monitor.acme.example")
    when = 1_765_000_000
    note = cosigned_checkpoint(c, when)
    (found,) = verify_note_cosignatures(note, [WitnessKey.parse(c.vkey())], now=when)
    assert (found.witness, found.time, found.status) == ("monitor.acme.example", when, "verified")
    # a key of the same name that is not this one does not verify it
    other = CheckpointCosigner.generate("monitor.acme.example")
    assert verify_note_cosignatures(note, [WitnessKey.parse(other.vkey())], now=when) == ()
    # and one changed byte of the body breaks it
    tampered = note.replace("\n42\n", "\n43\n")
    (bad,) = verify_note_cosignatures(tampered, [WitnessKey.parse(c.vkey())], now=when)
    assert bad.status == "invalid"


def test_a_generated_key_round_trips() -> None:
    c = CheckpointCosigner.generate("m")
    again = CheckpointCosigner.parse(c.private_text() + "\n")
    assert again.vkey() == c.vkey()
    assert "PRIVATE" not in repr(c)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("PeterNeumann+c74f20a3+AYEK", "does not start with PRIVATE+KEY+"),
        ("PRIVATE+KEY+PeterNeumann+c74f20a3", "is not PRIVATE+KEY+<name>+<key ID>+<key>"),
        ("PRIVATE+KEY+Peter Neumann+c74f20a3+AYEK", "not allowed in key names"),
        ("PRIVATE+KEY+PeterNeumann+c74f20a3+%%%%", "not valid base64"),
        ("PRIVATE+KEY+PeterNeumann+c74f20a3+AAAA", "not an Ed25519 signed-note key"),
        (GO_SKEY.replace("c74f20a3", "c74f20a4"), "does not match the name and key"),
        (GO_SKEY.replace("PeterNeumann", "PaulNeumann"), "does not match the name and key"),
    ],
)
def test_a_bad_key_is_named_without_quoting_it(text: str, problem: str) -> None:
    with pytest.raises(WitnessConfigError, match=r"^key\.pem: ") as info:
        CheckpointCosigner.parse(text, "key.pem")
    assert problem in str(info.value)
    assert "AYEKFALVFGyNhPJEMzD1" not in str(info.value)
