"""Signed notes (C2SP signed-note) and checkpoint bodies (C2SP tlog-checkpoint).

Every note here is signed in the test with a freshly generated key; key IDs are checked against
an independent computation (tests/helpers_notes.py) and against published vectors.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from monitor.core.errors import NoteError
from monitor.tlog.checkpoint import Checkpoint, open_checkpoint
from monitor.tlog.note import (
    MAX_NOTE_BYTES,
    MAX_SIGNATURES,
    AnyNameVerifier,
    EcdsaNoteVerifier,
    Ed25519NoteVerifier,
    NoteSignature,
    NoteVerifier,
    RsaNoteVerifier,
    SignedNote,
    verify_note,
)
from tests.helpers_notes import (
    EM_DASH,
    NoteSigner,
    checkpoint_text,
    ecdsa_key_id,
    ecdsa_signer,
    ed25519_key_id,
    ed25519_signer,
    flip_bit,
    flip_signature_bit,
    make_note,
    rsa_key_id,
    rsa_signer,
    sign_note,
    signature_line,
)

FIXTURES = Path(__file__).parent / "fixtures"
NAME = "example.com/log"
ROOT = hashlib.sha256(b"root").digest()
TEXT = checkpoint_text(NAME, 1234, ROOT)
SIGNATURE_CHECK = "checkpoint-signature"
FORMAT_CHECK = "note-format"

# A signer, the verifier for its public key, and a verifier with the same (name, key ID) but a
# different public key.
KeySet = tuple[NoteSigner, NoteVerifier, NoteVerifier]


def _ed25519(name: str) -> KeySet:
    signer, priv = ed25519_signer(name)
    other = ed25519.Ed25519PrivateKey.generate().public_key()
    return (
        signer,
        Ed25519NoteVerifier.create(name, priv.public_key()),
        Ed25519NoteVerifier(name, signer.key_id, other),
    )


def _ecdsa(curve: ec.EllipticCurve, algo: type[hashes.HashAlgorithm]) -> Callable[[str], KeySet]:
    def make(name: str) -> KeySet:
        signer, priv = ecdsa_signer(name, curve, algo())
        other = ec.generate_private_key(curve).public_key()
        return (
            signer,
            EcdsaNoteVerifier.create(name, priv.public_key()),
            EcdsaNoteVerifier(name, signer.key_id, other, algo),
        )

    return make


def _rsa(name: str) -> KeySet:
    signer, priv = rsa_signer(name)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    return (
        signer,
        RsaNoteVerifier.create(name, priv.public_key()),
        RsaNoteVerifier(name, signer.key_id, other),
    )


ALGORITHMS: dict[str, Callable[[str], KeySet]] = {
    "ed25519": _ed25519,
    "ecdsa-p256-sha256": _ecdsa(ec.SECP256R1(), hashes.SHA256),
    "ecdsa-p384-sha384": _ecdsa(ec.SECP384R1(), hashes.SHA384),
    "rsa-pkcs1v15-sha256": _rsa,
}


@pytest.fixture(params=sorted(ALGORITHMS))
def keyset(request: pytest.FixtureRequest) -> KeySet:
    make: Callable[[str], KeySet] = ALGORITHMS[request.param]
    return make(NAME)


def _open(raw: str | bytes, verifiers: list[NoteVerifier]) -> tuple[NoteVerifier, ...]:
    return verify_note(SignedNote.from_text(raw), verifiers)


def _fails_signature(raw: str, verifiers: list[NoteVerifier], match: str) -> None:
    with pytest.raises(NoteError, match=match) as info:
        _open(raw, verifiers)
    assert info.value.check == SIGNATURE_CHECK


# --- key IDs -------------------------------------------------------------------------------


def test_ed25519_key_id_matches_independent_computation() -> None:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    expected = hashlib.sha256(NAME.encode() + b"\x0a\x01" + raw).digest()[:4]
    assert Ed25519NoteVerifier.create(NAME, key).key_id == expected
    assert ed25519_key_id(NAME, key) == expected
    # the name is part of the key ID
    assert Ed25519NoteVerifier.create(NAME + "2", key).key_id != expected


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()], ids=["p256", "p384"])
def test_ecdsa_key_id_matches_independent_computation(curve: ec.EllipticCurve) -> None:
    key = ec.generate_private_key(curve).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    expected = hashlib.sha256(der).digest()[:4]
    assert EcdsaNoteVerifier.create(NAME, key).key_id == expected
    assert ecdsa_key_id(key) == expected
    # the name is not part of an ECDSA key ID
    assert EcdsaNoteVerifier.create("other.name", key).key_id == expected


def test_ecdsa_hash_follows_curve() -> None:
    p256 = ec.generate_private_key(ec.SECP256R1()).public_key()
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    assert EcdsaNoteVerifier.create(NAME, p256).hash_algorithm is hashes.SHA256
    assert EcdsaNoteVerifier.create(NAME, p384).hash_algorithm is hashes.SHA384
    assert EcdsaNoteVerifier.create(NAME, p256, hashes.SHA384).hash_algorithm is hashes.SHA384


def test_rsa_key_id_matches_independent_computation() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    expected = hashlib.sha256(
        NAME.encode() + b"\n" + b"\xff" + b"PKIX-RSA-PKCS#1v1.5" + der
    ).digest()[:4]
    assert RsaNoteVerifier.create(NAME, key).key_id == expected
    assert rsa_key_id(NAME, key) == expected
    assert RsaNoteVerifier.create(NAME + "2", key).key_id != expected


def test_known_vector_go_sumdb_note() -> None:
    # golang.org/x/mod/sumdb/note package documentation: verifier key
    # "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW" and its signed note.
    vkey = base64.b64decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    assert vkey[0] == 0x01
    verifier = Ed25519NoteVerifier.create(
        "PeterNeumann", ed25519.Ed25519PublicKey.from_public_bytes(vkey[1:])
    )
    assert verifier.key_id.hex() == "c74f20a3"
    note = (
        "If you think cryptography is the answer to your problem,\n"
        "then you don't know what your problem is.\n"
        "\n"
        f"{EM_DASH} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSN"
        "XgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    )
    assert _open(note, [verifier]) == (verifier,)


def test_known_vector_rekor_v1_prod_key() -> None:
    key = serialization.load_pem_public_key(
        (FIXTURES / "trust" / "rekor.pub.prod.pem").read_bytes()
    )
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert EcdsaNoteVerifier.create("rekor.sigstore.dev", key).key_id.hex() == "c0d23d6a"


def test_known_vector_rekor_v2_prod_key() -> None:
    der = base64.b64decode("MCowBQYDK2VwAyEAt8rlp1knGwjfbcXAYPYAkn0XiLz1x8O4t0YkEhie244=")
    key = serialization.load_der_public_key(der)
    assert isinstance(key, ed25519.Ed25519PublicKey)
    verifier = Ed25519NoteVerifier.create("log2025-1.rekor.sigstore.dev", key)
    assert verifier.key_id.hex() == "cf119915"


# --- signature verification, per algorithm -------------------------------------------------


def test_signed_note_verifies(keyset: KeySet) -> None:
    signer, verifier, _ = keyset
    assert verifier.key_id == signer.key_id
    note = sign_note(TEXT, [signer])
    parsed = SignedNote.from_text(note)
    assert parsed.text == TEXT
    assert [(sig.name, sig.key_id) for sig in parsed.signatures] == [(NAME, signer.key_id)]
    assert verify_note(parsed, [verifier]) == (verifier,)
    assert _open(note.encode("utf-8"), [verifier]) == (verifier,)


def test_signed_checkpoint_opens(keyset: KeySet) -> None:
    signer, verifier, _ = keyset
    note = sign_note(TEXT, [signer])
    cp = open_checkpoint(note, [verifier])
    assert (cp.origin, cp.size, cp.root_hash) == (NAME, 1234, ROOT)
    assert cp.signers == (NAME,)
    assert cp.raw == note
    assert open_checkpoint(note.encode("utf-8"), [verifier]).raw == note


def test_flipped_text_bit_fails(keyset: KeySet) -> None:
    signer, verifier, _ = keyset
    note = sign_note(TEXT, [signer])
    tampered = flip_bit(note.encode("utf-8"), 0).decode("utf-8")  # "e" -> "d" in the origin
    assert tampered != note
    assert tampered.endswith(note[1:])
    _fails_signature(tampered, [verifier], "does not verify")


def test_flipped_size_bit_fails(keyset: KeySet) -> None:
    signer, verifier, _ = keyset
    note = sign_note(TEXT, [signer])
    tampered = note.replace("\n1234\n", "\n1235\n", 1)
    _fails_signature(tampered, [verifier], "does not verify")
    with pytest.raises(NoteError) as info:
        open_checkpoint(tampered, [verifier])
    assert info.value.check == SIGNATURE_CHECK


def test_flipped_signature_bit_fails(keyset: KeySet) -> None:
    signer, verifier, _ = keyset
    note = sign_note(TEXT, [signer])
    tampered = flip_signature_bit(note)
    assert tampered != note
    match = re.escape(f"signature by {NAME} (key ID {signer.key_id.hex()}) does not verify")
    _fails_signature(tampered, [verifier], match)


def test_wrong_key_with_same_key_id_fails(keyset: KeySet) -> None:
    signer, _, wrong = keyset
    assert (wrong.name, wrong.key_id) == (signer.name, signer.key_id)
    _fails_signature(sign_note(TEXT, [signer]), [wrong], "does not verify")


def test_wrong_key_is_not_trusted(keyset: KeySet) -> None:
    signer, verifier, _ = keyset
    other_signer, other_verifier, _ = _ed25519(NAME)
    _fails_signature(sign_note(TEXT, [signer]), [other_verifier], "no signature from a trusted key")
    assert _open(sign_note(TEXT, [other_signer]), [verifier, other_verifier]) == (other_verifier,)


def test_truncated_signature_fails(keyset: KeySet) -> None:
    signer, verifier, _ = keyset
    note = make_note(TEXT, [signature_line(NAME, signer.key_id, b"\x00")])
    _fails_signature(note, [verifier], "does not verify")


def test_ecdsa_hash_mismatch_fails() -> None:
    signer, priv = ecdsa_signer(NAME, ec.SECP256R1(), hashes.SHA384())
    verifier = EcdsaNoteVerifier.create(NAME, priv.public_key())  # P-256 -> SHA-256
    _fails_signature(sign_note(TEXT, [signer]), [verifier], "does not verify")


def test_rsa_pss() -> None:
    priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = rsa_key_id(NAME, priv.public_key())

    def pss_sign(message: bytes) -> bytes:
        pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        return priv.sign(message, pad, hashes.SHA256())

    def pkcs1_sign(message: bytes) -> bytes:
        return priv.sign(message, padding.PKCS1v15(), hashes.SHA256())

    pss_verifier = RsaNoteVerifier.create(NAME, priv.public_key(), pss=True)
    pss_note = sign_note(TEXT, [NoteSigner(NAME, kid, pss_sign)])
    pkcs1_note = sign_note(TEXT, [NoteSigner(NAME, kid, pkcs1_sign)])
    assert _open(pss_note, [pss_verifier]) == (pss_verifier,)
    _fails_signature(pkcs1_note, [pss_verifier], "does not verify")
    _fails_signature(pss_note, [RsaNoteVerifier.create(NAME, priv.public_key())], "does not verify")


# --- several signers ------------------------------------------------------------------------


def _junk_line(name: str, key_id: bytes) -> str:
    return signature_line(name, key_id, b"\x5a" * 64)


def test_unknown_signer_is_ignored() -> None:
    signer, verifier, _ = _ed25519(NAME)
    witness, _ = ed25519_signer("witness.example")
    for order in ([witness, signer], [signer, witness]):
        note = sign_note(TEXT, order)
        assert len(SignedNote.from_text(note).signatures) == 2
        assert _open(note, [verifier]) == (verifier,)
    # an unknown signer's invalid signature is not even looked at
    note = make_note(TEXT, [_junk_line("witness.example", b"\x01\x02\x03\x04"), signer.line(TEXT)])
    assert _open(note, [verifier]) == (verifier,)


def test_only_unknown_signers_rejected() -> None:
    _, verifier, _ = _ed25519(NAME)
    witness1, _ = ed25519_signer("w1.example")
    witness2, _ = ed25519_signer("w2.example")
    note = sign_note(TEXT, [witness1, witness2])
    _fails_signature(note, [verifier], re.escape("no signature from a trusted key (signed by: w1"))
    _fails_signature(note, [], re.escape("trusted: none)"))


def test_known_bad_signature_rejects_note_despite_good_one() -> None:
    good, good_verifier, _ = _ed25519("good.example")
    bad, bad_verifier, _ = _ed25519("bad.example")
    bad_line = signature_line(bad.name, bad.key_id, bad.sign(b"something else"))
    match = re.escape(f"signature by bad.example (key ID {bad.key_id.hex()}) does not verify")
    for lines in ([good.line(TEXT), bad_line], [bad_line, good.line(TEXT)]):
        _fails_signature(make_note(TEXT, lines), [good_verifier, bad_verifier], match)
    # without trusting bad.example, the same note verifies
    assert _open(make_note(TEXT, [bad_line, good.line(TEXT)]), [good_verifier]) == (good_verifier,)


def test_same_name_other_key_id_is_unknown() -> None:
    signer, verifier, _ = _ed25519(NAME)
    other_id = flip_bit(signer.key_id, 3)
    junk = _junk_line(NAME, other_id)
    assert _open(make_note(TEXT, [junk, signer.line(TEXT)]), [verifier]) == (verifier,)
    _fails_signature(make_note(TEXT, [junk]), [verifier], "no signature from a trusted key")
    # a genuine signature under the right name but announced with another key ID is not used
    genuine = signature_line(NAME, other_id, signer.sign(TEXT.encode()))
    _fails_signature(make_note(TEXT, [genuine]), [verifier], "no signature from a trusted key")


def test_same_key_id_other_name_is_unknown() -> None:
    signer, verifier, _ = _ed25519(NAME)
    junk = _junk_line("other.example", signer.key_id)
    assert _open(make_note(TEXT, [junk, signer.line(TEXT)]), [verifier]) == (verifier,)
    genuine = signature_line("other.example", signer.key_id, signer.sign(TEXT.encode()))
    _fails_signature(make_note(TEXT, [genuine]), [verifier], "no signature from a trusted key")


# --- Rekor v1: the key hint picks the line, whatever its name ------------------------------


def test_any_name_verifier_takes_any_name(keyset: KeySet) -> None:
    signer, verifier, _ = keyset
    pod = "rekor-00001-deployment-56bf7777c9-jds5x"
    line = signature_line(pod, signer.key_id, signer.sign(TEXT.encode()))
    any_name = AnyNameVerifier(verifier)
    assert _open(make_note(TEXT, [line]), [any_name]) == (any_name,)
    cp = open_checkpoint(make_note(TEXT, [line]), [any_name])
    assert cp.signers == (pod,)  # the name the log signed under, as evidence
    # the same line is unknown to the verifier bound to its name
    _fails_signature(make_note(TEXT, [line]), [verifier], "no signature from a trusted key")


def test_any_name_verifier_still_needs_key_hint_and_key(keyset: KeySet) -> None:
    signer, verifier, impostor = keyset
    any_name = AnyNameVerifier(verifier)
    # another key hint: not the log's line, so no trusted signature at all
    other_hint = signature_line("pod", flip_bit(signer.key_id, 0), signer.sign(TEXT.encode()))
    _fails_signature(make_note(TEXT, [other_hint]), [any_name], re.escape("trusted: any name/"))
    # the right hint, the wrong key: the log's line does not verify, the note is refused
    impostor_any = AnyNameVerifier(impostor)
    _fails_signature(make_note(TEXT, [signer.line(TEXT)]), [impostor_any], "does not verify")
    good = make_note(TEXT, [signature_line("pod", signer.key_id, signer.sign(TEXT.encode()))])
    _fails_signature(flip_signature_bit(good), [any_name], "does not verify")
    # two lines with the log's hint under two names: signed twice
    twice = [signature_line(n, signer.key_id, signer.sign(TEXT.encode())) for n in ("a", "b")]
    with pytest.raises(NoteError, match="signed twice"):
        _open(make_note(TEXT, twice), [any_name])


def test_any_name_verifier_ignores_cosigners() -> None:
    signer, verifier, _ = _ed25519(NAME)
    witness, _ = ed25519_signer("witness.example")
    note = sign_note(TEXT, [witness, signer])
    any_name = AnyNameVerifier(verifier)
    assert _open(note, [any_name]) == (any_name,)


def test_same_key_signing_twice_rejected() -> None:
    signer, verifier, _ = _ed25519(NAME)
    note = make_note(TEXT, [signer.line(TEXT), signer.line(TEXT)])
    with pytest.raises(NoteError, match="note is signed twice by") as info:
        _open(note, [verifier])
    assert info.value.check == FORMAT_CHECK


def test_sixteen_known_signatures_accepted() -> None:
    keysets = [_ed25519(f"signer{i}.example") for i in range(16)]
    note = sign_note(TEXT, [k[0] for k in keysets])
    verifiers = [k[1] for k in keysets]
    assert _open(note, verifiers) == tuple(verifiers)


def test_max_signatures_accepted_and_one_more_rejected() -> None:
    signer, verifier, _ = _ed25519(NAME)
    junk = [_junk_line(f"w{i}.example", i.to_bytes(4, "big")) for i in range(MAX_SIGNATURES)]
    note = make_note(TEXT, [signer.line(TEXT), *junk[: MAX_SIGNATURES - 1]])
    assert len(SignedNote.from_text(note).signatures) == MAX_SIGNATURES
    assert _open(note, [verifier]) == (verifier,)
    too_many = make_note(TEXT, [signer.line(TEXT), *junk])
    with pytest.raises(NoteError, match=f"note has more than {MAX_SIGNATURES} signatures") as info:
        SignedNote.from_text(too_many)
    assert info.value.check == FORMAT_CHECK


# --- malformed notes ----------------------------------------------------------------------

_SIG = base64.b64encode(b"\x01\x02\x03\x04" + b"\x00" * 64).decode()
_GOOD = make_note(TEXT, [f"{EM_DASH} {NAME} {_SIG}\n"])
_URLSAFE_SIG = base64.urlsafe_b64encode(b"\xfb\xff" * 34).decode()

MALFORMED: dict[str, tuple[str | bytes, str]] = {
    "not-utf8": (b"\xff" + _GOOD.encode(), "note is not valid UTF-8"),
    "not-utf8-overlong": (b"\xc0\xae" + _GOOD.encode(), "note is not valid UTF-8"),
    "lone-surrogate-str": ("\ud800" + _GOOD, "note is not valid UTF-8"),
    "carriage-return": (_GOOD.replace("\n", "\r\n", 1), "note contains control character 0x0d"),
    "tab": ("a\t" + _GOOD, "note contains control character 0x09"),
    "nul": ("a\x00" + _GOOD, "note contains control character 0x00"),
    "control-in-signature": (_GOOD[:-1] + "\x1b\n", "note contains control character 0x1b"),
    "no-final-newline": (_GOOD[:-1], "note does not end with a newline"),
    "no-blank-line": (TEXT + f"{EM_DASH} {NAME} {_SIG}\n", "note has no blank line"),
    "hyphen-not-em-dash": (
        make_note(TEXT, [f"- {NAME} {_SIG}\n"]),
        "signature line 1 does not start with an em dash",
    ),
    "en-dash": (
        make_note(TEXT, [f"\u2013 {NAME} {_SIG}\n"]),
        "signature line 1 does not start with an em dash",
    ),
    "em-dash-without-space": (
        make_note(TEXT, [f"{EM_DASH}{NAME} {_SIG}\n"]),
        "signature line 1 does not start with an em dash",
    ),
    "second-line-bad": (
        make_note(TEXT, [f"{EM_DASH} {NAME} {_SIG}\n", f"{NAME} {_SIG}\n"]),
        "signature line 2 does not start with an em dash",
    ),
    "no-key-name": (make_note(TEXT, [f"{EM_DASH} {_SIG}\n"]), "signature line 1 has no key name"),
    "empty-key-name": (
        make_note(TEXT, [f"{EM_DASH}  {_SIG}\n"]),
        "signature line 1 has no key name",
    ),
    "key-name-with-space": (
        make_note(TEXT, [f"{EM_DASH} a b {_SIG}\n"]),
        "signature line 1 has an invalid key name 'a b'",
    ),
    "key-name-with-plus": (
        make_note(TEXT, [f"{EM_DASH} a+b {_SIG}\n"]),
        r"signature line 1 has an invalid key name 'a\+b'",
    ),
    "key-name-with-nbsp": (
        make_note(TEXT, [f"{EM_DASH} a\u00a0b {_SIG}\n"]),
        "signature line 1 has an invalid key name",
    ),
    "bad-base64": (
        make_note(TEXT, [f"{EM_DASH} {NAME} !!!!{_SIG}\n"]),
        "signature line 1 is not valid base64",
    ),
    "base64-missing-padding": (
        make_note(TEXT, [f"{EM_DASH} {NAME} {_SIG.rstrip('=')}\n"]),
        "signature line 1 is not valid base64",
    ),
    "base64-url-alphabet": (
        make_note(TEXT, [f"{EM_DASH} {NAME} {_URLSAFE_SIG}\n"]),
        "signature line 1 is not valid base64",
    ),
    "empty-signature": (
        make_note(TEXT, [f"{EM_DASH} {NAME} \n"]),
        "signature line 1 is too short",
    ),
    "signature-4-bytes": (
        make_note(TEXT, [f"{EM_DASH} {NAME} {base64.b64encode(b'abcd').decode()}\n"]),
        "signature line 1 is too short",
    ),
    "empty-signature-block": (TEXT + "\n", "note has no signatures"),
    # the last blank line is the separator, so the real signatures become part of the text
    "blank-line-after-signatures": (_GOOD + "\n", "note has no signatures"),
    "oversize-bytes": (b"a" * (MAX_NOTE_BYTES + 1), f"note is larger than {MAX_NOTE_BYTES} bytes"),
    "oversize-str": ("a" * (MAX_NOTE_BYTES + 1), f"note is larger than {MAX_NOTE_BYTES} bytes"),
    # fewer characters than the limit, but more UTF-8 bytes: same verdict as for the bytes
    "oversize-str-multibyte": (
        "\u00e9" * (MAX_NOTE_BYTES // 2 + 1),
        f"note is larger than {MAX_NOTE_BYTES} bytes",
    ),
}


def test_good_note_parses() -> None:
    note = SignedNote.from_text(_GOOD)
    assert note.text == TEXT
    assert note.signatures == (NoteSignature(NAME, b"\x01\x02\x03\x04", b"\x00" * 64),)
    # the smallest legal signature: a 4-byte key ID and one signature byte
    minimal = make_note(TEXT, [signature_line(NAME, b"abcd", b"x")])
    assert SignedNote.from_text(minimal).signatures == (NoteSignature(NAME, b"abcd", b"x"),)


def test_note_size_limit_is_inclusive() -> None:
    filler = "x" * (MAX_NOTE_BYTES - len(_GOOD.encode()) - 1)
    note = filler + "\n" + _GOOD
    assert len(note.encode()) == MAX_NOTE_BYTES
    assert SignedNote.from_text(note).text == filler + "\n" + TEXT
    assert SignedNote.from_text(note.encode()).text == filler + "\n" + TEXT


def test_non_ascii_text_allowed() -> None:
    signer, verifier, _ = _ed25519("\u9375.example")
    text = checkpoint_text("\u30ed\u30b0.example", 1, ROOT)
    assert _open(sign_note(text, [signer]), [verifier]) == (verifier,)


@pytest.mark.parametrize(("raw", "message"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_note_rejected(raw: str | bytes, message: str) -> None:
    with pytest.raises(NoteError, match=message) as info:
        SignedNote.from_text(raw)
    assert info.value.check == FORMAT_CHECK
    assert str(info.value) == f"{FORMAT_CHECK}: {info.value.message}"


# --- checkpoint bodies ----------------------------------------------------------------------

_ROOT_B64 = base64.b64encode(ROOT).decode()

BAD_CHECKPOINTS: dict[str, tuple[str, str]] = {
    "one-line": (f"{NAME}\n", "checkpoint has 1 lines, needs at least 3"),
    "two-lines": (f"{NAME}\n1\n", "checkpoint has 2 lines, needs at least 3"),
    "no-final-newline": (f"{NAME}\n1\n{_ROOT_B64}", "checkpoint text does not end with a newline"),
    "empty-origin": (f"\n1\n{_ROOT_B64}\n", "checkpoint origin is empty"),
    "long-origin": (
        f"{'é' * 513}\n1\n{_ROOT_B64}\n",
        "checkpoint origin is longer than 1024 bytes",
    ),
    "size-leading-zero": (
        f"{NAME}\n01\n{_ROOT_B64}\n",
        "checkpoint tree size '01' is not a decimal",
    ),
    "size-zeros": (f"{NAME}\n00\n{_ROOT_B64}\n", "checkpoint tree size '00' is not a decimal"),
    "size-plus": (f"{NAME}\n+1\n{_ROOT_B64}\n", r"checkpoint tree size '\+1' is not a decimal"),
    "size-minus": (f"{NAME}\n-1\n{_ROOT_B64}\n", "checkpoint tree size '-1' is not a decimal"),
    "size-empty": (f"{NAME}\n\n{_ROOT_B64}\n", "checkpoint tree size '' is not a decimal"),
    "size-hex": (f"{NAME}\n0x10\n{_ROOT_B64}\n", "checkpoint tree size '0x10' is not a decimal"),
    "size-letter": (f"{NAME}\n12a\n{_ROOT_B64}\n", "checkpoint tree size '12a' is not a decimal"),
    "size-space": (f"{NAME}\n 12\n{_ROOT_B64}\n", "checkpoint tree size ' 12' is not a decimal"),
    "size-underscore": (
        f"{NAME}\n1_0\n{_ROOT_B64}\n",
        "checkpoint tree size '1_0' is not a decimal",
    ),
    "size-arabic-digits": (f"{NAME}\n\u0661\u0662\n{_ROOT_B64}\n", "is not a decimal"),
    "size-20-digits": (f"{NAME}\n{'9' * 20}\n{_ROOT_B64}\n", "is not a decimal"),
    "size-2^63": (f"{NAME}\n{1 << 63}\n{_ROOT_B64}\n", "checkpoint tree size is out of range"),
    "size-max-uint64": (f"{NAME}\n{(1 << 64) - 1}\n{_ROOT_B64}\n", "is not a decimal"),
    "root-not-base64": (f"{NAME}\n1\nnot base64!\n", "checkpoint root hash is not valid base64"),
    "root-hex": (f"{NAME}\n1\n{ROOT.hex()}\n", "checkpoint root hash is 48 bytes, expected 32"),
    "root-31-bytes": (
        f"{NAME}\n1\n{base64.b64encode(ROOT[:31]).decode()}\n",
        "checkpoint root hash is 31 bytes, expected 32",
    ),
    "root-33-bytes": (
        f"{NAME}\n1\n{base64.b64encode(ROOT + b'x').decode()}\n",
        "checkpoint root hash is 33 bytes, expected 32",
    ),
    "root-empty": (f"{NAME}\n1\n\n", "checkpoint root hash is 0 bytes, expected 32"),
    "root-no-padding": (
        f"{NAME}\n1\n{_ROOT_B64.rstrip('=')}\n",
        "checkpoint root hash is not valid base64",
    ),
    "empty-extension": (f"{NAME}\n1\n{_ROOT_B64}\n\n", "checkpoint has an empty extension line"),
    "empty-extension-between": (
        f"{NAME}\n1\n{_ROOT_B64}\na\n\nb\n",
        "checkpoint has an empty extension line",
    ),
}


@pytest.mark.parametrize(("text", "message"), BAD_CHECKPOINTS.values(), ids=BAD_CHECKPOINTS.keys())
def test_bad_checkpoint_rejected(text: str, message: str) -> None:
    with pytest.raises(NoteError, match=message) as info:
        Checkpoint.from_text(text)
    assert info.value.check == "checkpoint-format"


def test_checkpoint_parses() -> None:
    cp = Checkpoint.from_text(TEXT)
    assert cp == Checkpoint(NAME, 1234, ROOT, ())
    assert Checkpoint.from_text(f"o\n0\n{_ROOT_B64}\n").size == 0
    biggest = (1 << 63) - 1
    assert Checkpoint.from_text(f"o\n{biggest}\n{_ROOT_B64}\n").size == biggest


def test_checkpoint_origin_may_contain_spaces() -> None:
    cp = Checkpoint.from_text(f"rekor.sigstore.dev - 1193050959916656506\n7\n{_ROOT_B64}\n")
    assert cp.origin == "rekor.sigstore.dev - 1193050959916656506"


def test_checkpoint_origin_of_1024_bytes_is_allowed() -> None:
    origin = "é" * 512
    assert Checkpoint.from_text(f"{origin}\n7\n{_ROOT_B64}\n").origin == origin


def test_checkpoint_extensions_preserved() -> None:
    text = checkpoint_text(NAME, 5, ROOT, "Timestamp: 1697034484441201852", "other ext")
    cp = Checkpoint.from_text(text)
    assert cp.extensions == ("Timestamp: 1697034484441201852", "other ext")
    assert cp.to_text() == text


@pytest.mark.parametrize(
    "cp",
    [
        Checkpoint(NAME, 0, bytes(32)),
        Checkpoint(NAME, 1234, ROOT),
        Checkpoint("rekor.sigstore.dev - 2605736670972794746", (1 << 63) - 1, ROOT, ("a", "b c")),
    ],
    ids=["empty-tree", "plain", "extensions"],
)
def test_checkpoint_round_trips(cp: Checkpoint) -> None:
    text = cp.to_text()
    assert text.endswith("\n")
    assert Checkpoint.from_text(text) == cp
    assert Checkpoint.from_text(text).to_text() == text


def test_open_checkpoint_checks_signature_before_format() -> None:
    signer, verifier, _ = _ed25519(NAME)
    not_a_checkpoint = "just one line\n"
    note = sign_note(not_a_checkpoint, [signer])
    with pytest.raises(NoteError, match="checkpoint has 1 lines") as info:
        open_checkpoint(note, [verifier])
    assert info.value.check == "checkpoint-format"
    other_signer, _, _ = _ed25519(NAME)
    with pytest.raises(NoteError, match="no signature from a trusted key") as info:
        open_checkpoint(sign_note(not_a_checkpoint, [other_signer]), [verifier])
    assert info.value.check == SIGNATURE_CHECK
