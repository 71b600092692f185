"""Other vantage points: what distributors, witnesses and other monitors hold for a log,
compared with what the log showed this monitor. A log can show the monitor one consistent
tree and others another (a split view); no proof inside one monitor's view sees it, a second
view does.

After each pass of a log with vantage points configured (``witnesses.distributor``,
``witnesses.compare_with``), each one's latest checkpoint of the log is read:

- a distributor: ``/distributor/v0/logs/<log ID>/checkpoint.1`` (at least one cosignature);
- a witness's read endpoint: ``/witness/v0/logs/<log ID>/checkpoint``;
- another tlog-monitor: ``/api/v1/logs/<log>/checkpoint``, with its read token;

(the log ID is hex SHA-256 of ``o:`` and the origin). Its signature is verified with the log's
own key (for a Rekor v1 log: a checkpoint of the same tree), and it is proven consistent with
the monitor's latest verified checkpoint in whichever direction the sizes call for, with the
log's own proofs (tiles, or the v1 proof API). A proof that fails (or one size, two roots) is
a critical ``split_view`` integrity failure carrying both checkpoints; from then on the log
is held where the monitor's cursor stood, and no pass moves it until a person resolves the
finding. A vantage point that cannot be reached, a checkpoint the log did not sign, or a
proof the log cannot serve yet proves nothing either way: it is logged and tried again at
the next pass.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol
from urllib.parse import quote

from monitor.alerts.routing import Routing
from monitor.core.errors import (
    CheckpointError,
    LogResponseError,
    MonitorError,
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
from monitor.core.metrics import PREFIX, SizeAge, SizeAgeCollector
from monitor.daemon.source import LogSource, Tree
from monitor.logclient.http import LogHttp, Response
from monitor.storage import FindingQuery
from monitor.storage.logs_state import LogState
from monitor.storage.ports import HealthStore
from monitor.tlog.checkpoint import SignedCheckpoint, consistency_failure

__all__ = ["Peer", "VantageCollector", "VantageStore", "VantageView", "distributor_log_id"]

log = logging.getLogger("monitor.vantage")

MAX_CHECKPOINT_BYTES = 64 << 10  # a checkpoint with a hundred cosignatures takes ~10 KB


class VantageStore(HealthStore, Protocol):
    """The findings of a split view, and where the log stands."""

    async def log_state(self, name: str) -> LogState | None: ...


def distributor_log_id(origin: str) -> str:
    """How a distributor names a log: hex SHA-256 of ``o:`` and its origin."""
    return hashlib.sha256(f"o:{origin}".encode()).hexdigest()


PeerType = Literal["distributor", "witness", "monitor"]


@dataclass(frozen=True)
class Peer:
    """One other vantage point: what it is, where, and (another monitor) the log's name
    there and a read token."""

    type: PeerType
    http: LogHttp
    log: str | None = None
    token: str | None = field(default=None, repr=False)

    def path(self, origin: str, name: str) -> str:
        if self.type == "distributor":
            return f"distributor/v0/logs/{distributor_log_id(origin)}/checkpoint.1"
        if self.type == "witness":
            return f"witness/v0/logs/{distributor_log_id(origin)}/checkpoint"
        return f"api/v1/logs/{quote(self.log or name, safe='')}/checkpoint"

    async def get(self, origin: str, name: str) -> Response:
        auth = None if self.token is None else {"Authorization": f"Bearer {self.token}"}
        return await self.http.get(
            self.path(origin, name),
            accept="text/plain",
            max_bytes=MAX_CHECKPOINT_BYTES,
            headers=auth,
        )

    @property
    def label(self) -> str:
        return f"the {self.type} {self.http.base_url}"


@dataclass
class VantageView:
    """One log's comparison with other vantage points, and the hold a split view puts on it."""

    name: str  # the log's name in the store
    peers: Sequence[Peer]
    routing: Routing  # who hears of a split view
    hold: int | None = None  # the cursor the log is held at, while a split view is open
    # by peer URL: its latest checkpoint proven consistent with ours (size, unix time)
    agreed: dict[str, tuple[int, float]] = field(default_factory=dict)
    clock: Callable[[], float] = time.time
    started: float = field(default_factory=time.time)  # before any agreement: counted from here

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

    async def held(self, store: HealthStore) -> int | None:
        """The cursor the log is held at (None: not held), as the findings say now: read
        every time, since another replica may have found a split view while it led the
        log."""
        await self.load(store)
        return self.hold

    async def after_pass(self, source: LogSource, store: VantageStore) -> None:
        """Compare the log's latest verified checkpoint with each vantage point's; whatever
        goes wrong here proves nothing, and is only logged."""
        try:
            state = await store.log_state(self.name)
        except MonitorError as e:
            log.warning("cannot read the log's state: %s", e, extra={"fields": {"log": self.name}})
            return
        if state is None or state.verified_checkpoint is None:
            return
        try:
            ours = source.other_view(state.verified_checkpoint.encode())
        except MonitorError as e:
            log.warning(
                "our checkpoint does not verify: %s", e, extra={"fields": {"log": self.name}}
            )
            return

        async def compare(peer: Peer) -> None:
            try:
                await self.check(source, peer, ours.head, state.cursor, store)
            except MonitorError as e:
                log.warning(
                    "comparison with %s failed: %s",
                    peer.label,
                    e,
                    extra={"fields": {"log": self.name}},
                )

        # side by side: one slow vantage point costs a pass its own timeout, not theirs
        await asyncio.gather(*(compare(p) for p in self.peers))

    async def check(
        self,
        source: LogSource,
        peer: Peer,
        ours: SignedCheckpoint,
        cursor: int,
        store: HealthStore,
    ) -> Finding | None:
        """Compare ``peer``'s checkpoint with ``ours``; the split view found (stored, and
        the log held at ``cursor``), or None. (Whether the log is held is read before each
        pass, by ``held``.)"""
        theirs = await self._fetch(source, peer, ours)
        if theirs is None:
            return None
        try:
            proof = await self._proof(source, ours, theirs)
        except (TransientLogError, LogResponseError) as e:
            log.warning(
                "cannot compare with %s yet: %s",
                peer.label,
                e,
                extra={"fields": {"log": self.name, "theirs": theirs.head.size, "ours": ours.size}},
            )
            return None
        if proof is None:
            self.agreed[peer.http.base_url] = (theirs.head.size, self.clock())
            return None
        finding = self._split(peer, ours, theirs.head, proof, cursor)
        evidence = {
            "ours": ours.raw,
            "theirs": theirs.head.raw,
            "source": peer.http.base_url,
            "source_type": peer.type,
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
            extra={"fields": {"log": self.name, "theirs": theirs.head.size, "ours": ours.size}},
        )
        return finding

    async def _fetch(self, source: LogSource, peer: Peer, ours: SignedCheckpoint) -> Tree | None:
        fields = {"log": self.name, "peer": peer.http.base_url}
        try:
            resp = await peer.get(ours.origin, self.name)
        except MonitorError as e:
            log.warning("%s is unreachable: %s", peer.label, e, extra={"fields": fields})
            return None
        if resp.status == 404:
            return None  # it holds no checkpoint of the log (yet)
        if resp.status != 200:
            log.warning("%s answered %s", peer.label, resp.status, extra={"fields": fields})
            return None
        try:
            return source.other_view(resp.body, ours)
        except CheckpointError as e:
            # not the log's signature, or another tree: no view of this tree of the log
            log.warning(
                "%s served a checkpoint that does not verify: %s",
                peer.label,
                e,
                extra={"fields": fields},
            )
            return None

    async def _proof(
        self, source: LogSource, ours: SignedCheckpoint, theirs: Tree
    ) -> list[bytes] | None:
        """The log's proof between the two checkpoints when it fails (a split view), or None
        when they are consistent."""

        async def proof_of(size: int, larger: SignedCheckpoint) -> list[bytes]:
            return await source.consistency_proof(Tree(theirs.tree_id, 0, larger, False), size)

        return await consistency_failure(ours, theirs.head, proof_of)

    def _split(
        self,
        peer: Peer,
        ours: SignedCheckpoint,
        theirs: SignedCheckpoint,
        proof: list[bytes],
        cursor: int,
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
                f"split view: {peer.label} holds {how}, signed by the "
                f"log; the monitor holds the log at index {cursor} until a person resolves this"
            ),
        )


class VantageCollector(SizeAgeCollector):
    """Each vantage point's latest agreement with the monitor, read at scrape time: a
    comparison that stopped working (a peer down, a token refused) shows as a growing age,
    not only in the logs."""

    LABELS = ("log", "peer")
    SIZE = (
        f"{PREFIX}_vantage_consistent_size",
        "The size of this vantage point's latest checkpoint of the log that was proven "
        "consistent with the monitor's.",
    )
    AGE = (
        f"{PREFIX}_vantage_consistent_age_seconds",
        "Seconds since this vantage point's checkpoint of the log was last proven "
        "consistent with the monitor's (or since the monitor started, if never).",
    )

    def __init__(
        self, views: Callable[[], Iterable[VantageView]], clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(clock)
        self.views = views

    def points(self, now: float) -> Iterable[SizeAge]:
        for view in list(self.views()):
            for peer in sorted({p.http.base_url for p in view.peers}):
                agreed, at = view.agreed.get(peer, (None, view.started))
                # a vantage point that never agreed ages from the start: never silent
                yield (view.name, peer), agreed, now - at
