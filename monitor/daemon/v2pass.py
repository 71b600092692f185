"""One verified catch-up pass over one Rekor v2 log, into the store.

The pass reads the log's verified state from the store (or seeds one), checks that the log's
current signed checkpoint extends it, then walks [verified size, checkpoint size) in chunks.
Each chunk is proven before anything of it is kept: its end ``m`` is proven a prefix of the
checkpoint (``seed_v2``: O(log n) hash tiles), and the chunk's leaf hashes must extend the
verified compact range to exactly that prefix's root (``verify_extension``). Only then is the
chunk parsed, matched and stored, with the new compact range and cursor, in ONE batch.

When the log lies (``IntegrityFailure``), the pass stores one critical ``integrity_failure``
finding with the evidence and stops there: the cursor never moves past what was proven. For an
entry that does not hash into the tree, the chunk is narrowed down to the offending entry
(binary search over proven prefixes); the entries before it are proven and are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from monitor.checkpoint import SignedCheckpoint
from monitor.entries.parse import parse_entry, with_chain_status
from monitor.entries.record import MalformedEntry, ParseResult, SigningRecord
from monitor.findings import Finding, FindingKind, IntegrityType, dedup_key
from monitor.logclient.v2 import RekorV2Client
from monitor.merkle import CompactRange, leaf_hash
from monitor.pipeline.verify import (
    Anchor,
    IntegrityFailure,
    VerifiedTree,
    advance_checkpoint,
    check_extends,
    seed_v2,
    v2_consistency_proof,
    verify_extension,
)
from monitor.rules.engine import RuleEngine, malformed_finding
from monitor.rules.spec import Severity
from monitor.storage.batch import Batch
from monitor.storage.logs_state import CheckpointData, LogState
from monitor.storage.store import Store
from monitor.trust import CertificateAuthority

__all__ = ["PassResult", "Start", "catch_up_v2"]

Start = Literal["tip", "resume"] | int


@dataclass(frozen=True)
class PassResult:
    """What one pass did: entries proven and processed, findings newly stored (integrity
    findings included), the verified size it ended at, and the lie that stopped it."""

    entries: int
    findings: int
    verified_size: int
    failure: IntegrityFailure | None = None


async def catch_up_v2(
    name: str,
    client: RekorV2Client,
    store: Store,
    engine: RuleEngine,
    cas: Sequence[CertificateAuthority],
    *,
    start: Start = "resume",
    chunk: int = 1024,
) -> PassResult:
    """Catch the log ``name`` up to its current checkpoint, proving every entry stored.

    ``start`` applies only when the store holds no verified state for ``name`` (the stored
    state always wins: the cursor never moves back): ``"tip"`` and ``"resume"`` seed at the
    checkpoint's size (nothing is processed until the log grows), an ``int`` seeds at that
    index. A seed is stored at once, with no entries. ``TransientLogError`` and
    ``StorageError`` pass through; whatever was stored before them stays valid.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be positive, not {chunk}")
    if isinstance(start, int) and start < 0:
        raise ValueError(f"start index {start} is negative")
    run = _Pass(name, client, store, engine, cas)
    return await run.run(start, chunk)


