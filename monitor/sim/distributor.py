"""A local witness distributor, as the transparency.dev distributor serves one.

    GET /distributor/v0/logs                            known log IDs (JSON, sorted)
    GET /distributor/v0/witnesses                       known witness vkeys (JSON, sorted)
    GET .../logs/{logID}/checkpoint.{N}                 the merged checkpoint of N cosignatures
    GET .../logs/{logID}/byWitness/{name}/checkpoint    a witness's latest
    PUT .../logs/{logID}/byWitness/{name}/checkpoint    a witness hands one in

A log ID is the hex SHA-256 of ``o:`` and the origin (for Rekor v1: each tree's origin,
``<host> - <tree ID>``, signed under the host). As the real one does, the distributor keeps
each witness's latest checkpoint (signed by the log and cosigned by that witness, every other
signature dropped), refuses a smaller one or another root at the same size, and merges the
witnesses' checkpoints of one tree into ``checkpoint.N``: the largest tree N witnesses cosigned,
with exactly those N cosignatures. N is 1 to 100; an unknown log is 400, no such checkpoint 404.
It does not check consistency between sizes: a split view fed to it is what a monitor detects.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from monitor.core.encoding import b64encode
from monitor.core.errors import MonitorError
from monitor.sim.faults import Faults
from monitor.sim.logs import SimV1Log, SimV2Log
from monitor.sim.signing import Cosigner, NoteSigner, cosigned_message
from monitor.sim.witnesses import WitnessSet, split_view_store
from monitor.tlog.checkpoint import Checkpoint
from monitor.tlog.note import (
    EcdsaNoteVerifier,
    Ed25519NoteVerifier,
    NoteSignature,
    NoteVerifier,
    SignedNote,
)

PREFIX = "/distributor/v0"
MAX_SIGS = 100  # the most cosignatures checkpoint.N may ask for
MAX_CHECKPOINT_BYTES = 64 * 1024  # a checkpoint handed in by PUT


def distributor_log_id(origin: str) -> str:
    return hashlib.sha256(b"o:" + origin.encode()).hexdigest()


class Refused(MonitorError):
    """A checkpoint the distributor does not take, with the HTTP status it answers."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Held:
    """A checkpoint the distributor holds."""

    size: int
    root: bytes
    text: str  # the checkpoint body the signatures cover
    lines: tuple[str, ...]  # signature lines (each with its newline): the log's first

    @property
    def note(self) -> str:
        return self.text + "\n" + "".join(self.lines)


@dataclass
class Distributor:
    logs: dict[str, tuple[str, NoteVerifier]] = field(default_factory=dict)  # ID: origin, key
    witnesses: dict[str, tuple[Cosigner, str]] = field(default_factory=dict)  # by name: key, vkey
    by_witness: dict[tuple[str, str], Held] = field(default_factory=dict)
    merged: dict[tuple[str, int], Held] = field(default_factory=dict)  # by (log ID, N)
    refused: list[str] = field(default_factory=list)  # why, newest last (for tests)

    def add_log(self, origin: str, verifier: NoteVerifier) -> str:
        log_id = distributor_log_id(origin)
        self.logs[log_id] = (origin, verifier)
        return log_id

    def add_witness(self, cosigner: Cosigner) -> None:
        self.witnesses[cosigner.name] = (cosigner, cosigner.vkey())

    def offer(self, log_id: str, witness: str, note: str) -> bool:
        """``distribute``, recording a refusal instead of raising it (the witnesses' feed)."""
        try:
            self.distribute(log_id, witness, note)
        except Refused as e:
            self.refused.append(f"{witness}: {e}")
            del self.refused[:-100]
            return False
        return True

    def distribute(self, log_id: str, witness: str, raw: str | bytes) -> None:
        """Take ``raw``, a checkpoint of log ``log_id`` cosigned by ``witness``."""
        log = self.logs.get(log_id)
        if log is None:
            raise Refused(400, f"unknown log ID {log_id!r}")
        known = self.witnesses.get(witness)
        if known is None:
            raise Refused(400, f"unknown witness ID {witness!r}")
        held = _verified(raw, log, known[0])
        old = self.by_witness.get((log_id, witness))
        if old is not None and held.size < old.size:
            raise Refused(400, f"checkpoint for size {held.size}, smaller than {old.size}")
        if old is not None and held.size == old.size and held.root != old.root:
            raise Refused(
                500, f"two roots for size {held.size}: {old.root.hex()}, {held.root.hex()}"
            )
        self.by_witness[(log_id, witness)] = held
        self._merge(log_id, held)

    def _merge(self, log_id: str, new: Held) -> None:
        same = sorted(
            (name, h)
            for (lid, name), h in self.by_witness.items()
            if lid == log_id and h.size == new.size
        )
        if any(h.text != new.text for _, h in same):
            return  # as the real one: a tree it cannot combine is not merged
        count = len(same)
        current = self.merged.get((log_id, count))
        if current is None or new.size >= current.size:
            lines = (new.lines[0], *(h.lines[1] for _, h in same))
            self.merged[(log_id, count)] = Held(new.size, new.root, new.text, lines)


