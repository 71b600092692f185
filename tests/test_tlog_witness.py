"""Witness vkeys and cosignature verification, on a real staging checkpoint cosigned by three
real witnesses of the witness network, and on cosignatures made here with fresh keys.

Key IDs and signed messages are computed here from the C2SP specs (signed-note,
tlog-cosignature), not by calling the code under test.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from monitor.core.errors import ConfigError, NoteError, WitnessConfigError
from monitor.tlog.note import SignedNote
from monitor.tlog.witness import (
    MAX_CLOCK_SKEW,
    Cosignature,
    WitnessKey,
    verify_cosignatures,
    verify_note_cosignatures,
)

FIXTURES = Path(__file__).parent / "fixtures" / "witness"
CHECKPOINT = (FIXTURES / "log2025-alpha3.size4026479.witnessed.checkpoint.txt").read_text("utf-8")
VKEYS = (FIXTURES / "staging-witnesses.vkeys.txt").read_text("utf-8").split()
MLDSA_VKEY = (FIXTURES / "ring-any-bells.mldsa44.vkey.txt").read_text("utf-8").strip()
TIME = 1778700214
NOW = TIME + 3600
WITNESSES = (
    "witness.stagemole.eu",
    "staging.witness.transparency.goog/ring-any-bells",
    "witness.navigli.sunlight.geomys.org",
)
EM = "\u2014 "


def spec_key_id(name: str, type_byte: int, material: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([type_byte]) + material).digest()[:4]


def make_vkey(name: str, type_byte: int, material: bytes, key_id: bytes | None = None) -> str:
    kid = spec_key_id(name, type_byte, material) if key_id is None else key_id
    return f"{name}+{kid.hex()}+{base64.b64encode(bytes([type_byte]) + material).decode()}"


def fresh_witness(name: str) -> tuple[ed25519.Ed25519PrivateKey, str]:
    private = ed25519.Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return private, make_vkey(name, 0x04, raw)


def cosign_line(private: ed25519.Ed25519PrivateKey, name: str, text: str, time: int) -> str:
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    message = f"cosignature/v1\ntime {time}\n".encode() + text.encode()
    payload = spec_key_id(name, 0x04, raw) + time.to_bytes(8, "big") + private.sign(message)
    return f"{EM}{name} {base64.b64encode(payload).decode()}"


def keys() -> list[WitnessKey]:
    return [WitnessKey.parse(v) for v in VKEYS]


def statuses(cosigs: tuple[Cosignature, ...]) -> dict[str, str]:
    return {c.witness: c.status for c in cosigs}


def flip(note: str, line: int, offset: int) -> str:
    """The note with one byte of signature line ``line``'s payload (after the key ID) flipped."""
    text, _, block = note.rpartition("\n\n")
    lines = block.rstrip("\n").split("\n")
    name, b64 = lines[line][len(EM) :].rsplit(" ", 1)
    payload = bytearray(base64.b64decode(b64))
    payload[4 + offset] ^= 0x01
    lines[line] = f"{EM}{name} {base64.b64encode(bytes(payload)).decode()}"
    return text + "\n\n" + "\n".join(lines) + "\n"


# --- the real checkpoint ---------------------------------------------------------------------


def test_the_three_staging_witnesses_verify() -> None:
    cosigs = verify_note_cosignatures(CHECKPOINT, keys(), now=NOW)
    assert [c.witness for c in cosigs] == list(WITNESSES)  # note order; log line ignored
    assert all(c.status == "verified" and c.time == TIME and not c.reason for c in cosigs)
    assert [c.key_id for c in cosigs] == ["67f7aea0", "2e1a8dc9", "a3e00fe2"]


def test_parsed_note_and_raw_note_agree() -> None:
    note = SignedNote.from_text(CHECKPOINT)
    assert verify_cosignatures(note.text, note.signatures, keys()) == verify_note_cosignatures(
        CHECKPOINT.encode(), keys()
    )


@pytest.mark.parametrize("index", [1, 2, 3])
@pytest.mark.parametrize(
    ("offset", "why"),
    [(8, "does not verify"), (71, "does not verify"), (7, "does not verify"), (0, "plausible")],
)
def test_one_flipped_byte_makes_that_cosignature_invalid(index: int, offset: int, why: str) -> None:
    # offsets 0..7 are the time (7: its low byte, still a plausible date; 0: its high byte,
    # which puts it centuries away), 8..71 the Ed25519 signature
    cosigs = verify_note_cosignatures(flip(CHECKPOINT, index, offset), keys(), now=NOW)
    bad = cosigs[index - 1]
    assert bad.status == "invalid"
    assert why in bad.reason
    assert [c.status for c in cosigs].count("verified") == 2


