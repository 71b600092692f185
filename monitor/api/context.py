"""What the API reads: the store, the server settings, the metrics registry and, from the
running daemon, each log's live status."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from monitor.config.models import ServerSettings
from monitor.config.server import read_cosign_key
from monitor.core.status import Leader, LogStatus
from monitor.storage.ports import ApiStore
from monitor.tlog.cosign import CheckpointCosigner


@dataclass(frozen=True)
class ApiContext:
    store: ApiStore
    server: ServerSettings
    registry: CollectorRegistry
    # the daemon's logs by name (read at each request: shards come and go)
    statuses: Callable[[], Mapping[str, LogStatus]] = field(default=dict)
    # a log counts as verified recently when its last clean pass ended within this many
    # seconds (the health settings' unreachable_after)
    ready_within: float = 900.0
    clock: Callable[[], float] = time.time
    # the configured watch rules: a rule with no finding yet is not an unknown one
    rules: frozenset[str] = frozenset()
    # several replicas (ha:): this replica's id; whether it leads a log (only then is the
    # log's status its own to report); who leads each log now (read from the database)
    replica: str | None = None
    leads: Callable[[str], bool] = field(default=lambda _name: True)
    leaders: Callable[[], Awaitable[Mapping[str, Leader]]] | None = None
    # the cosignatures of a log's configured witnesses on a checkpoint note it stored
    cosigners: Callable[[str, str], list[dict[str, object]]] = field(default=lambda _log, _note: [])
    # an evidence file for a stored entry (JSON that ``verify-bundle`` accepts offline: the
    # entry with an inclusion proof and a checkpoint, fetched from the log and verified); None
    # when no log is at hand (a database opened without the daemon)
    evidence: Callable[[str, int], Awaitable[bytes]] | None = None
    # the monitor's own witness key (server.cosign_key), read once
    cosigner: CheckpointCosigner | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.server.cosign_key is not None:
            object.__setattr__(self, "cosigner", read_cosign_key(self.server.cosign_key))

    async def leadership(self) -> Mapping[str, Leader]:
        """Who leads each log; without several replicas, none is named."""
        return {} if self.leaders is None else await self.leaders()

    def configured_logs(self) -> frozenset[str]:
        """The logs the daemon tails now (a new one may have nothing stored yet)."""
        return frozenset(self.statuses())
