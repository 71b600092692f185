"""Other vantage points: what a checkpoint distributor holds for a log, compared with what the
log showed the monitor. A log can show the monitor one consistent tree and others another (a
split view); no proof inside one monitor's view sees it, a second view does.

After each pass of a Rekor v2 log with ``witnesses.distributor`` configured, the distributor's
latest checkpoint of the log (``/distributor/v0/logs/<hex SHA-256("o:" + origin)>/checkpoint.1``,
at least one cosignature) is read, its signature verified with the log's own key, and proven
consistent with the monitor's latest verified checkpoint in whichever direction the sizes
call for, with the log's tiles. A proof that fails (or one size, two roots) is a critical
``split_view`` integrity failure carrying both checkpoints; from then on the log is held
where the monitor's cursor stood, and no pass moves it until a person resolves the finding.
A distributor that cannot be reached, or a proof the log cannot serve yet, proves nothing
either way: it is logged and tried again at the next pass.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Protocol

from monitor.alerts.routing import Routing
from monitor.core.errors import (
    CheckpointError,
    LogResponseError,
    MonitorError,
    ProofError,
    TransientLogError,
)
from monitor.core.findings import (
    Finding,
    FindingKind,
    FindingState,
    IntegrityType,
    Severity,
    dedup_key,
)
from monitor.daemon.source import LogSource, Tree
from monitor.daemon.v2source import RekorV2Source
from monitor.logclient.http import LogHttp
from monitor.storage import FindingQuery
from monitor.storage.logs_state import LogState
from monitor.storage.ports import HealthStore
from monitor.tlog.checkpoint import SignedCheckpoint
from monitor.tlog.merkle import verify_consistency

__all__ = ["DistributorView", "VantageStore", "distributor_log_id"]

log = logging.getLogger("monitor.vantage")

MAX_CHECKPOINT_BYTES = 64 << 10  # a checkpoint with a hundred cosignatures takes ~10 KB


class VantageStore(HealthStore, Protocol):
    """The findings of a split view, and where the log stands."""

    async def log_state(self, name: str) -> LogState | None: ...


def distributor_log_id(origin: str) -> str:
    """How a distributor names a log: hex SHA-256 of ``o:`` and its origin."""
    return hashlib.sha256(f"o:{origin}".encode()).hexdigest()


@dataclass
class DistributorView:
    """One log's comparison with a distributor, and the hold a split view puts on it."""

    name: str  # the log's name in the store
    http: LogHttp  # the distributor's base URL
    routing: Routing  # who hears of a split view
    hold: int | None = None  # the cursor the log is held at, while a split view is open
    _loaded: bool = False

    async def load(self, store: HealthStore) -> None:
        """Hold the log where an open split view left it (a restart keeps the hold), and
        release it once a person has resolved every split view of it."""
        query = FindingQuery(
            kinds=(FindingKind.INTEGRITY_FAILURE,),
            states=(FindingState.OPEN, FindingState.ACKNOWLEDGED),
            log=self.name,
            limit=1000,
        )
        holds = []
        for sf in (await store.findings(query)).items:
            f = sf.finding
            if f.type == IntegrityType.SPLIT_VIEW and f.index is not None:
                holds.append(f.index)
        self.hold = min(holds) if holds else None
        self._loaded = True

    async def held(self, store: HealthStore) -> int | None:
        """The cursor the log is held at (None: not held), as the findings say now."""
        if not self._loaded or self.hold is not None:
            await self.load(store)
        return self.hold

    async def after_pass(self, source: LogSource, store: VantageStore) -> None:
        """Compare the log's latest verified checkpoint with the distributor's; whatever
        goes wrong here proves nothing, and is only logged."""
        if not isinstance(source, RekorV2Source):
            return
        try:
            state = await store.log_state(self.name)
            if state is None or state.verified_checkpoint is None:
                return
            ours = source.client.open_note(state.verified_checkpoint.encode())
            await self.check(source, ours, state.cursor, store)
        except MonitorError as e:
            log.warning(
                "distributor comparison failed: %s", e, extra={"fields": {"log": self.name}}
            )

    async def check(
        self, source: RekorV2Source, ours: SignedCheckpoint, cursor: int, store: HealthStore
    ) -> Finding | None:
        """Compare the distributor's checkpoint with ``ours``; the split view found (stored,
        and the log held at ``cursor``), or None. (Whether the log is held is read before
        each pass, by ``held``.)"""
        theirs = await self._fetch(source, ours.origin)
        if theirs is None:
            return None
        try:
            proof = await self._proof(source, ours, theirs)
        except (TransientLogError, LogResponseError) as e:
            log.warning(
                "cannot compare with the distributor yet: %s",
                e,
                extra={"fields": {"log": self.name, "theirs": theirs.size, "ours": ours.size}},
            )
            return None
        if proof is None:
            return None
        finding = self._split(ours, theirs, proof, cursor)
        evidence = {
            "ours": ours.raw,
            "theirs": theirs.raw,
            "source": self.http.base_url,
            "proof": [h.hex() for h in proof],
            "held_at": cursor,
        }
        await store.store_findings(
            [finding],
            outbox=self.routing.outbox([finding]),
            evidence={finding.dedup_key: evidence},
        )
        self.hold = cursor if self.hold is None else min(self.hold, cursor)
        log.error(
            "split view: %s",
            finding.detail,
            extra={"fields": {"log": self.name, "theirs": theirs.size, "ours": ours.size}},
        )
        return finding

    async def _fetch(self, source: RekorV2Source, origin: str) -> SignedCheckpoint | None:
        path = f"distributor/v0/logs/{distributor_log_id(origin)}/checkpoint.1"
        try:
            resp = await self.http.get(path, accept="text/plain", max_bytes=MAX_CHECKPOINT_BYTES)
        except MonitorError as e:
            log.warning("distributor unreachable: %s", e, extra={"fields": {"log": self.name}})
            return None
        if resp.status == 404:
            return None  # it holds no checkpoint of the log (yet)
        if resp.status != 200:
            log.warning(
                "distributor answered %s", resp.status, extra={"fields": {"log": self.name}}
            )
            return None
        try:
            return source.client.open_note(resp.body)
        except CheckpointError as e:
            # not the log's signature: the distributor's problem, not a view of the log
            log.warning(
                "distributor served a checkpoint that does not verify: %s",
                e,
                extra={"fields": {"log": self.name}},
            )
            return None

    async def _proof(
        self, source: RekorV2Source, ours: SignedCheckpoint, theirs: SignedCheckpoint
    ) -> list[bytes] | None:
        """The log's proof between the two checkpoints when it fails (a split view), or None
        when they are consistent."""
        if theirs.size == ours.size:
            return None if theirs.root_hash == ours.root_hash else []
        older, newer = sorted((ours, theirs), key=lambda cp: cp.size)
        if older.size == 0:
            return None  # the empty tree is a prefix of every tree
        proof = await source.consistency_proof(Tree(None, 0, newer, final=False), older.size)
        try:
            verify_consistency(older.size, newer.size, proof, older.root_hash, newer.root_hash)
        except ProofError:
            return proof
        return None

    def _split(
        self, ours: SignedCheckpoint, theirs: SignedCheckpoint, proof: list[bytes], cursor: int
    ) -> Finding:
        how = (
            "the same size with another root"
            if theirs.size == ours.size
            else f"a tree of {theirs.size} entries that is not consistent with ours of "
            f"{ours.size} (the log's proof fails)"
        )
        return Finding(
            kind=FindingKind.INTEGRITY_FAILURE,
            severity=Severity.CRITICAL,
            dedup_key=dedup_key(
                FindingKind.INTEGRITY_FAILURE,
                IntegrityType.SPLIT_VIEW,
                self.name,
                theirs.size,
                theirs.root_hash.hex(),
            ),
            log=self.name,
            index=cursor,
            type=str(IntegrityType.SPLIT_VIEW),
            detail=(
                f"split view: the distributor {self.http.base_url} holds {how}, signed by the "
                f"log; the monitor holds the log at index {cursor} until a person resolves this"
            ),
        )
