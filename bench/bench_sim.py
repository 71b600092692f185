"""How fast the simulator makes entries, beside the monitor's parse-only rate of the same ones.

- generate: entries a second appended to a fresh Rekor v1 and v2 log (each entry built from
  its index, signed, its leaf hash added to the tree, its signature kept): what starting or
  growing a log costs;
- serve: entries a second rebuilt from those logs as the server answers (Rekor v2: entry
  bundles of 256; Rekor v1: ``/api/v1/log/entries`` objects, each with its inclusion proof
  and signed checkpoint), with the kept signatures: what the simulator spends while a monitor
  reads it (a full Rekor v2 bundle is built so only beyond the copies gzipped as tiles fill,
  ``monitor.sim.bundle_cache``, for a partial tile, or where a fault alters it);
- parse-only: the monitor's ``parse_entry`` on the simulator's v2 entries, one core, in this
  run, so that the ratios say whether the simulator keeps up with a monitor on the same
  machine (the daemon benchmark runs both on its 2 cores).

Run: .venv/bin/python -m bench.bench_sim [--entries N] [--json FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from monitor.sim.ca import SimCA
from monitor.sim.factory import EntryFactory
from monitor.sim.logs import SimV1Log, SimV2Log
from monitor.sim.server import SimState, _entry_bundle, _v1_entry
from monitor.sim.signing import NoteSigner
from monitor.tlog.tiles import TILE_WIDTH

SEED = 1  # the daemon benchmark's seed: the same mix of entries


def _rate(count: int, work: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    work()
    return count / (time.perf_counter() - t0)


def generate(entries: int) -> tuple[dict[str, float], SimState]:
    """Entries a second appended to fresh logs (a new factory each: no warm caches), and
    the logs, ready to serve."""
    v1 = SimV1Log(NoteSigner.ecdsa("sim", SEED, "rekor-v1"), EntryFactory(SEED, SimCA.create(SEED)))
    v2 = SimV2Log(
        "sim/v2",
        NoteSigner.ed25519("sim/v2", SEED, "rekor-v2"),
        EntryFactory(SEED, SimCA.create(SEED)),
    )
    rates = {
        "v1": _rate(entries, lambda: v1.append(entries)),
        "v2": _rate(entries, lambda: v2.append(entries)),
    }
    log_id = hashlib.sha256(v1.signer.public_spki()).digest()
    return rates, SimState(v1=v1, v2_shards={"sim": v2}, v1_log_id=log_id)


def serve(state: SimState, v1_entries: int) -> dict[str, float]:
    """Entries a second as the server rebuilds them from a built log."""
    log = state.v2
    tiles = log.size // TILE_WIDTH

    def bundles() -> None:
        for t in range(tiles):
            _entry_bundle(state, log, t, TILE_WIDTH, log.size)

    def v1() -> None:
        for i in range(state.v1.size - v1_entries, state.v1.size):
            _v1_entry(state, i)

    return {
        "v2_bundles": _rate(tiles * TILE_WIDTH, bundles),
        "v1_entries": _rate(v1_entries, v1),
    }


def parse_rate(count: int) -> float:
    """The monitor's parse-only rate of the simulator's v2 entries (per CPU second)."""
    from bench.bench_daemon import sim_parse_rate  # noqa: PLC0415 - its imports are heavy

    return sim_parse_rate(count)


def run(entries: int, parse_count: int = 10_000) -> dict[str, Any]:
    gen, state = generate(entries)
    kept = {
        "v1": state.v1.sigs.nbytes / state.v1.size,
        "v2": state.v2.sigs.nbytes / state.v2.size,
    }
    srv = serve(state, min(entries, 5_000))
    parse = parse_rate(parse_count)
    return {
        "entries": entries,
        "generate": gen,
        "serve": srv,
        "parse_rate": parse,
        "signature_bytes_per_entry": kept,
    }


def render(r: dict[str, Any]) -> str:
    p = r["parse_rate"]
    g, s = r["generate"], r["serve"]
    return "\n".join(
        [
            f"simulator, {r['entries']:,} entries per log (monitor parse-only: {p:,.0f}/s)",
            f"  generate v1: {g['v1']:,.0f} entries/s ({g['v1'] / p:.2f}x parse-only)",
            f"  generate v2: {g['v2']:,.0f} entries/s ({g['v2'] / p:.2f}x parse-only)",
            f"  build v2 entry bundles afresh: {s['v2_bundles']:,.0f} entries/s "
            f"({s['v2_bundles'] / p:.2f}x parse-only)",
            f"  serve v1 entries: {s['v1_entries']:,.0f} entries/s "
            f"({s['v1_entries'] / p:.2f}x parse-only)",
            "  signatures kept: {v1:.0f} bytes an entry (v1), {v2:.0f} (v2)".format(
                **r["signature_bytes_per_entry"]
            ),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--entries", type=int, default=50_000)
    p.add_argument("--json", type=Path, help="also write the results as JSON to FILE")
    args = p.parse_args(argv)
    res = run(args.entries)
    print(render(res))
    if args.json is not None:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
