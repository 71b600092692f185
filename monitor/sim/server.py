"""The simulator's HTTP face: Rekor v1's REST API, Rekor v2's tiles, and an admin API.

/api/v1/...                      a sharded Rekor v1 log
/v2/<shard>/checkpoint, /tile/   a Rekor v2 (C2SP tlog-tiles) log
/view-b/v2/<shard>/...           view b of a split (``split_at``), also for ``X-Sim-View: b``
/distributor/v0/...              a witness distributor (``distributor.py``)
/witness/v0/logs/<id>/checkpoint the first witness's read endpoint (``distributor.py``)
/admin/...                       test controls (never part of a real log):
    GET  state        sizes, shards, the v1 key name, faults, requests served
    POST faults       switch faults on and off (``Faults``)
    POST append       {"v1": n, "v2": n}: grow the logs
    POST rotate       freeze the active v1 tree and start a new one
    POST plant        a planted-entry plan (``plans.py``) at an index beyond both logs
    POST v2-shard     {"name": ..., "entries": n}: open a new Rekor v2 shard
    POST v1-key-name  {"name": ...}: sign v1 checkpoints under this name from now on (the
                      name itself, not host or netloc): every tree's, inactive shards'
                      tree heads and inclusion-proof checkpoints too. Same key, new name: a
                      restarted Rekor v1 pod
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

from monitor.core.encoding import b64decode_strict, b64encode
from monitor.core.errors import ConfigError
from monitor.sim.distributor import Distributor, add_distributor_routes, feed
from monitor.sim.factory import SimEntry
from monitor.sim.faults import Faults
from monitor.sim.logs import SimV1Log, SimV2Log, V1Shard, altered_body
from monitor.sim.plans import plan_from_json
from monitor.sim.signing import NoteSigner
from monitor.sim.tree import MerkleStore
from monitor.sim.witnesses import WitnessSet, check_witness_faults, split_view_store
from monitor.tlog.merkle import HASH_SIZE
from monitor.tlog.tiles import TILE_WIDTH, encode_entry_bundle, parse_tile_path

V2_PREFIX = "/v2/"
VIEW_B_PREFIX = "/view-b"  # view b of a split, for clients that cannot send a header
VIEW_HEADER = "X-Sim-View"


@dataclass
class SimState:
    v1: SimV1Log
    v2_shards: dict[str, SimV2Log]  # by name, oldest first; the last one is active
    v1_log_id: bytes
    faults: Faults = field(default_factory=Faults)
    rng: random.Random = field(default_factory=lambda: random.Random(7))  # noqa: S311
    requests: int = 0
    witnesses: WitnessSet = field(default_factory=WitnessSet.none)
    distributor: Distributor = field(default_factory=Distributor)

    on_new_shard: Callable[[], None] | None = None  # rewrites the trust files

    @property
    def v2(self) -> SimV2Log:
        """The active (newest) Rekor v2 shard."""
        return next(reversed(self.v2_shards.values()))

    def serve_fork(self) -> bool:
        if self.faults.fork_at is None:
            return False
        return not self.faults.fork_every_other or self.requests % 2 == 0

    def publish(self) -> None:
        """The witnesses hand their newest cosigned checkpoints to the distributor."""
        feed(self.distributor, self.v2_shards.values(), self.witnesses, self.faults, self.v1)


STATE = web.AppKey("state", SimState)


def build_app(state: SimState) -> web.Application:
    app = web.Application(middlewares=[_faults_middleware])
    app[STATE] = state
    app.router.add_get("/api/v1/log", _v1_log_info)
    app.router.add_get("/api/v1/log/publicKey", _v1_public_key)
    app.router.add_get("/api/v1/log/proof", _v1_proof)
    app.router.add_get("/api/v1/log/entries", _v1_entry_by_index)
    app.router.add_post("/api/v1/log/entries/retrieve", _v1_retrieve)
    for prefix in ("", VIEW_B_PREFIX):
        app.router.add_get(prefix + V2_PREFIX + "{shard}/checkpoint", _v2_checkpoint)
        app.router.add_get(prefix + V2_PREFIX + "{shard}/{path:tile/.+}", _v2_tile)
    add_distributor_routes(app, state.distributor)
    app.router.add_get("/admin/state", _admin_state)
    app.router.add_post("/admin/faults", _admin_faults)
    app.router.add_post("/admin/append", _admin_append)
    app.router.add_post("/admin/rotate", _admin_rotate)
    app.router.add_post("/admin/plant", _admin_plant)
    app.router.add_post("/admin/v2-shard", _admin_v2_shard)
    app.router.add_post("/admin/v1-key-name", _admin_v1_key_name)
    return app


def _state(request: web.Request) -> SimState:
    return request.app[STATE]


@web.middleware
async def _faults_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    state = _state(request)
    if request.path.startswith("/admin/"):
        response: web.StreamResponse = await handler(request)
        return response
    state.requests += 1
    f, rng = state.faults, state.rng
    if f.latency_seconds:
        await asyncio.sleep(f.latency_seconds)
    if f.roll(rng, f.rate_429):
        return web.Response(
            status=429,
            text="<html><body>429 Too Many Requests</body></html>",
            headers={"Retry-After": str(f.retry_after_seconds)},
        )
    if f.roll(rng, f.rate_5xx):
        return web.json_response(
            {"code": 503, "message": "unexpected error communicating with transparency log"},
            status=503,
        )
    if f.roll(rng, f.rate_timeout):
        await asyncio.sleep(3600)  # the client gives up first
    response = await handler(request)
    if f.roll(rng, f.rate_truncate) and isinstance(response, web.Response) and response.body:
        return await _truncated(request, response)
    return response


async def _truncated(request: web.Request, full: web.Response) -> web.StreamResponse:
    body = bytes(full.body) if isinstance(full.body, bytes | bytearray) else b""
    resp = web.StreamResponse(status=full.status, headers={"Content-Type": full.content_type})
    resp.content_length = len(body)
    await resp.prepare(request)
    await resp.write(body[: len(body) // 2])
    if request.transport is not None:
        request.transport.close()
    return resp


# --- Rekor v1 ----------------------------------------------------------------------------------


def _v1_store(state: SimState, shard: V1Shard) -> MerkleStore:
    if state.serve_fork() and state.faults.fork_at is not None and shard is state.v1.active:
        local = state.faults.fork_at - shard.start
        if 0 <= local < shard.store.size:
            return state.v1.fork_store(shard, local)
    return shard.store


def _sth(state: SimState, shard: V1Shard, size: int) -> str:
    note = state.v1.checkpoint(shard, size, _v1_store(state, shard))
    return _corrupt(note) if state.faults.bad_signature else note


def _corrupt(note: str) -> str:
    """Flip a bit inside the signature of the first signature line."""
    text, sigs = note.rsplit("\n\n", 1)
    first, *rest = sigs.split("\n")
    name, b64 = first.rsplit(" ", 1)
    raw = bytearray(b64decode_strict(b64))
    raw[-5] ^= 0x01
    return text + "\n\n" + "\n".join([f"{name} {b64encode(bytes(raw))}", *rest])


def _tree_head_json(state: SimState, shard: V1Shard, size: int) -> dict[str, Any]:
    return {
        "rootHash": _v1_store(state, shard).root(size).hex(),
        "signedTreeHead": _sth(state, shard, size),
        "treeID": str(shard.tree_id),
        "treeSize": size,
    }


async def _v1_log_info(request: web.Request) -> web.Response:
    state = _state(request)
    log = state.v1
    active = log.active
    size = active.store.size
    if state.faults.shrink_by:
        size = max(0, size - state.faults.shrink_by)
    doc = _tree_head_json(state, active, size)
    inactive = [_tree_head_json(state, s, s.store.size) for s in log.shards[:-1]]
    if inactive:
        doc["inactiveShards"] = inactive
    return web.json_response(doc)


async def _v1_public_key(request: web.Request) -> web.Response:
    pem = _state(request).v1.signer.public_pem()
    return web.Response(body=pem, content_type="application/x-pem-file")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"code": status, "message": message}, status=status)


def _int_param(request: web.Request, name: str, default: int | None = None) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise web.HTTPBadRequest(
            text=json.dumps({"code": 400, "message": f"{name} must be an integer"}),
            content_type="application/json",
        )
    return int(raw)


async def _v1_proof(request: web.Request) -> web.Response:
    state = _state(request)
    first = _int_param(request, "firstSize", 1) or 1
    last = _int_param(request, "lastSize")
    tree_id = _int_param(request, "treeID")
    shard = state.v1.active if tree_id is None else state.v1.shard_by_tree(tree_id)
    if shard is None:
        return _error(400, f"invalid tree ID {tree_id}")
    if last is None:
        return _error(400, "lastSize is required")
    if first > last:
        return _error(400, f"firstSize({first}) must be less than lastSize({last})")
    if last > shard.store.size:
        return _error(
            400,
            f"the tree size requested({last}) was greater than what is currently "
            f"observable({shard.store.size})",
        )
    store = _v1_store(state, shard)
    return web.json_response(
        {
            "rootHash": store.root(last).hex(),
            "hashes": [h.hex() for h in store.consistency_proof(first, last)],
        }
    )


_tampered = altered_body  # same meaning, different leaf hash


def _served_entry(state: SimState, index: int) -> SimEntry:
    entry = state.v1.entry(index)
    if index in state.faults.tamper:
        return replace(entry, body=_tampered(entry.body))
    return entry


def _v1_entry(state: SimState, index: int) -> dict[str, Any] | None:
    if index in state.faults.omit_always or state.v1.shard_of(index) is None:
        return None
    return state.v1.log_entry_json(index, _served_entry(state, index), state.v1_log_id)


async def _v1_entry_by_index(request: web.Request) -> web.Response:
    state = _state(request)
    index = _int_param(request, "logIndex")
    entry = _v1_entry(state, index) if index is not None else None
    if entry is None:
        return web.Response(status=404)  # as Rekor: 404 with an empty body
    return web.json_response(entry)


async def _v1_retrieve(request: web.Request) -> web.Response:
    state = _state(request)
    try:
        query = await request.json()
        indexes = [int(i) for i in query.get("logIndexes", [])]
    except (json.JSONDecodeError, TypeError, ValueError, AttributeError):
        return _error(400, "invalid SearchLogQuery")
    if len(indexes) > 10:
        return _error(422, "more than max allowed 10 entries in request")
    out = []
    for index in indexes:
        if state.faults.roll(state.rng, state.faults.omit_rate):
            continue  # Rekor skips missing entries silently
        entry = _v1_entry(state, index)
        if entry is not None:
            out.append(entry)
    state.rng.shuffle(out)  # order is not guaranteed either
    return web.json_response(out)


# --- Rekor v2 tiles -------------------------------------------------------------------------


def _v2(request: web.Request) -> SimV2Log:
    log = _state(request).v2_shards.get(request.match_info["shard"])
    if log is None:
        raise web.HTTPNotFound()
    return log


def _view_b(request: web.Request) -> bool:
    """Whether the request is from a client of view b (only while a split is on)."""
    if _state(request).faults.split_at is None:
        return False
    return request.path.startswith(VIEW_B_PREFIX + "/") or request.headers.get(VIEW_HEADER) == "b"


def _v2_store(state: SimState, log: SimV2Log, view_b: bool = False) -> MerkleStore:
    split = split_view_store(log, state.faults) if view_b else None
    if split is not None:
        return split
    fork_at = state.faults.fork_at
    if state.serve_fork() and fork_at is not None and 0 <= fork_at < log.size:
        return log.fork_store(fork_at)
    return log.store


async def _v2_checkpoint(request: web.Request) -> web.Response:
    log = _v2(request)
    state = _state(request)
    size = max(0, log.size - state.faults.shrink_by) if state.faults.shrink_by else log.size
    view_b = _view_b(request)
    note = log.checkpoint(size, _v2_store(state, log, view_b))
    if state.faults.bad_signature:
        note = _corrupt(note)
    note = state.witnesses.cosign(note, state.faults, view_b=view_b)
    return web.Response(text=note, content_type="text/plain")


async def _v2_tile(request: web.Request) -> web.Response:
    log = _v2(request)
    state = _state(request)
    try:
        level, index, width = parse_tile_path(request.match_info["path"])
    except ValueError:
        raise web.HTTPNotFound() from None
    size, view_b = log.size, _view_b(request)
    gzip_ok = "gzip" in request.headers.get("Accept-Encoding", "")
    if level == "entries":
        cached = _cached_bundle(state, log, index, width, size, view_b=view_b) if gzip_ok else None
        if cached is not None:
            return _gzipped(cached)
        data = _entry_bundle(state, log, index, width, size, view_b=view_b)
    else:
        data = _hash_tile(_v2_store(state, log, view_b), level, index, width, size)
    if data is None:
        raise web.HTTPNotFound()
    if gzip_ok:
        return _gzipped(gzip.compress(data, mtime=0))
    return web.Response(body=data, content_type="application/octet-stream")


def _gzipped(body: bytes) -> web.Response:
    return web.Response(
        body=body, headers={"Content-Encoding": "gzip"}, content_type="application/octet-stream"
    )


def _cached_bundle(
    state: SimState, log: SimV2Log, index: int, width: int, size: int, *, view_b: bool
) -> bytes | None:
    """The full bundle as the log appended it, unless a fault changes what it shows."""
    if width != TILE_WIDTH or not _available(size, index, width):
        return None
    start = index * TILE_WIDTH
    if any(_altered(state, i, view_b=view_b) for i in range(start, start + TILE_WIDTH)):
        return None
    return log.bundles.gzipped(index)


def _altered(state: SimState, index: int, *, view_b: bool) -> bool:
    """Whether a fault serves entry ``index`` other than as logged: a tampered body, or what
    view b of a split shows at its index instead."""
    return index in state.faults.tamper or (view_b and index == state.faults.split_at)


def _available(level_size: int, index: int, width: int) -> bool:
    """Full tiles exist once complete; the partial ones of the newest tile stay (a client
    that verified an older size still finds its width) until the full tile exists, when they
    disappear, as the spec allows (clients then fall back to the full tile)."""
    full_tiles, partial = divmod(level_size, TILE_WIDTH)
    if width == TILE_WIDTH:
        return index < full_tiles
    return index == full_tiles and 0 < width <= partial


def _entry_bundle(
    state: SimState, log: SimV2Log, index: int, width: int, size: int, *, view_b: bool = False
) -> bytes | None:
    if not _available(size, index, width):
        return None
    start = index * TILE_WIDTH
    bodies = []
    for i in range(start, start + width):
        body = log.entry(i).body
        bodies.append(_tampered(body) if _altered(state, i, view_b=view_b) else body)
    return encode_entry_bundle(bodies)


def _hash_tile(store: MerkleStore, level: int, index: int, width: int, size: int) -> bytes | None:
    level_size = size >> (8 * level)
    if not _available(level_size, index, width):
        return None
    data = store.tile(level, index, width)
    assert len(data) == width * HASH_SIZE
    return data


# --- admin -----------------------------------------------------------------------------------


async def _admin_state(request: web.Request) -> web.Response:
    state = _state(request)
    return web.json_response(
        {
            "v1": {
                "size": state.v1.size,
                "key_name": state.v1.key_name,
                "shards": [
                    {"tree_id": str(s.tree_id), "start": s.start, "size": s.store.size}
                    for s in state.v1.shards
                ],
            },
            "v2": [{"name": n, "size": log.size} for n, log in state.v2_shards.items()],
            "faults": state.faults.as_dict(),
            "requests": state.requests,
            "witnesses": list(state.witnesses.names),
            "distributor_refused": state.distributor.refused,
        }
    )


async def _admin_faults(request: web.Request) -> web.Response:
    state = _state(request)
    try:
        changes = await request.json()
        if not isinstance(changes, dict):
            raise ConfigError("faults: expected a JSON object")
        check_witness_faults(changes, state.witnesses.names)
        state.faults.update(changes)
    except (ConfigError, json.JSONDecodeError) as e:
        return _error(400, str(e))
    state.publish()
    return web.json_response(state.faults.as_dict())


async def _admin_append(request: web.Request) -> web.Response:
    state = _state(request)
    doc = await request.json()
    state.v1.append(int(doc.get("v1", 0)))
    state.v2.append(int(doc.get("v2", 0)))
    state.publish()
    return await _admin_state(request)


async def _admin_plant(request: web.Request) -> web.Response:
    """Plant an entry at an index neither log has reached yet (both logs share plans)."""
    state = _state(request)
    try:
        index, plan = plan_from_json(await request.json())
        if index < max(state.v1.size, state.v2.size):
            raise ConfigError(f"plant: index {index} is already in the log")
        state.v1.factory.plant(index, plan)
    except (ConfigError, ValueError) as e:
        return _error(400, str(e))
    return web.json_response({"planted": index})


async def _admin_v2_shard(request: web.Request) -> web.Response:
    """Open a new Rekor v2 shard (as Sigstore does about every six months); the trust files
    are rewritten to list it, so a monitor can discover it without a restart."""
    state = _state(request)
    doc = await request.json()
    name = str(doc.get("name", ""))
    if not name.replace("-", "").isalnum() or name in state.v2_shards:
        return _error(400, f"shard name {name!r} is invalid or taken")
    old = state.v2
    origin = old.origin.rsplit("/", 1)[0] + "/" + name
    signer = NoteSigner.ed25519(origin, old.factory.seed, f"rekor-v2:{name}")
    state.v2_shards[name] = SimV2Log(origin, signer, old.factory)
    state.v2.append(int(doc.get("entries", 0)))
    state.publish()
    if state.on_new_shard is not None:
        state.on_new_shard()
    return await _admin_state(request)


async def _admin_v1_key_name(request: web.Request) -> web.Response:
    """Sign Rekor v1 checkpoints under another name from now on, with the same key."""
    state = _state(request)
    try:
        doc = await request.json()
        name = doc.get("name") if isinstance(doc, dict) else None
        if not isinstance(name, str):
            raise ConfigError('v1-key-name: expected {"name": "..."}')
        state.v1.rename(name)
    except (ConfigError, json.JSONDecodeError) as e:
        return _error(400, str(e))
    return await _admin_state(request)


async def _admin_rotate(request: web.Request) -> web.Response:
    _state(request).v1.rotate()
    return await _admin_state(request)
