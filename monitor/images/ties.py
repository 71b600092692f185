"""Tying a signature's log entry to the log the monitor verifies.

A signature names an entry (log ID, global index, canonicalized body). ``LogTies.tie`` finds
the log by its ID (the trust root's key, the configured log's name), reads the entry at that
index from the log with the inclusion proof the log serves beside it, and proves it: the
checkpoint verified with the log's key and bound to the shard that holds the index, the
inclusion proof of the served body against it, and that checkpoint consistent with the
monitor's own latest verified checkpoint of the log (``ours``) through the log's proof API,
in whichever direction. Then the bodies are compared: the same is ``proven`` (and the
inclusion proof is handed back, so that a legacy ``.sig``/``.att``, which carries only the
log's promise, can be verified completely); another is ``mismatch``: the registry and the log
disagree.

A Rekor v2 entry (``tiev2.py``) is read from its entry bundle and proven from hash tiles,
in the monitor's own verified tree when it holds the index, else in the log's latest,
proven consistent with the monitor's.
"""

from __future__ import annotations

import hashlib
import inspect
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aiohttp

from monitor.config.models import LogSettings
from monitor.core.errors import MonitorError, VerificationError
from monitor.core.escape import one_line
from monitor.core.metrics import ClientMetrics
from monitor.images.reports import LogTie, TieStatus
from monitor.images.tiev2 import TieMismatch, TieUnavailable, prove_v2
from monitor.imagesig import InclusionProof, LogEntryRef
from monitor.logclient.http import HttpPolicy, LogHttp
from monitor.logclient.policy import policy_for
from monitor.logclient.v1 import LogInfo, RekorV1Client, V1Entry
from monitor.logclient.v2 import RekorV2Client
from monitor.tlog.checkpoint import SignedCheckpoint, consistency_failure
from monitor.tlog.merkle import leaf_hash, verify_inclusion
from monitor.tlog.promise import promise_verifies
from monitor.trust import TransparencyLog, TrustRoot

# the monitor's latest verified checkpoint of a configured log (by name), if any
Ours = Callable[[str], "SignedCheckpoint | Awaitable[SignedCheckpoint | None] | None"]
INFO_TTL = 30.0  # seconds a Rekor v1 log's shards are reused for
# a log of the trust root that no configured log reads is read with this
UNCONFIGURED_POLICY = HttpPolicy(requests_per_second=4.0, timeout_seconds=20.0, max_attempts=3)


@dataclass(frozen=True)
class TieResult:
    tie: LogTie
    proof: InclusionProof | None  # the proven entry's inclusion proof (``proven`` only)