def test_a_changed_body_invalidates_every_cosignature() -> None:
    origin, size, rest = CHECKPOINT.split("\n", 2)
    changed = f"{origin}\n{int(size) + 1}\n{rest}"
    cosigs = verify_note_cosignatures(changed, keys())
    assert len(cosigs) == 3
    assert {c.status for c in cosigs} == {"invalid"}


def test_the_logs_own_line_and_unknown_witnesses_are_ignored() -> None:
    stranger, vkey = fresh_witness("witness.example/stranger")
    note = SignedNote.from_text(CHECKPOINT)
    assert len(note.signatures) == 4
    assert verify_cosignatures(note.text, note.signatures, [WitnessKey.parse(vkey)]) == ()
    assert verify_note_cosignatures(CHECKPOINT, []) == ()
    # a line of a stranger among the known ones changes nothing for them
    added = CHECKPOINT + cosign_line(stranger, "witness.example/unknown", note.text, TIME) + "\n"
    assert statuses(verify_note_cosignatures(added, keys())) == dict.fromkeys(WITNESSES, "verified")


def test_same_name_with_another_key_id_is_not_matched() -> None:
    # signed-note: ignore keys that share a name or an ID, but not both, with a known key
    _, vkey = fresh_witness(WITNESSES[0])
    assert verify_note_cosignatures(CHECKPOINT, [WitnessKey.parse(vkey)]) == ()
    real = keys()[0]
    renamed = make_vkey("witness.example/other", 0x04, real.public_key, key_id=real.key_id)
    with pytest.raises(WitnessConfigError, match="does not match"):
        WitnessKey.parse(renamed)


def test_subtree_v1_lines_are_unsupported_not_failures() -> None:
    mldsa = WitnessKey.parse(MLDSA_VKEY)
    assert mldsa.alg == "subtree/v1"
    assert len(mldsa.public_key) == 1312
    assert mldsa.key_id.hex() == "5774b075"
    payload = mldsa.key_id + TIME.to_bytes(8, "big") + bytes(2420)
    line = f"{EM}{mldsa.name} {base64.b64encode(payload).decode()}\n"
    cosigs = verify_note_cosignatures(CHECKPOINT + line, [*keys(), mldsa], now=NOW)
    assert len(cosigs) == 4
    # the Ed25519 key of the same witness (same name, another key ID) still verifies its line
    assert [c.status for c in cosigs] == ["verified"] * 3 + ["unsupported"]
    assert cosigs[3].time == TIME
    assert cosigs[3].key_id == "5774b075"
    short = f"{EM}{mldsa.name} {base64.b64encode(mldsa.key_id + b'x').decode()}\n"
    (only,) = verify_note_cosignatures(CHECKPOINT + short, [mldsa])
    assert only.status == "unsupported"
    assert only.time is None


# --- fresh keys: times and lengths -----------------------------------------------------------

BODY = "example.com/log\n7\n" + base64.b64encode(bytes(range(32))).decode() + "\n"
LOG_LINE = f"{EM}example.com/log {base64.b64encode(bytes(4 + 64)).decode()}"


def fresh_note(line: str) -> str:
    return f"{BODY}\n{LOG_LINE}\n{line}\n"


@pytest.mark.parametrize(
    ("time", "now", "status"),
    [
        (0, None, "invalid"),
        (1640995199, None, "invalid"),  # before 2022
        (1640995200, None, "verified"),
        (4102444800, None, "invalid"),  # 2100 and later
        (2**63 - 1, None, "invalid"),
        (2**64 - 1, None, "invalid"),
        (NOW + MAX_CLOCK_SKEW, NOW, "verified"),
        (NOW + MAX_CLOCK_SKEW + 1, NOW, "invalid"),
        (NOW + 10**6, None, "verified"),  # without a clock only the fixed bounds apply
    ],
)
def test_cosignature_time_bounds(time: int, now: int | None, status: str) -> None:
    private, vkey = fresh_witness("w.example/a")
    line = cosign_line(private, "w.example/a", BODY, time % 2**64)
    (cosig,) = verify_note_cosignatures(fresh_note(line), [WitnessKey.parse(vkey)], now=now)
    assert (cosig.status, cosig.time) == (status, time)


