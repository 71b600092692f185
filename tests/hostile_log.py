"""A hostile log for the tests: the simulator's Rekor v1 log and Rekor v2 shard, plus attacks
that its faults do not cover, switched on over HTTP while a monitor reads it.

    python -m tests.hostile_log --out DIR [--entries N]

writes the trust files to DIR, prints one JSON line ``{"url": ...}`` once it serves, and serves
until killed. It runs in its own process (at a lower priority) so that building a 28 MiB answer
never stalls the process that times the monitor's API. ``POST /admin/hostile {"mode": M,
"from": I}`` switches mode ``M`` on for every request about entries (or tiles) at index ``I``
and beyond; ``{"mode": "off"}`` switches it off; ``GET /admin/hostile`` says how many hostile
answers were sent. The simulator's own admin API (append, plant, faults) works as usual.

Hostile bodies are sent without a length (chunked), so a client cannot refuse them unread; the
JSON attacks answer a request asked again alternately with 28 MiB (over any cap for ten
entries) and 12 MiB (under the cap, so that what is inside must be refused). Attacks
(``MODES``):

- ``v1-empty-arrays``: retrieve and get-by-index answer ``[[],[],...]``
- ``v1-extra-elements``: retrieve answers thousands of real entries when ten were asked
- ``v1-big-bodies``: the entries asked, each with a 2.4 MB body (32 MB); every other answer
  holds only the first of them (3.2 MB, within what ten entries may take)
- ``v1-deep-nesting``: ``[[[[...]]]]``
- ``v1-withheld``: the entries are never served (503), while LogInfo signs the tree holding them
- ``v1-absurd-size``: LogInfo's active tree head is signed for 2^63-1 entries
- ``v2-oversize-tile``: hash tiles of 28 MiB
- ``v2-oversize-bundle``: entry bundles of 30 MiB (256 maximal entries, then junk)
- ``v2-many-items``: entry bundles of 102,400 entries (a bundle holds at most 256)
- ``v2-absurd-checkpoint``: the checkpoint is signed for 2^63-1 entries; no tile ever comes
- ``v2-withheld``: the checkpoint is signed as usual; no tile or bundle ever comes (404)
- ``huge-headers``: every answer of the log carries a 64 KB header
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from monitor.core.encoding import b64encode
from monitor.sim.run import SimConfig, build_state, write_trust_files
from monitor.sim.server import V2_PREFIX, SimState, build_app
from monitor.tlog.tiles import TILE_WIDTH, encode_entry_bundle, parse_tile_path

MODES = (
    "off",
    "v1-empty-arrays",
    "v1-extra-elements",
    "v1-big-bodies",
    "v1-deep-nesting",
    "v1-withheld",
    "v1-absurd-size",
    "v2-oversize-tile",
    "v2-oversize-bundle",
    "v2-many-items",
    "v2-absurd-checkpoint",
    "v2-withheld",
    "huge-headers",
)
HUGE = 28 << 20  # under the 32 MiB response cap the monitor once had
SMALL = 12 << 20  # under what ten entries of a megabyte may take
ABSURD = (1 << 63) - 1
BIG_BODY = 2_400_000


@dataclass
class Attack:
    mode: str = "off"
    first: int = 0  # the first index attacked
    served: int = 0  # hostile answers sent
    asked: dict[int, int] = field(default_factory=dict)  # answers sent, by first index asked

    def size(self, first_asked: int) -> int:
        """For each request asked again, alternately a body over any cap and one under the
        cap of ten entries: the request a client is waiting for meets both."""
        times = self.asked.get(first_asked, 0)
        self.asked[first_asked] = times + 1
        return HUGE if times % 2 == 0 else SMALL


ATTACK = web.AppKey("attack", Attack)
SIM = web.AppKey("sim", SimState)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Answer = tuple[bytes, str]  # a hostile body and its content type


def _memo(build: Callable[[], bytes]) -> Callable[[], bytes]:
    cache: list[bytes] = []

    def get() -> bytes:
        if not cache:
            cache.append(build())
        return cache[0]

    return get


EMPTY_ARRAYS = _memo(lambda: b"[" + b"[]," * (HUGE // 3 - 1) + b"[]]")
JUNK = _memo(lambda: hashlib.sha256(b"junk").digest() * (HUGE // 32))


def _empty_arrays(size: int) -> bytes:
    return EMPTY_ARRAYS()[: size - 3] + b"[]]"


def _deep(size: int) -> bytes:
    return b"[" * (size // 2) + b"]" * (size // 2)


async def _send(request: web.Request, answer: Answer) -> web.StreamResponse:
    """Send ``answer`` chunked, without a length; stop quietly when the client hangs up."""
    data, content_type = answer
    resp = web.StreamResponse(headers={"Content-Type": content_type})
    resp.enable_chunked_encoding()
    try:
        await resp.prepare(request)
        for at in range(0, len(data), 1 << 20):
            await resp.write(data[at : at + (1 << 20)])
        await resp.write_eof()
    except (ConnectionError, RuntimeError):
        pass  # the client refused the rest, as it should
    return resp


async def _asked(request: web.Request) -> list[int]:
    if request.path.endswith("/entries/retrieve"):
        try:
            doc = json.loads(await request.read())
            return [int(i) for i in doc.get("logIndexes", [])]
        except (ValueError, TypeError, AttributeError):
            return []
    if request.path.endswith("/log/entries") and request.query.get("logIndex", "").isdigit():
        return [int(request.query["logIndex"])]
    return []


def _v1_answer(state: SimState, attack: Attack, asked: list[int], single: bool) -> Answer:
    mode, size = attack.mode, attack.size(min(asked))
    if mode == "v1-empty-arrays":
        return _empty_arrays(size), "application/json"
    if mode == "v1-deep-nesting":
        return _deep(size), "application/json"
    known = [i for i in asked if i < state.v1.size] or [0]
    real = [state.v1.log_entry_json(i, state.v1.entry(i), state.v1_log_id) for i in known]
    if mode == "v1-extra-elements":
        one = json.dumps(real[0]).encode()
        copies = max(1, size // (len(one) + 1))
        if single:  # one LogEntry object with thousands of keys
            inner = one[one.index(b":") + 1 : -1]
            keys = (b'"%080x":' % k + inner for k in range(copies))
            return b"{" + b",".join(keys) + b"}", "application/json"
        return b"[" + b",".join([one] * copies) + b"]", "application/json"
    # v1-big-bodies: the entries asked (or the first), each with a body of 2.4 MB
    body = b64encode(JUNK()[:BIG_BODY])
    if size == SMALL:
        real = real[:1]
    for doc in real:
        next(iter(doc.values()))["body"] = body
    return json.dumps(real[0] if single else real).encode(), "application/json"


def _v1_log_info(state: SimState) -> web.Response:
    """LogInfo whose active tree head is signed for 2^63-1 entries."""
    log = state.v1
    root = hashlib.sha256(b"absurd").digest()
    note = log.signer.sign_checkpoint(log.origin(log.active), ABSURD, root)
    doc: dict[str, Any] = {
        "rootHash": root.hex(),
        "signedTreeHead": note,
        "treeID": str(log.active.tree_id),
        "treeSize": ABSURD,
    }
    inactive = [
        {
            "rootHash": s.store.root().hex(),
            "signedTreeHead": log.checkpoint(s, s.store.size),
            "treeID": str(s.tree_id),
            "treeSize": s.store.size,
        }
        for s in log.shards[:-1]
    ]
    if inactive:
        doc["inactiveShards"] = inactive
    return web.json_response(doc)


def _tile_reaches(path: str, first: int) -> bool:
    """Whether the tile or bundle at ``path`` covers an entry at ``first`` or beyond."""
    try:
        level, index, width = parse_tile_path(path)
    except ValueError:
        return False
    shift = 0 if level == "entries" else 8 * int(level)
    return ((index * TILE_WIDTH + width) << shift) > first


OVERSIZE_BUNDLE = _memo(
    lambda: encode_entry_bundle([b"\x7b" * 0xFFFF] * TILE_WIDTH) + JUNK()[: 14 << 20]
)
MANY_ITEMS = _memo(lambda: encode_entry_bundle([b"{}"] * TILE_WIDTH) * 400)
# (mode, for an entry bundle rather than a hash tile): what is served instead
V2_BODIES = {
    ("v2-oversize-tile", False): JUNK,
    ("v2-oversize-bundle", True): OVERSIZE_BUNDLE,
    ("v2-many-items", True): MANY_ITEMS,
}


def _v2_answer(state: SimState, attack: Attack, path: str) -> web.Response | Answer | None:
    mode = attack.mode
    if mode == "v2-absurd-checkpoint" and path == "checkpoint":
        log = state.v2
        note = log.signer.sign_checkpoint(log.origin, ABSURD, hashlib.sha256(b"x").digest())
        return web.Response(text=note, content_type="text/plain")
    if not path.startswith("tile/") or not _tile_reaches(path, attack.first):
        return None
    if mode in ("v2-withheld", "v2-absurd-checkpoint"):
        return web.Response(status=404)
    make = V2_BODIES.get((mode, path.startswith("tile/entries/")))
    return None if make is None else (make(), "application/octet-stream")


@web.middleware
async def _hostile(request: web.Request, handler: Handler) -> web.StreamResponse:
    attack, state = request.app[ATTACK], request.app[SIM]
    if attack.mode == "off" or request.path.startswith("/admin/"):
        return await handler(request)
    if attack.mode == "huge-headers":
        response = await handler(request)
        response.headers["X-Padding"] = "a" * 65536
        attack.served += 1
        return response
    answer: web.Response | Answer | None = None
    if request.path.startswith(V2_PREFIX):
        rest = request.path[len(V2_PREFIX) :].partition("/")[2]
        answer = _v2_answer(state, attack, rest)
    elif attack.mode == "v1-absurd-size" and request.path == "/api/v1/log":
        answer = _v1_log_info(state)
    elif attack.mode.startswith("v1-") and attack.mode != "v1-absurd-size":
        asked = await _asked(request)
        if asked and max(asked) >= attack.first:
            if attack.mode == "v1-withheld":
                answer = web.json_response({"code": 503, "message": "try later"}, status=503)
            else:
                single = not request.path.endswith("/retrieve")
                answer = _v1_answer(state, attack, asked, single)
    if answer is None:
        return await handler(request)
    attack.served += 1
    return answer if isinstance(answer, web.Response) else await _send(request, answer)


async def _admin_hostile(request: web.Request) -> web.Response:
    attack = request.app[ATTACK]
    doc = await request.json()
    mode = doc.get("mode", "off")
    if mode not in MODES:
        return web.json_response({"message": f"unknown mode {mode!r}"}, status=400)
    attack.mode, attack.first = mode, int(doc.get("from", 0))
    attack.asked.clear()
    return web.json_response({"mode": attack.mode, "from": attack.first})


async def _admin_attack(request: web.Request) -> web.Response:
    attack = request.app[ATTACK]
    return web.json_response({"mode": attack.mode, "from": attack.first, "served": attack.served})


async def serve(out: Path, entries: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = SimConfig(entries=entries, shards=1, seed=3)
    state, ca = build_state(config, port)
    base_url = f"http://127.0.0.1:{port}"
    write_trust_files(out, state, ca, base_url)
    app = build_app(state)
    app[ATTACK] = Attack()
    app[SIM] = state
    app.middlewares.append(_hostile)
    app.router.add_post("/admin/hostile", _admin_hostile)
    app.router.add_get("/admin/hostile", _admin_attack)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    print(json.dumps({"url": base_url}), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path, help="where to write the trust files")
    p.add_argument("--entries", type=int, default=300, help="entries in each log at start")
    args = p.parse_args(argv)
    # the monitor under test comes first for the CPU: its timings are what tests measure
    os.nice(10)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.out, args.entries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