def _verified(raw: str | bytes, held: tuple[str, NoteVerifier], witness: Cosigner) -> Held:
    """The checkpoint with the log's and the witness's signature only, both verified."""
    origin, log = held
    try:
        note = SignedNote.from_text(raw)
        cp = Checkpoint.from_text(note.text)
    except MonitorError as e:
        raise Refused(400, f"failed to parse checkpoint: {e}") from None
    if cp.origin != origin:
        raise Refused(400, f"checkpoint origin {cp.origin!r} is not {origin!r}")
    log_sig = _find(note, log.name, log.key_id)
    if log_sig is None or not log.verify(note.text.encode(), log_sig.signature):
        raise Refused(400, "the log's signature is missing or does not verify")
    wit_sig = _find(note, witness.name, witness.key_id)
    if wit_sig is None or not _cosignature_ok(witness, note.text, wit_sig.signature):
        raise Refused(400, f"{witness.name}'s cosignature is missing or does not verify")
    lines = tuple(_line(s) for s in (log_sig, wit_sig))
    return Held(cp.size, cp.root_hash, note.text, lines)


def _find(note: SignedNote, name: str, key_id: bytes) -> NoteSignature | None:
    return next((s for s in note.signatures if s.name == name and s.key_id == key_id), None)


def _cosignature_ok(witness: Cosigner, text: str, payload: bytes) -> bool:
    if len(payload) != 8 + 64:
        return False
    timestamp = int.from_bytes(payload[:8], "big")
    if timestamp >= 1 << 63:
        return False
    public: ed25519.Ed25519PublicKey = witness.key.public_key()
    try:
        public.verify(payload[8:], cosigned_message(text, timestamp))
    except InvalidSignature:
        return False
    return True


def _line(sig: NoteSignature) -> str:
    return f"\u2014 {sig.name} {b64encode(sig.key_id + sig.signature)}\n"


# --- HTTP ----------------------------------------------------------------------------------------

DISTRIBUTOR = web.AppKey("distributor", Distributor)
_LOG = "{log_id:[a-zA-Z0-9-]+}"
_WITNESS = "{witness:[^ +]+}"


def add_distributor_routes(app: web.Application, distributor: Distributor) -> None:
    """The distributor's routes, and one witness's read endpoint (``/witness/v0/logs/<log
    ID>/checkpoint``, as the transparency.dev witness serves what it last cosigned): the
    first witness's, at the same host."""
    app[DISTRIBUTOR] = distributor
    by_witness = f"{PREFIX}/logs/{_LOG}/byWitness/{_WITNESS}/checkpoint"
    app.router.add_get(f"/witness/v0/logs/{_LOG}/checkpoint", _witness_read)
    app.router.add_get(f"{PREFIX}/logs", _logs)
    app.router.add_get(f"{PREFIX}/witnesses", _witnesses)
    app.router.add_get(f"{PREFIX}/logs/{_LOG}/checkpoint.{{n:[0-9]+}}", _checkpoint_n)
    app.router.add_get(by_witness, _by_witness)
    app.router.add_put(by_witness, _put_by_witness)


