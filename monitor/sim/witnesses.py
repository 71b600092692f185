"""The simulator's witnesses: deterministic Ed25519 cosigners that cosign Rekor v2 checkpoints
(C2SP tlog-cosignature, ``cosignature/v1``), and the files a monitor is configured with.

What they cosign follows the faults (``Faults``): withheld cosignatures, a bad signature from a
named witness, and the two views of a split (a colluding quorum cosigns both).
"""

from __future__ import annotations

import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from monitor.core.errors import ConfigError
from monitor.sim.faults import Faults
from monitor.sim.logs import SimV2Log
from monitor.sim.signing import Cosigner
from monitor.sim.tree import MerkleStore

WITNESS_DOMAIN = "sim.example"
POLICY_GROUP = "sim-witnesses"
_NAME_LISTS = ("withhold_cosigners", "bad_cosigners", "split_cosigners")


def witness_name(n: int) -> str:
    """The ``n``-th witness's key name: ``witness-a.sim.example``, ``witness-b...``."""
    return f"witness-{string.ascii_lowercase[n]}.{WITNESS_DOMAIN}"


def note_body(note: str) -> str:
    """The text a note's signatures cover (up to and with the newline before the blank line)."""
    return note[: note.index("\n\n") + 1]


@dataclass(frozen=True)
class WitnessSet:
    """The witnesses and the quorum a monitor should require of them (``quorum`` of them)."""

    cosigners: tuple[Cosigner, ...]
    quorum: int
    clock: Callable[[], float] = time.time

    @classmethod
    def seeded(
        cls, seed: int, count: int, quorum: int, clock: Callable[[], float] = time.time
    ) -> WitnessSet:
        if not 0 <= count <= len(string.ascii_lowercase):
            raise ConfigError(f"witnesses: {count} is not between 0 and 26")
        if not (0 < quorum <= count or quorum == count == 0):
            raise ConfigError(f"witness quorum {quorum} is not between 1 and {count}")
        signers = tuple(Cosigner.seeded(witness_name(i), seed) for i in range(count))
        return cls(signers, quorum, clock)

    @classmethod
    def none(cls) -> WitnessSet:
        return cls((), 0)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.cosigners)

    def signing(self, faults: Faults, *, view_b: bool) -> list[tuple[Cosigner, bool]]:
        """Who cosigns a checkpoint of the honest view (or of view b), and whether badly."""
        if faults.withhold_cosignatures:
            return []
        allowed = set(self.names)
        if view_b and faults.split_cosigners is not None:
            allowed &= set(faults.split_cosigners)
        allowed -= set(faults.withhold_cosigners)
        return [(c, c.name in faults.bad_cosigners) for c in self.cosigners if c.name in allowed]

    def cosignature_lines(self, note: str, faults: Faults, *, view_b: bool) -> dict[str, str]:
        """Each cosigning witness's signature line over ``note``, by witness name."""
        body, now = note_body(note), int(self.clock())
        return {
            c.name: c.cosign(body, now, corrupt=bad)
            for c, bad in self.signing(faults, view_b=view_b)
        }

    def cosign(self, note: str, faults: Faults, *, view_b: bool) -> str:
        """``note`` (signed by the log) with the witnesses' cosignatures after its signature."""
        return note + "".join(self.cosignature_lines(note, faults, view_b=view_b).values())

    def witnesses_txt(self) -> str:
        """One vkey a line: what a monitor is configured to trust."""
        return "".join(c.vkey() + "\n" for c in self.cosigners)

    def policy_txt(self, logs: Mapping[str, str]) -> str:
        """A C2SP tlog-policy file: the logs (vkey to URL), the witnesses and the quorum."""
        lines = [f"# the tlog-monitor simulator's witnesses: {self.quorum} of them must cosign"]
        lines += [f"log {key} {url}" for key, url in logs.items()]
        lines += [f"witness {c.name} {c.vkey()}" for c in self.cosigners]
        if self.cosigners:
            members = " ".join(self.names)
            lines.append(f"group {POLICY_GROUP} {self.quorum} {members}")
            lines.append(f"quorum {POLICY_GROUP}")
        else:
            lines.append("quorum none")
        return "\n".join(lines) + "\n"


def check_witness_faults(changes: Mapping[str, Any], names: tuple[str, ...]) -> None:
    """Refuse witness faults that name unknown witnesses, or are not lists of names (a typo in
    a test would otherwise switch nothing on)."""
    for key in _NAME_LISTS:
        if key not in changes or (key == "split_cosigners" and changes[key] is None):
            continue
        value = changes[key]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key}: expected a list of witness names")
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ConfigError(f"{key}: unknown witnesses {unknown}; known: {list(names)}")
    split_at = changes.get("split_at")
    if split_at is not None and (
        isinstance(split_at, bool) or not isinstance(split_at, int) or split_at < 0
    ):
        raise ConfigError("split_at: expected an entry index or null")


def split_view_store(log: SimV2Log, faults: Faults) -> MerkleStore | None:
    """View b's tree of ``log`` when a split is on and reaches into it, else None."""
    at = faults.split_at
    if at is None or not 0 <= at < log.size:
        return None
    return log.split_store(at)