class _Pass:
    def __init__(
        self,
        name: str,
        client: RekorV2Client,
        store: Store,
        engine: RuleEngine,
        cas: Sequence[CertificateAuthority],
    ) -> None:
        self.name = name
        self.client = client
        self.store = store
        self.engine = engine
        self.cas = cas
        self.entries = 0
        self.findings = 0

    def _result(self, state: VerifiedTree | None, failure: IntegrityFailure | None) -> PassResult:
        size = 0 if state is None else state.size
        return PassResult(self.entries, self.findings, size, failure)

    async def run(self, start: Start, chunk: int) -> PassResult:
        stored = await self.store.log_state(self.name)
        if stored is None:
            await self.store.register_log(self.name, "v2", self.client.log.base_url)
        cp = await self.client.checkpoint()
        state = _verified_tree(stored)
        if state is None:
            at = cp.size if start in ("tip", "resume") else int(start)
            if at > cp.size:
                raise ValueError(f"start index {at} is beyond the log's size {cp.size}")
            try:
                state = await seed_v2(self.client, cp, at)
            except IntegrityFailure as e:
                await self._fail(e, None, 0)
                return self._result(None, e)
            await self._store(Batch(self.name, state.size, _cp(cp), state.range))
        try:
            if stored is not None:  # first: a shrink or change is a lie whatever tiles say
                await self._extends_stored(stored, cp)
            proof = await v2_consistency_proof(self.client, state.size, cp)
            advance_checkpoint(state, cp, proof)
        except IntegrityFailure as e:
            await self._fail(e, state, state.size)
            return self._result(state, e)
        while state.size < cp.size:
            first = state.size
            end = min(cp.size, first - first % chunk + chunk)  # chunk-aligned: whole bundles
            bodies = await self.client.entries(first, end, cp.size)
            hashes = [leaf_hash(b) for b in bodies]
            good, failure = await self._prove(state, cp, hashes)
            if good.size > first:
                await self._commit(good, cp, bodies[: good.size - first])
            state = good
            if failure is not None:
                await self._fail(failure, state, state.size)
                return self._result(state, failure)
        return self._result(state, None)

    async def _extends_stored(self, stored: LogState, cp: SignedCheckpoint) -> None:
        """The stored checkpoint may be larger than the verified tree (a pass stopped inside
        its range): the new one must not shrink it, change it, or fork from it either."""
        size, root, raw = stored.verified_size, stored.verified_root, stored.verified_checkpoint
        if size is None or root is None or raw is None or size <= stored.cursor:
            return  # the verified tree is the stored checkpoint: advance_checkpoint judged it
        old = Anchor(
            size, root, {"size": size, "root_hash": root.hex(), "checkpoint": raw}, "signed"
        )
        proof = None
        if cp.size > size:
            proof = await v2_consistency_proof(self.client, size, cp)
        check_extends(cp.origin, old, cp, proof)

    async def _prove(
        self, state: VerifiedTree, cp: SignedCheckpoint, hashes: list[bytes]
    ) -> tuple[VerifiedTree, IntegrityFailure | None]:
        """The longest proven extension of ``state`` by ``hashes``, and the lie that stopped
        it. A chunk whose entries do not hash into the tree is narrowed down to its first bad
        entry, so that the failure names it and the entries before it are kept."""
        first = state.size
        end = first + len(hashes)
        try:
            target = await seed_v2(self.client, cp, end)
            return verify_extension(state, target, hashes, first), None
        except IntegrityFailure as e:
            if len(hashes) == 1 or e.type is not IntegrityType.ENTRY_NOT_IN_TREE:
                return state, e  # a single entry, or not a bad leaf: nothing to narrow
            whole = e
        # [first, lo) verifies (lo = first: trivially), [first, hi) does not
        lo, hi, good = first, end, state
        while hi - lo > 1:
            mid = (lo + hi) // 2
            try:
                target = await seed_v2(self.client, cp, mid)
                good_mid = verify_extension(good, target, hashes[lo - first : mid - first], lo)
            except IntegrityFailure:
                hi = mid
            else:
                lo, good = mid, good_mid
        try:
            target = await seed_v2(self.client, cp, hi)
            verify_extension(good, target, hashes[lo - first : hi - first], lo)
        except IntegrityFailure as e:
            return good, e  # the single offending entry, named in the evidence
        return state, whole  # the narrowing did not reproduce the lie: keep nothing of it

    async def _commit(self, state: VerifiedTree, cp: SignedCheckpoint, bodies: list[bytes]) -> None:
        """Parse, match and store the proven entries [state.size - len(bodies), state.size)."""
        first = state.size - len(bodies)
        records: list[SigningRecord] = []
        findings: list[Finding] = []
        malformed: list[MalformedEntry] = []
        cas = self.cas

        def check_chain(r: SigningRecord) -> ParseResult:
            return with_chain_status(r, cas)

        for offset, body in enumerate(bodies):
            result = parse_entry(body, log=self.name, index=first + offset)
            if isinstance(result, MalformedEntry):
                malformed.append(result)
                findings.append(malformed_finding(result))
                continue
            found = self.engine.evaluate(result, check_chain)
            if found:
                records.append(result)
                findings.extend(found)
        batch = Batch(
            self.name,
            state.size,
            _cp(cp),
            state.range,
            records=tuple(records),
            findings=tuple(findings),
            malformed=tuple(malformed),
        )
        await self._store(batch)
        self.entries += len(bodies)

    async def _fail(self, e: IntegrityFailure, state: VerifiedTree | None, cursor: int) -> None:
        """Store the integrity finding, moving nothing. Its key names the verified tree the
        log failed to extend and how: retries of the same lie find the same finding open."""
        kind = FindingKind.INTEGRITY_FAILURE
        size, root = (None, None) if state is None else (state.size, state.root_hash.hex())
        key = dedup_key(kind, e.type, self.name, size, root)
        index = e.evidence.get("index")
        finding = Finding(
            kind=kind,
            severity=Severity.CRITICAL,
            dedup_key=key,
            log=self.name,
            index=index if isinstance(index, int) else None,
            type=str(e.type),
            detail=e.message,
        )
        await self._store(Batch(self.name, cursor, findings=(finding,), evidence={key: e.evidence}))

    async def _store(self, batch: Batch) -> None:
        result = await self.store.store_batch(batch)
        self.findings += result.findings


def _cp(cp: SignedCheckpoint) -> CheckpointData:
    return CheckpointData.from_signed(cp)


def _verified_tree(stored: LogState | None) -> VerifiedTree | None:
    """The stored state as a ``VerifiedTree``; None if nothing was verified yet."""
    if stored is None or stored.verified_checkpoint is None:
        return None
    rng = stored.compact_range
    if stored.cursor != rng.size:
        raise ValueError(
            f"{stored.name}: cursor {stored.cursor} is not the compact range's size {rng.size}"
        )
    root = CompactRange.from_state(rng).root()
    return VerifiedTree(rng.size, root, stored.verified_checkpoint, rng)
