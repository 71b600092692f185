"""Misbehaviour on demand: everything a real log (or an attacker in front of it) can do wrong.

Switchable at start (``tlog-monitor sim --fault ...``) and at run time (``POST /admin/faults``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, fields
from typing import Any

from monitor.core.errors import ConfigError


@dataclass
class Faults:
    """Transport faults (rates are per request, 0 to 1) and log lies."""

    rate_429: float = 0.0
    rate_5xx: float = 0.0
    rate_timeout: float = 0.0  # hold the request longer than any sane client timeout
    rate_truncate: float = 0.0  # send half the body and cut the connection
    latency_seconds: float = 0.0
    retry_after_seconds: int = 1
    omit_rate: float = 0.0  # batch retrieval silently leaves entries out
    omit_always: list[int] = field(default_factory=list)  # never served, by any endpoint
    bad_signature: bool = False  # checkpoints with a corrupted signature
    tamper: list[int] = field(default_factory=list)  # bodies that do not hash to the tree
    shrink_by: int = 0  # serve a checkpoint this many entries smaller than the last
    fork_at: int | None = None  # serve a second tree that differs from this index on
    fork_every_other: bool = False  # serve the fork to every other request only
    # witnesses (Rekor v2 checkpoints): names are witness key names (``witness-a.sim.example``)
    withhold_cosignatures: bool = False  # no witness cosigns (all down, or the log hides them)
    withhold_cosigners: list[str] = field(default_factory=list)  # these witnesses do not cosign
    bad_cosigners: list[str] = field(default_factory=list)  # these cosign with a bad signature
    # a split view: clients of view b (header ``X-Sim-View: b`` or the URL prefix ``/view-b``)
    # see a tree whose entry at this index differs, validly signed and cosigned
    split_at: int | None = None
    split_cosigners: list[str] | None = None  # who cosigns view b (None: all, a colluding quorum)
    # the witnesses hand view b to the distributor (of a Rekor v1 log too: its active tree,
    # split from the global index ``split_at``, is then handed over as view b only)
    split_distributor: bool = False

    def update(self, changes: dict[str, Any]) -> None:
        known = {f.name: f for f in fields(self)}
        for key, value in changes.items():
            if key not in known:
                raise ConfigError(f"unknown fault {key!r}; known: {', '.join(sorted(known))}")
            setattr(self, key, value)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def roll(self, rng: random.Random, rate: float) -> bool:
        return rate > 0 and rng.random() < rate
