"""The simulator's witnesses as a test sees them: a small verifier written from C2SP
tlog-cosignature and signed-note (vkeys), independent of the simulator's signing code and of
the monitor's, and helpers reading the simulator's checkpoints and distributor over HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.conftest import FIXTURES
from tests.simlog import Harness

NAMES = ("witness-a.sim.example", "witness-b.sim.example", "witness-c.sim.example")
A, B, C = NAMES
SHARD = "log2025-sim"

# published keys of the staging witnesses that cosigned the fixture (witness network facts)
STAGING_WITNESSES = (
    "witness.stagemole.eu+67f7aea0+BEqSG3yu9YrmcM3BHvQYTxwFj3uSWakQepafafpUqklv",
    "staging.witness.transparency.goog/ring-any-bells+2e1a8dc9+BG5JTpLc3FJtwzgh1Uv+Qelz9qeOH2bfWjS1s0s+y4rL",
    "witness.navigli.sunlight.geomys.org+a3e00fe2+BNy/co4C1Hn1p+INwJrfUlgz7W55dSZReusH/GhUhJ/G",
)
STAGING_FIXTURE = (
    FIXTURES / "v2" / "conformance.rekor2-dsse-happy-path.staging-witnessed.sigstore.json"
)


# --- an independent verifier (C2SP signed-note vkeys, tlog-cosignature cosignature/v1) --------


@dataclass(frozen=True)
class WitnessKey:
    name: str
    key_id: bytes
    public: ed25519.Ed25519PublicKey


def parse_vkey(vkey: str, sig_type: int = 0x04) -> WitnessKey:
    """``name+keyid+base64(type || key)``: split on the first two '+' (base64 has '+')."""
    name, key_id_hex, material_b64 = vkey.split("+", 2)
    material = base64.b64decode(material_b64, validate=True)
    assert material[0] == sig_type
    assert len(material) == 33
    key_id = hashlib.sha256(name.encode() + b"\n" + material).digest()[:4]
    assert key_id.hex() == key_id_hex
    return WitnessKey(name, key_id, ed25519.Ed25519PublicKey.from_public_bytes(material[1:]))


@dataclass(frozen=True)
class Cosigned:
    ok: bool
    time: int


def split_note(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    body, _, sigs = note.partition("\n\n")
    assert sigs.endswith("\n")
    lines = []
    for line in sigs[:-1].split("\n"):
        assert line.startswith("\u2014 ")
        name, b64 = line[2:].rsplit(" ", 1)
        lines.append((name, base64.b64decode(b64, validate=True)))
    return body + "\n", lines


def cosignatures(note: str, keys: list[WitnessKey]) -> dict[str, Cosigned]:
    """The cosignature of every known witness on ``note``, verified; unknown lines ignored."""
    body, lines = split_note(note)
    out = {}
    for name, blob in lines:
        key = next((k for k in keys if k.name == name and k.key_id == blob[:4]), None)
        if key is None:
            continue
        assert len(blob) == 4 + 8 + 64
        t = int.from_bytes(blob[4:12], "big")
        message = f"cosignature/v1\ntime {t}\n{body}".encode()
        try:
            key.public.verify(blob[12:], message)
            out[name] = Cosigned(True, t)
        except InvalidSignature:
            out[name] = Cosigned(False, t)
    return out


def valid(note: str, keys: list[WitnessKey]) -> set[str]:
    return {n for n, c in cosignatures(note, keys).items() if c.ok}


# --- helpers -----------------------------------------------------------------------------------


def sim_keys(tmp_path: Path) -> list[WitnessKey]:
    return [parse_vkey(v) for v in (tmp_path / "witnesses.txt").read_text().splitlines()]


async def get(session: aiohttp.ClientSession, url: str, **headers: str) -> tuple[int, str]:
    async with session.get(url, headers=headers) as resp:
        return resp.status, await resp.text()


async def v2_note(h: Harness, view: str = "", **headers: str) -> str:
    status, text = await get(h.session, f"{h.sim.base_url}{view}/v2/{SHARD}/checkpoint", **headers)
    assert status == 200
    return text


def log_id(h: Harness) -> str:
    return hashlib.sha256(b"o:" + h.v2.log.key_name.encode()).hexdigest()


async def v1_head(h: Harness) -> str:
    """The Rekor v1 log's active tree head, as its API serves it."""
    status, text = await get(h.session, f"{h.sim.base_url}/api/v1/log")
    assert status == 200
    head: str = json.loads(text)["signedTreeHead"]
    return head


def origin_id(note: str) -> str:
    return hashlib.sha256(b"o:" + note.split("\n", maxsplit=1)[0].encode()).hexdigest()


async def dist(h: Harness, tail: str) -> tuple[int, str]:
    return await get(h.session, f"{h.sim.base_url}/distributor/v0/logs/{log_id(h)}/{tail}")


def size_root(note: str) -> tuple[int, bytes]:
    lines = note.split("\n")
    return int(lines[1]), base64.b64decode(lines[2])