@pytest.mark.parametrize("size", [1, 7, 8, 71, 73, 200])
def test_a_payload_of_the_wrong_length_is_invalid(size: int) -> None:
    _, vkey = fresh_witness("w.example/a")
    key = WitnessKey.parse(vkey)
    payload = key.key_id + (TIME.to_bytes(8, "big") + bytes(200))[:size]
    line = f"{EM}{key.name} {base64.b64encode(payload).decode()}"
    (cosig,) = verify_note_cosignatures(fresh_note(line), [key])
    assert cosig.status == "invalid"
    assert f"is {size} bytes, expected 72" in cosig.reason
    assert cosig.time == (TIME if size >= 8 else None)


def test_a_signature_by_another_key_is_invalid() -> None:
    _, vkey = fresh_witness("w.example/a")
    impostor, _ = fresh_witness("w.example/a")
    key = WitnessKey.parse(vkey)
    line = cosign_line(impostor, "w.example/a", BODY, TIME)
    name, b64 = line[len(EM) :].split(" ")
    payload = key.key_id + base64.b64decode(b64)[4:]  # the configured key's ID, wrong signer
    forged = f"{EM}{name} {base64.b64encode(payload).decode()}"
    (cosig,) = verify_note_cosignatures(fresh_note(forged), [key])
    assert cosig.status == "invalid"
    assert "does not verify" in cosig.reason


def test_a_malformed_note_raises_note_error() -> None:
    with pytest.raises(NoteError):
        verify_note_cosignatures(CHECKPOINT.replace("\n\n", "\n"), keys())


# --- vkeys -----------------------------------------------------------------------------------


def test_real_vkeys_parse_and_round_trip() -> None:
    for vkey, name in zip(VKEYS, WITNESSES, strict=True):
        key = WitnessKey.parse(vkey)
        assert (key.name, key.alg, len(key.public_key)) == (name, "cosignature/v1", 32)
        assert key.key_id == spec_key_id(name, 0x04, key.public_key)
        assert key.vkey() == vkey
    assert WitnessKey.parse(MLDSA_VKEY).vkey() == MLDSA_VKEY


ED = bytes(range(32))


@pytest.mark.parametrize(
    ("vkey", "message"),
    [
        ("", "is not <name>"),
        ("witness.example", "is not <name>"),
        ("witness.example+abcd", "is not <name>"),
        (make_vkey("witness example", 0x04, ED), "contains ' '"),
        (make_vkey("witness\u00a0example", 0x04, ED), "contains '\\xa0'"),
        (make_vkey("witness\texample", 0x04, ED), "contains '\\t'"),
        ("+" + make_vkey("w", 0x04, ED).split("+", 1)[1], "name is empty"),
        ("w.example+0x12abcd+" + make_vkey("w.example", 0x04, ED).split("+")[2], "8 hex digits"),
        ("w.example+12abcd+" + make_vkey("w.example", 0x04, ED).split("+")[2], "8 hex digits"),
        (make_vkey("w.example", 0x04, ED, key_id=b"\0\0\0\0"), "does not match the name and key"),
        (make_vkey("w.example", 0x04, ED)[:-1], "not valid base64"),
        (make_vkey("w.example", 0x04, ED) + "!", "not valid base64"),
        (make_vkey("w.example", 0x04, ED[:31]), "cosignature/v1 key is 31 bytes, expected 32"),
        (make_vkey("w.example", 0x04, ED + b"\0"), "is 33 bytes, expected 32"),
        (make_vkey("w.example", 0x06, ED), "subtree/v1 key is 32 bytes, expected 1312"),
        (make_vkey("w.example", 0x02, ED), "unknown witness key type byte 0x02"),
        (make_vkey("w.example", 0x01, ED), "a log's Ed25519 key, not a witness key"),
        (make_vkey("w.example", 0x04, b""), "too short"),
        ("w.example+00000000+" + "A" * 4096, "longer than 4096"),
    ],
)
def test_bad_vkeys_say_what_is_wrong(vkey: str, message: str) -> None:
    with pytest.raises(WitnessConfigError) as err:
        WitnessKey.parse(vkey)
    assert message in str(err.value)
    assert isinstance(err.value, ConfigError)


def test_non_ascii_names_are_allowed() -> None:
    key = WitnessKey.parse(make_vkey("t\u00e9moin.example/\u2603", 0x04, ED))
    assert key.name == "t\u00e9moin.example/\u2603"


def test_a_vkey_that_is_not_text_is_refused() -> None:
    # configuration loaders hand over whatever YAML held
    with pytest.raises(WitnessConfigError, match="must be a string, not int"):
        WitnessKey.parse(1234)  # type: ignore[arg-type]