class LogTies:
    """Ties entries to the logs of ``trust``: those ``logs`` configures are read under their
    HTTP policy and named as configured; others of the trust root under a cautious default
    (their ties carry no log name). ``ours`` gives the monitor's latest verified checkpoint
    of a configured log (a plain or an async callable); without one a tie rests on the
    log's inclusion proof only, and says so."""

    def __init__(
        self,
        trust: TrustRoot,
        logs: Sequence[LogSettings],
        session: aiohttp.ClientSession,
        *,
        metrics: ClientMetrics,
        ours: Ours | None = None,
    ) -> None:
        self._trust = trust
        self._logs = tuple(logs)
        self._session = session
        self._metrics = metrics
        self._ours = ours
        self._clients: dict[bytes, tuple[str | None, LogHttp]] = {}
        self._v1: dict[bytes, RekorV1Client] = {}
        self._infos: dict[bytes, tuple[float, LogInfo]] = {}

    def promised(self, entry: LogEntryRef) -> bool:
        """Whether the log signed a promise of ``entry`` (its SignedEntryTimestamp over the
        body, time, log ID and index verifies with the trust root's key for the log)."""
        log = self._trust.log_by_id(entry.log_id)
        if log is None or entry.promise is None or entry.integrated_time is None:
            return False
        return promise_verifies(
            log.public_key,
            entry.promise,
            body=entry.body,
            integrated_time=entry.integrated_time,
            log_id=entry.log_id,
            index=entry.log_index,
        )

    async def tie(self, entry: LogEntryRef) -> TieResult:
        """The entry tied; never raises for what a log or the entry holds."""
        body_hex = entry.body_sha256
        log = self._trust.log_by_id(entry.log_id)
        if log is None:
            detail = f"no log of the trust root has the ID {entry.log_id.hex()[:64]}"
            return TieResult(LogTie(None, entry.log_index, body_hex, "unknown_log", detail), None)
        name, http = self._http(log)
        try:
            if log.api_version == 2:
                client2 = RekorV2Client(http, log)
                ours = await self._our_checkpoint(name) if name is not None else None
                detail, proof = await prove_v2(client2, entry, ours), None
            else:
                client = self._v1.setdefault(log.log_id, RekorV1Client(http, log))
                detail, proof = await self._prove(name, client, entry)
        except TieMismatch as e:
            tie = LogTie(name, entry.log_index, body_hex, "mismatch", e.detail, e.log_body)
            return TieResult(tie, None)
        except (TieUnavailable, MonitorError) as e:
            return TieResult(
                LogTie(name, entry.log_index, body_hex, "unavailable", one_line(e)), None
            )
        if name is None:
            detail += f" ({log.base_url}: a log of the trust root no configured log reads)"
        status: TieStatus = "proven"
        return TieResult(LogTie(name, entry.log_index, body_hex, status, detail, body_hex), proof)

    # --- reading and proving --------------------------------------------------------------

    async def _prove(
        self, name: str | None, client: RekorV1Client, entry: LogEntryRef
    ) -> tuple[str, InclusionProof]:
        index = entry.log_index
        info = await self._log_info(client, index)
        try:
            shard, local = info.to_local(index)
        except ValueError as e:
            raise TieUnavailable(str(e)) from None
        if local >= shard.size:
            # not a lie yet: a promise may come before the tree the log signed last (and a
            # withheld entry is the log pass's missing_entries finding)
            raise TieUnavailable(
                f"the log holds no entry {index} yet: its signed tree ends at "
                f"{shard.start + shard.size}"
            )
        served = await client.entry(index)
        if served is None:  # withheld: the daemon's own pass says so (missing_entries)
            raise TieUnavailable(f"the log did not serve entry {index} of its signed tree")
        checkpoint, proof = self._included(client, served, shard.tree_id, local)
        log_body = hashlib.sha256(served.body).hexdigest()
        if log_body != entry.body_sha256:
            raise TieMismatch(
                f"the log holds another body at {index}: sha256:{log_body} (proven in its "
                f"tree of {checkpoint.size}), the signature names sha256:{entry.body_sha256}",
                log_body,
            )
        detail = (
            f"in the log at {index} (tree {shard.tree_id}, index {local}), proven in that "
            f"tree's signed checkpoint of {checkpoint.size} entries"
        )
        detail += await self._consistent(name, client, shard.tree_id, checkpoint)
        return detail, proof

    async def _log_info(self, client: RekorV1Client, index: int) -> LogInfo:
        """The log's shards, read again after ``INFO_TTL`` or for an index past them (a
        scan ties many entries of one log)."""
        key = client.log.log_id
        cached = self._infos.get(key)
        if cached is not None and time.monotonic() - cached[0] < INFO_TTL:
            last = cached[1].shards()[-1]
            if index < last.start + last.size:
                return cached[1]
        info = await client.log_info()
        self._infos[key] = (time.monotonic(), info)
        return info

    def _included(
        self, client: RekorV1Client, served: V1Entry, tree_id: int, local: int
    ) -> tuple[SignedCheckpoint, InclusionProof]:
        """The served entry's inclusion proof verified against its checkpoint, itself
        verified with the log's key and naming the tree that holds the index."""
        p = served.inclusion
        if p is None:
            raise TieUnavailable(
                f"the log served entry {served.log_index} without an inclusion proof"
            )
        if p.index != local:
            raise TieUnavailable(
                f"the log's proof is for index {p.index} of tree {tree_id}, not {local}"
            )
        try:
            checkpoint = client.verify_checkpoint(p.checkpoint, tree_id)
            if (checkpoint.size, checkpoint.root_hash) != (p.tree_size, p.root_hash):
                raise TieUnavailable(
                    f"the inclusion proof's tree (size {p.tree_size}) is not its checkpoint's "
                    f"(size {checkpoint.size})"
                )
            verify_inclusion(local, p.tree_size, leaf_hash(served.body), p.hashes, p.root_hash)
        except VerificationError as e:
            raise TieUnavailable(f"the log's evidence does not verify: {e}") from None
        proof = InclusionProof(local, p.tree_size, p.root_hash, p.hashes, p.checkpoint)
        return checkpoint, proof

    async def _consistent(
        self, name: str | None, client: RekorV1Client, tree_id: int, theirs: SignedCheckpoint
    ) -> str:
        """How the log's checkpoint relates to ours: consistent (proven here), or why it
        could not be compared. A proof that fails is a mismatch: the log showed the monitor
        another tree."""
        ours = await self._our_checkpoint(name) if name is not None else None
        if ours is None:
            return "; no verified checkpoint of the monitor's to prove it consistent with"
        if ours.origin != theirs.origin:
            return f"; the monitor's checkpoint is of another tree ({ours.origin[:100]!r})"

        async def proof_of(size: int, larger: SignedCheckpoint) -> list[bytes]:
            return await client.consistency_proof(size, larger.size, tree_id)

        if await consistency_failure(ours, theirs, proof_of) is not None:
            raise TieMismatch(
                f"the log's tree of {theirs.size} that holds the entry is not consistent with "
                f"the monitor's verified tree of {ours.size}: the log's own proof fails",
                None,
            )
        return f", consistent with the monitor's verified tree of {ours.size}"

    async def _our_checkpoint(self, name: str) -> SignedCheckpoint | None:
        if self._ours is None:
            return None
        got = self._ours(name)
        if inspect.isawaitable(got):
            return await got
        return got

    # --- which log ------------------------------------------------------------------------

    def _http(self, log: TransparencyLog) -> tuple[str | None, LogHttp]:
        """The log's name and HTTP client (one per log, for its rate limit)."""
        found = self._clients.get(log.log_id)
        if found is not None:
            return found
        config = self._configured(log)
        name = None
        if config is not None:
            name = f"{config.name}@{_shard_label(log.key_name)}" if config.discover else config.name
        policy = policy_for(config) if config is not None else UNCONFIGURED_POLICY
        http = LogHttp(
            log.base_url,
            self._session,
            log=name or log.key_name,
            metrics=self._metrics,
            policy=policy,
        )
        self._clients[log.log_id] = (name, http)
        return name, http

    def _configured(self, log: TransparencyLog) -> LogSettings | None:
        """The configured log that reads ``log``: by URL, or a v2 log discovering shards."""
        api = "v2" if log.api_version == 2 else "v1"
        for cfg in self._logs:
            if cfg.api != api:
                continue
            if cfg.discover and log in self._trust.v2_shards():
                return cfg
            if cfg.url and self._trust.log_by_url(cfg.url) == log:
                return cfg
        return None


def _shard_label(key_name: str) -> str:
    """As the daemon names a discovered shard (``runner_name``)."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", key_name)
