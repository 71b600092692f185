"""Which Rekor v2 shards to read, re-derived from the trust material whenever it is reloaded.

Sigstore opens a new v2 shard about every six months and announces it only through the
signing config (and the trusted root for its key): a monitor must notice without a restart.
A shard that disappears from the signing config is reported as retired; whoever tails it
decides when it is finished (its checkpoint stops growing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from monitor.trust import TransparencyLog, TrustRoot


@dataclass(frozen=True)
class ShardChanges:
    current: tuple[TransparencyLog, ...]
    added: tuple[TransparencyLog, ...]
    retired: tuple[TransparencyLog, ...]
    untrusted: tuple[TransparencyLog, ...] = ()  # listed, but their key has no validity start


class ShardDiscovery:
    """Call ``refresh()`` periodically (it reloads the trust root) to learn of new shards."""

    def __init__(
        self, load: Callable[[], TrustRoot], now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._load = load
        self._now = now
        self._known: dict[str, TransparencyLog] = {}

    def refresh(self) -> ShardChanges:
        """Reload and compare; the first call reports every shard as added."""
        trust = self._load()
        shards = trust.v2_shards(self._now())
        current = {log.base_url: log for log in shards}
        added = tuple(log for url, log in current.items() if url not in self._known)
        retired = tuple(log for url, log in self._known.items() if url not in current)
        self._known = current
        untrusted = tuple(log for log in trust.v2_shards() if log.validity_problem())
        return ShardChanges(tuple(current.values()), added, retired, untrusted)
