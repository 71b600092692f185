"""Write the RSA keys the simulator's pools use (``monitor/sim/rsa_keys.pem``).

RSA keys cannot be derived from a seed the way EC and Ed25519 keys are (a scalar, or 32
bytes): ``cryptography`` generates them from the system's randomness only. So they are
generated here, once, and shipped; the simulator picks among them by seed
(``monitor.sim.keys.rsa_pool_key``), which keeps one seed giving the same logs everywhere.

Run ``python -m tools.sim_rsa_keys monitor/sim/rsa_keys.pem``; rewriting the file changes
every seed's RSA keys, and with them the simulated logs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

COUNT = 16  # 2 in each default pool; 16 allow pools of up to 128 bare keys
BITS = 2048
EXPONENT = 65537

HEADER = """\
# RSA-2048 private keys of the simulator's pools (test material, not secrets), written by
# `python -m tools.sim_rsa_keys monitor/sim/rsa_keys.pem`; monitor.sim.keys picks among them
# by seed.
"""


def render(count: int = COUNT) -> str:
    """``count`` fresh keys as PKCS#8 PEM, after a comment saying what they are."""
    pems = [
        rsa.generate_private_key(EXPONENT, BITS)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode("ascii")
        for _ in range(count)
    ]
    return HEADER + "".join(pems)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        sys.stderr.write("usage: python -m tools.sim_rsa_keys FILE\n")
        return 2
    Path(args[0]).write_text(render(), encoding="ascii")
    return 0


if __name__ == "__main__":
    sys.exit(main())
