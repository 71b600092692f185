"""Rekor v1 REST client (REKOR-FORMATS.md §1).

Tree heads leave this module only after their signatures verified, and only for sizes a log can
hold (``MAX_LOG_SIZE``); batch retrieval maps results back by index and re-asks for anything the
log left out, never skipping it. Every answer is bounded before it is decoded: its size by what
was asked (``monitor.logclient.limits``), its JSON values likewise, its entries in number and
in bytes (``max_entry_bytes``); anything beyond is a malformed answer (``LogResponseError``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from monitor.core.errors import (
    CheckpointError,
    LogResponseError,
    MalformedInputError,
    MissingEntriesError,
    VerificationError,
)
from monitor.core.jsonread import JsonReader
from monitor.logclient.budget import ByteBudget
from monitor.logclient.decode import LARGE, decode_json
from monitor.logclient.http import LogHttp
from monitor.logclient.limits import (
    LOG_INFO_ANSWER,
    LOG_INFO_VALUES,
    MAX_LOG_SIZE,
    PROOF_ANSWER,
    PROOF_VALUES,
    base64_length,
    v1_batch_answer,
    v1_batch_values,
    v1_entry_answer,
)
from monitor.logclient.owed import Owed
from monitor.tlog.checkpoint import SignedCheckpoint, open_checkpoint, v1_tree_id
from monitor.tlog.merkle import InclusionProof
from monitor.trust import TransparencyLog

BATCH_SIZE = 10  # the server rejects more with 422
MISSING_ROUNDS = 3


@dataclass(frozen=True)
class TreeHead:
    """A verified tree head of one Rekor v1 tree (shard)."""

    tree_id: int
    size: int
    root_hash: bytes
    checkpoint: SignedCheckpoint


@dataclass(frozen=True)
class Shard:
    tree_id: int
    start: int  # global index of the tree's first entry
    size: int  # final size of an inactive tree; the verified size of the active one
    active: bool


@dataclass(frozen=True)
class LogInfo:
    active: TreeHead
    inactive: tuple[TreeHead, ...]  # oldest first, as the server lists them

    def shards(self) -> tuple[Shard, ...]:
        out = []
        start = 0
        for th in self.inactive:
            out.append(Shard(th.tree_id, start, th.size, active=False))
            start += th.size
        out.append(Shard(self.active.tree_id, start, self.active.size, active=True))
        return tuple(out)

    def to_local(self, global_index: int) -> tuple[Shard, int]:
        """Which tree holds a global index, and its index there."""
        for shard in self.shards():
            if global_index < shard.start + shard.size or shard.active:
                if global_index < shard.start:
                    break
                return shard, global_index - shard.start
        raise ValueError(f"global index {global_index} is before every shard")


@dataclass(frozen=True)
class V1Entry:
    log_index: int  # global
    body: bytes
    integrated_time: int
    log_id: bytes
    entry_id: str
    attestation: bytes | None
    inclusion: InclusionProof | None = None

    @property
    def held(self) -> int:
        """About the bytes this entry holds in memory (for the log's budget)."""
        proof = self.inclusion
        extra = 0 if proof is None else len(proof.checkpoint) + 80 * len(proof.hashes)
        return len(self.body) + len(self.attestation or b"") + extra + 600


class RekorV1Client:
    def __init__(self, http: LogHttp, log: TransparencyLog) -> None:
        self.http = http
        self.log = log
        self._verifiers = (log.v1_note_verifier(),)
        self.max_entry_bytes = http.policy.max_entry_bytes
        self.budget = ByteBudget(http.policy.memory_budget_bytes)  # passes fetch within it
        self.owed = Owed()  # entries of signed trees the log has not served, and since when
        self.missing_after = http.policy.missing_after_seconds  # then they are withheld

    def batch_cap(self, asked: int) -> int:
        """The most an answer of ``asked`` entries may take (the budget a batch takes)."""
        return v1_batch_answer(asked, self.max_entry_bytes)

    async def log_info(self) -> LogInfo:
        """``GET /api/v1/log``, every tree head verified (signature, origin, stated size/root,
        a size a log can hold)."""
        resp = await self.http.get(
            "api/v1/log", accept="application/json", max_bytes=LOG_INFO_ANSWER
        )
        if resp.status == 404:
            raise LogResponseError(f"{self.log.key_name}: api/v1/log not found", 404)
        doc = await decode_json(resp.body, LOG_INFO_VALUES, f"{self.log.key_name}: LogInfo")
        try:
            top = JsonReader(doc, "LogInfo")
            active = self._tree_head(top)
            shards = top.opt("inactiveShards")
            inactive = tuple(self._tree_head(s) for s in shards.items()) if shards else ()
        except MalformedInputError as e:
            raise LogResponseError(f"{self.log.key_name}: malformed LogInfo: {e}") from None
        return LogInfo(active, inactive)

    def _tree_head(self, r: JsonReader) -> TreeHead:
        tree_id_text = r.get("treeID").str()
        if not tree_id_text.isdigit():
            raise r.get("treeID").fail("not a decimal tree ID")
        tree_id = int(tree_id_text)
        size = r.get("treeSize").int()
        root = r.get("rootHash").hex()
        raw = r.get("signedTreeHead").str()
        cp = self.verify_checkpoint(raw, tree_id)
        if cp.size != size or cp.root_hash != root:
            raise CheckpointError(
                "checkpoint-agreement",
                f"tree {tree_id}: signed tree head says size {cp.size} root "
                f"{cp.root_hash.hex()}, LogInfo says size {size} root {root.hex()}",
                raw,
            )
        return TreeHead(tree_id, size, root, cp)

    def verify_checkpoint(self, raw: str, tree_id: int) -> SignedCheckpoint:
        """A signed tree head of tree ``tree_id`` of this log (from LogInfo or an inclusion
        proof); ``CheckpointError`` if its signature or origin is wrong.

        The log's key (found by its key hint) must have signed it and the origin must name
        ``tree_id``; the hostname in the origin and on the signature line is not bound (Rekor
        v1 signs under its configured hostname, which a restarted pod may change)."""
        try:
            cp = open_checkpoint(raw, self._verifiers)
        except VerificationError as e:
            raise CheckpointError(
                e.check, f"{self.log.key_name}: tree {tree_id}: {e.message}", raw
            ) from None
        if v1_tree_id(cp.origin) != tree_id:
            raise CheckpointError(
                "checkpoint-origin", f"tree head origin {cp.origin!r} is not tree {tree_id}", raw
            )
        if cp.size > MAX_LOG_SIZE:
            raise CheckpointError(
                "checkpoint-size",
                f"{self.log.key_name}: tree {tree_id}: the log signed a tree of {cp.size} "
                f"entries, more than the {MAX_LOG_SIZE} (2^48) any log can serve",
                raw,
            )
        return cp

    async def consistency_proof(self, first: int, last: int, tree_id: int) -> list[bytes]:
        """``GET /api/v1/log/proof``: hashes proving tree ``last`` extends tree ``first``."""
        params = {"firstSize": str(first), "lastSize": str(last), "treeID": str(tree_id)}
        resp = await self.http.get(
            "api/v1/log/proof", params=params, accept="application/json", max_bytes=PROOF_ANSWER
        )
        if resp.status == 404:
            raise LogResponseError(f"{self.log.key_name}: api/v1/log/proof not found", 404)
        doc = await decode_json(resp.body, PROOF_VALUES, f"{self.log.key_name}: consistency proof")
        try:
            top = JsonReader(doc, "ConsistencyProof")
            return [h.hex() for h in top.get("hashes").items()]
        except MalformedInputError as e:
            raise LogResponseError(f"{self.log.key_name}: malformed proof: {e}") from None

    async def entries(self, indexes: Iterable[int]) -> dict[int, V1Entry]:
        """Entries by global index, every batch asked at once (for tools and tests: a pass
        asks ``batch`` by batch, within the log's budget); the missing ones asked again one
        by one; raises ``MissingEntriesError`` if any stays missing."""
        wanted = sorted(set(indexes))
        batches = [wanted[i : i + BATCH_SIZE] for i in range(0, len(wanted), BATCH_SIZE)]
        found: dict[int, V1Entry] = {}
        for result in await asyncio.gather(*(self._retrieve(b) for b in batches)):
            found.update(result)
        await self._ask_missing(wanted, found)
        return found

    async def batch(self, indexes: Sequence[int]) -> list[V1Entry]:
        """The entries at ``indexes`` (at most ``BATCH_SIZE``, distinct), in that order: one
        retrieve, then what it left out asked one by one; ``MissingEntriesError`` if any
        stays missing."""
        found = await self._retrieve(list(indexes))
        await self._ask_missing(indexes, found)
        return [found[i] for i in indexes]

    async def _ask_missing(self, wanted: Sequence[int], found: dict[int, V1Entry]) -> None:
        for round_ in range(MISSING_ROUNDS):
            missing = [i for i in wanted if i not in found]
            if not missing:
                return
            if round_:
                await asyncio.sleep(0.5 * round_)
            for entry in await asyncio.gather(*(self._one(i) for i in missing)):
                if entry is not None:
                    found[entry.log_index] = entry
        missing = [i for i in wanted if i not in found]
        if missing:
            raise MissingEntriesError(missing)

    async def _retrieve(self, batch: list[int]) -> dict[int, V1Entry]:
        if len(batch) > BATCH_SIZE:
            raise ValueError(f"a batch asks for at most {BATCH_SIZE} entries, not {len(batch)}")
        resp = await self.http.post_json(
            "api/v1/log/entries/retrieve",
            {"logIndexes": batch},
            max_bytes=self.batch_cap(len(batch)),
        )
        what = f"{self.log.key_name}: retrieve of {len(batch)} entries"
        doc = await decode_json(resp.body, v1_batch_values(len(batch)), what)
        large = len(resp.body) > LARGE
        entries: list[V1Entry] = []
        try:
            items = JsonReader(doc, "retrieve").items()
            if len(items) > len(batch):
                raise LogResponseError(f"{what}: {len(items)} entries answered")
            for item in items:
                if large:  # each entry decodes its base64: a few ms a megabyte
                    await asyncio.sleep(0)
                entries += _parse_entries(item, self.max_entry_bytes)
        except MalformedInputError as err:
            raise LogResponseError(f"{self.log.key_name}: malformed entries: {err}") from None
        if len(entries) > len(batch):
            raise LogResponseError(f"{what}: {len(entries)} entries answered")
        asked = set(batch)
        out: dict[int, V1Entry] = {}
        for entry in entries:
            if entry.log_index not in asked:
                raise LogResponseError(
                    f"{self.log.key_name}: retrieve returned index {entry.log_index}, not asked for"
                )
            out[entry.log_index] = entry
        return out

    async def entry(self, index: int) -> V1Entry | None:
        """``GET /api/v1/log/entries?logIndex=``: the entry at a global index, with the
        inclusion proof and checkpoint the log serves with it (unverified); None if the log
        has no entry there."""
        return await self._one(index)

    async def _one(self, index: int) -> V1Entry | None:
        resp = await self.http.get(
            "api/v1/log/entries",
            params={"logIndex": str(index)},
            max_bytes=v1_entry_answer(self.max_entry_bytes),
        )
        if resp.status == 404:
            return None
        what = f"{self.log.key_name}: entry {index}"
        doc = await decode_json(resp.body, v1_batch_values(1), what)
        try:
            entries = _parse_entries(JsonReader(doc, "entry"), self.max_entry_bytes)
        except MalformedInputError as e:
            raise LogResponseError(f"{self.log.key_name}: malformed entry: {e}") from None
        if len(entries) != 1 or entries[0].log_index != index:
            raise LogResponseError(f"{self.log.key_name}: asked for entry {index}, got another")
        return entries[0]


def _parse_entries(item: JsonReader, max_entry_bytes: int) -> list[V1Entry]:
    """A LogEntry: an object keyed by entry ID (normally exactly one). Its body and
    attestation together are at most ``max_entry_bytes``, checked before they are decoded."""
    out = []
    for key in item.obj():
        e = item.get(key)
        att = e.opt("attestation")
        data = att.opt("data") if att else None
        body = e.get("body")
        # checked on the text first: an oversize entry is never decoded
        encoded = len(body.str()) + (len(data.str()) if data else 0)
        if encoded > base64_length(max_entry_bytes) + 4:
            raise body.fail(_oversize(f"{encoded} characters of base64", max_entry_bytes))
        raw, attestation = body.b64(), data.b64() if data else None
        if len(raw) + len(attestation or b"") > max_entry_bytes:
            size = len(raw) + len(attestation or b"")
            raise body.fail(_oversize(f"{size} bytes", max_entry_bytes))
        verification = e.opt("verification")
        proof = verification.opt("inclusionProof") if verification else None
        out.append(
            V1Entry(
                log_index=e.get("logIndex").int(),
                body=raw,
                integrated_time=e.get("integratedTime").int(),
                log_id=e.get("logID").hex(),
                entry_id=key,
                attestation=attestation,
                inclusion=_inclusion(proof) if proof else None,
            )
        )
    return out


def _oversize(size: str, limit: int) -> str:
    return (
        f"the entry (body and attestation) takes {size}, more than the {limit} bytes an entry "
        "may hold (logs[].max_entry_bytes)"
    )


def _inclusion(r: JsonReader) -> InclusionProof:
    return InclusionProof(
        index=r.get("logIndex").int(),
        tree_size=r.get("treeSize").int(),
        root_hash=r.get("rootHash").hex(),
        hashes=tuple(h.hex() for h in r.get("hashes").items()),
        checkpoint=r.get("checkpoint").str(),
    )
