"""Rekor v1 REST client (REKOR-FORMATS.md §1).

Tree heads leave this module only after their signatures verified; batch retrieval maps
results back by index and re-asks for anything the log left out, never skipping it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass

from monitor.checkpoint import SignedCheckpoint, open_checkpoint
from monitor.errors import (
    CheckpointError,
    LogResponseError,
    MalformedInputError,
    MissingEntriesError,
    VerificationError,
)
from monitor.jsonread import JsonReader
from monitor.logclient.http import LogHttp
from monitor.trust import TransparencyLog, v1_tree_id

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
class InclusionProof:
    """``verification.inclusionProof`` as served: unverified until checked against its
    checkpoint (whose signature is not checked here either)."""

    index: int  # tree-local
    tree_size: int
    root_hash: bytes
    hashes: tuple[bytes, ...]
    checkpoint: str


@dataclass(frozen=True)
class V1Entry:
    log_index: int  # global
    body: bytes
    integrated_time: int
    log_id: bytes
    entry_id: str
    attestation: bytes | None
    inclusion: InclusionProof | None = None


class RekorV1Client:
    def __init__(self, http: LogHttp, log: TransparencyLog) -> None:
        self.http = http
        self.log = log
        self._verifiers = (log.v1_note_verifier(),)

    async def log_info(self) -> LogInfo:
        """``GET /api/v1/log``, every tree head verified (signature, origin, stated size/root)."""
        doc = await self._get_json("api/v1/log")
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
        return cp

    async def consistency_proof(self, first: int, last: int, tree_id: int) -> list[bytes]:
        """``GET /api/v1/log/proof``: hashes proving tree ``last`` extends tree ``first``."""
        params = {"firstSize": str(first), "lastSize": str(last), "treeID": str(tree_id)}
        doc = await self._get_json("api/v1/log/proof", params)
        try:
            top = JsonReader(doc, "ConsistencyProof")
            return [h.hex() for h in top.get("hashes").items()]
        except MalformedInputError as e:
            raise LogResponseError(f"{self.log.key_name}: malformed proof: {e}") from None

    async def entries(self, indexes: Sequence[int]) -> dict[int, V1Entry]:
        """Entries by global index: batches of 10, results mapped by index, the missing ones
        asked again one by one; raises ``MissingEntriesError`` if any stays missing."""
        wanted = sorted(set(indexes))
        batches = [wanted[i : i + BATCH_SIZE] for i in range(0, len(wanted), BATCH_SIZE)]
        found: dict[int, V1Entry] = {}
        for result in await asyncio.gather(*(self._retrieve(b) for b in batches)):
            found.update(result)
        for round_ in range(MISSING_ROUNDS):
            missing = [i for i in wanted if i not in found]
            if not missing:
                break
            if round_:
                await asyncio.sleep(0.5 * round_)
            for entry in await asyncio.gather(*(self._one(i) for i in missing)):
                if entry is not None:
                    found[entry.log_index] = entry
        missing = [i for i in wanted if i not in found]
        if missing:
            raise MissingEntriesError(missing)
        return found

    async def _retrieve(self, batch: list[int]) -> dict[int, V1Entry]:
        resp = await self.http.post_json("api/v1/log/entries/retrieve", {"logIndexes": batch})
        doc = self._decode(resp.body, "retrieve")
        try:
            items = JsonReader(doc, "retrieve").items()
            entries = [e for item in items for e in _parse_entries(item)]
        except MalformedInputError as err:
            raise LogResponseError(f"{self.log.key_name}: malformed entries: {err}") from None
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
        resp = await self.http.get("api/v1/log/entries", params={"logIndex": str(index)})
        if resp.status == 404:
            return None
        try:
            entries = _parse_entries(JsonReader(self._decode(resp.body, "entry"), "entry"))
        except MalformedInputError as e:
            raise LogResponseError(f"{self.log.key_name}: malformed entry: {e}") from None
        if len(entries) != 1 or entries[0].log_index != index:
            raise LogResponseError(f"{self.log.key_name}: asked for entry {index}, got another")
        return entries[0]

    async def _get_json(self, path: str, params: dict[str, str] | None = None) -> object:
        resp = await self.http.get(path, params=params, accept="application/json")
        if resp.status == 404:
            raise LogResponseError(f"{self.log.key_name}: {path} not found", 404)
        return self._decode(resp.body, path)

    def _decode(self, body: bytes, what: str) -> object:
        try:
            return json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise LogResponseError(f"{self.log.key_name}: {what} response is not JSON") from None


def _parse_entries(item: JsonReader) -> list[V1Entry]:
    """A LogEntry: an object keyed by entry ID (normally exactly one)."""
    out = []
    for key in item.obj():
        e = item.get(key)
        att = e.opt("attestation")
        data = att.opt("data") if att else None
        verification = e.opt("verification")
        proof = verification.opt("inclusionProof") if verification else None
        out.append(
            V1Entry(
                log_index=e.get("logIndex").int(),
                body=e.get("body").b64(),
                integrated_time=e.get("integratedTime").int(),
                log_id=e.get("logID").hex(),
                entry_id=key,
                attestation=data.b64() if data else None,
                inclusion=_inclusion(proof) if proof else None,
            )
        )
    return out


def _inclusion(r: JsonReader) -> InclusionProof:
    return InclusionProof(
        index=r.get("logIndex").int(),
        tree_size=r.get("treeSize").int(),
        root_hash=r.get("rootHash").hex(),
        hashes=tuple(h.hex() for h in r.get("hashes").items()),
        checkpoint=r.get("checkpoint").str(),
    )
