"""``tlog-monitor cosign-key``: make the monitor's own witness key (``server.cosign_key``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from monitor.core.errors import ConfigError
from monitor.core.escape import escape
from monitor.tlog.cosign import CheckpointCosigner


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "cosign-key",
        help="make a key with which the monitor cosigns the checkpoints it publishes",
        description=(
            "Write a new Ed25519 witness key (C2SP signed-note form, PRIVATE+KEY+...) to FILE, "
            "readable by its owner only, and print its verifier key. Set server.cosign_key to "
            "FILE; give the verifier key to the peers that compare their view of a log with "
            "this monitor's (their witnesses.keys, or a policy's witness line)."
        ),
    )
    p.add_argument("name", help="the key's name, e.g. the monitor's host name")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="where to write it")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    key = CheckpointCosigner.generate(args.name)
    try:
        # O_EXCL: never replace a key peers may already trust
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{args.out}: already exists; not replaced") from None
    except OSError as e:
        raise ConfigError(f"{args.out}: cannot create it: {e.strerror or e}") from None
    with os.fdopen(fd, "w") as f:
        f.write(key.private_text() + "\n")
    print(escape(key.vkey()))
    return 0