def _text(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/plain")


async def _logs(request: web.Request) -> web.Response:
    ids = sorted(request.app[DISTRIBUTOR].logs)
    return web.Response(text=json.dumps(ids), content_type="text/json")


async def _witnesses(request: web.Request) -> web.Response:
    vkeys = sorted(v for _, v in request.app[DISTRIBUTOR].witnesses.values())
    return web.Response(text=json.dumps(vkeys), content_type="text/json")


async def _checkpoint_n(request: web.Request) -> web.Response:
    dist = request.app[DISTRIBUTOR]
    digits = request.match_info["n"]
    if len(digits) > 10 or int(digits) >= 1 << 32:
        return _text("failed to parse number of signatures\n", 400)
    n, log_id = int(digits), request.match_info["log_id"]
    if n == 0 or n > MAX_SIGS:
        return _text(f"invalid N {n}\n", 400)
    if log_id not in dist.logs:
        return _text(f"unknown log ID {log_id!r}\n", 400)
    held = dist.merged.get((log_id, n))
    if held is None:
        return _text(f"no checkpoint with {n} signatures found\n", 404)
    return _text(held.note)


async def _by_witness(request: web.Request) -> web.Response:
    dist = request.app[DISTRIBUTOR]
    key = (request.match_info["log_id"], request.match_info["witness"])
    held = dist.by_witness.get(key)
    if held is None:
        return _text(f"no checkpoint for log {key[0]!r} from witness {key[1]!r}\n", 404)
    return _text(held.note)


async def _witness_read(request: web.Request) -> web.Response:
    dist = request.app[DISTRIBUTOR]
    log_id = request.match_info["log_id"]
    first = min(dist.witnesses, default=None)
    held = None if first is None else dist.by_witness.get((log_id, first))
    if held is None:
        return _text(f"no checkpoint for log {log_id!r}\n", 404)
    return _text(held.note)


async def _put_by_witness(request: web.Request) -> web.Response:
    dist = request.app[DISTRIBUTOR]
    body = await request.content.read(MAX_CHECKPOINT_BYTES + 1)
    if len(body) > MAX_CHECKPOINT_BYTES:
        return _text("checkpoint too large\n", 400)
    try:
        dist.distribute(request.match_info["log_id"], request.match_info["witness"], body)
    except Refused as e:
        return _text(f"failed to update to new checkpoint: {e}\n", e.status)
    return _text("")


def _verifier(signer: NoteSigner) -> NoteVerifier:
    key = signer.key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return Ed25519NoteVerifier.create(signer.name, key.public_key())
    return EcdsaNoteVerifier.create(signer.name, key.public_key())


def feed(
    dist: Distributor,
    logs: Iterable[SimV2Log],
    witnesses: WitnessSet,
    faults: Faults,
    v1: SimV1Log | None = None,
) -> None:
    """The witnesses hand the distributor their cosigned copies of each log's newest
    checkpoint (a Rekor v1 log: its active tree's): of view b when ``split_distributor`` is
    on, else of the honest tree. A refusal (a bad cosignature, another root at a size it
    holds) is recorded, as a distributor logs one."""
    for cosigner in witnesses.cosigners:
        if cosigner.name not in dist.witnesses:
            dist.add_witness(cosigner)
    for log in logs:
        log_id = dist.add_log(log.origin, _verifier(log.signer))
        view_b = faults.split_distributor and split_view_store(log, faults) is not None
        store = split_view_store(log, faults) if view_b else None
        _offer(dist, log_id, log.checkpoint(log.size, store), witnesses, faults, view_b=view_b)
    if v1 is not None and v1.active.store.size > 0:
        shard = v1.active
        log_id = dist.add_log(v1.origin(shard), _verifier(v1.signer))
        store = v1.split_store(shard, faults.split_at) if faults.split_distributor else None
        note = v1.checkpoint(shard, shard.store.size, store)
        _offer(dist, log_id, note, witnesses, faults, view_b=store is not None)


def _offer(
    dist: Distributor,
    log_id: str,
    note: str,
    witnesses: WitnessSet,
    faults: Faults,
    *,
    view_b: bool,
) -> None:
    for name, line in witnesses.cosignature_lines(note, faults, view_b=view_b).items():
        dist.offer(log_id, name, note + line)
