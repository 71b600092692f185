"""``tlog-monitor sim``: run the Rekor-compatible simulator."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.core.errors import ConfigError

if TYPE_CHECKING:
    from monitor.sim.faults import Faults
    from monitor.sim.run import SimConfig


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "sim",
        help="run a Rekor v1 + v2 log simulator (tests, benchmarks, demo)",
        description=(
            "Serve a sharded Rekor v1 log and a Rekor v2 tile log over real Merkle trees with "
            "real signed checkpoints, and write a trusted root and signing config describing "
            "them into --out. Faults can be switched on here or at run time with "
            "POST /admin/faults."
        ),
    )
    p.add_argument(
        "--listen",
        default="127.0.0.1:0",
        metavar="HOST:PORT",
        help="where to listen (default 127.0.0.1:0: any free port, printed at start)",
    )
    p.add_argument(
        "--entries",
        type=int,
        default=1000,
        metavar="N",
        help="entries in each log at the start (default 1000)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=1,
        metavar="N",
        help="seed of the keys and entries: the same seed, the same logs (default 1)",
    )
    p.add_argument(
        "--shards",
        type=int,
        default=2,
        metavar="N",
        help="Rekor v1 trees, the last one active (default 2)",
    )
    p.add_argument(
        "--rate",
        type=float,
        default=0.0,
        metavar="N",
        help="entries a second appended to each log (default 0: the logs do not grow)",
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="where to write trusted_root.json and signing_config.json for the logs",
    )
    p.add_argument(
        "--faults",
        default="{}",
        metavar="JSON",
        help="misbehaviour from the start, e.g. '{\"rate_429\": 0.1}' (POST /admin/faults "
        "changes it at run time)",
    )
    p.add_argument(
        "--v1-key-name",
        default="host",
        metavar="host|netloc|NAME",
        help=(
            "the name the Rekor v1 log signs its checkpoints under, also the first part of "
            "their origin: host (the URL's host without the port, as rekor.sigstore.dev, and "
            "the default), netloc (host:port) or a name of its own, as a Kubernetes pod's "
            "(POST /admin/v1-key-name changes it at run time)"
        ),
    )
    p.set_defaults(handler=run)


def _listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--listen {value!r}: expected HOST:PORT")
    return host, int(port)


def run(args: argparse.Namespace) -> int:
    # imported here: the simulator's CA and factory are not needed by any other command
    from monitor.sim.faults import Faults
    from monitor.sim.logs import check_key_name
    from monitor.sim.run import SimConfig

    host, port = _listen(args.listen)
    if args.v1_key_name not in ("host", "netloc"):
        check_key_name(args.v1_key_name)
    faults = Faults()
    try:
        faults.update(json.loads(args.faults))
    except (json.JSONDecodeError, AttributeError) as e:
        raise ConfigError(f"--faults: not a JSON object: {e}") from None
    config = SimConfig(
        host=host, port=port, entries=args.entries, seed=args.seed, shards=args.shards,
        rate=args.rate, v1_key_name=args.v1_key_name,
    )  # fmt: skip
    asyncio.run(_serve(config, args.out, faults))
    return 0


async def _serve(config: SimConfig, out: Path, faults: Faults) -> None:
    from monitor.sim.run import start

    try:
        sim = await start(config, out, faults)
    except OSError as e:
        # a port in use, an address not of this host, a directory not writable
        where = f"{config.host}:{config.port}"
        raise ConfigError(f"cannot start the simulator on {where}: {e.strerror or e}") from None
    print(f"simulator: {sim.base_url} (v1 size {sim.state.v1.size}, v2 size {sim.state.v2.size})")
    print(f"trust files: {out / 'trusted_root.json'}, {out / 'signing_config.json'}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await sim.stop()
