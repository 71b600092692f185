"""Parsing and matching a chunk of proven entries into what a batch keeps: the records that
matched, the findings, malformed entries and index rows.

In place (``parse_chunk``) it runs on the event loop's thread, a slice of about 10 ms at a
time (timed, not counted: entries of a few KB and of a megabyte cost very different times),
so that the previous batch's last rows and COMMIT (on SQLite's thread, without the GIL), the
fetches and the API's requests go on in between. On parse workers (``parsepool``) each worker
parses its part of a chunk at once (``parse_all``) and the parts are put back in order
(``merged``). Measured and left out: running the Fulcio chain checks on a worker thread (their
verification releases the GIL, but the handoffs cost more CPU than they saved).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from monitor.core.authority import CertificateAuthority
from monitor.core.findings import Finding
from monitor.entries.parse import parse_entry, with_chain_status
from monitor.entries.record import MalformedEntry, ParseResult, SigningRecord
from monitor.rules.engine import RuleEngine, malformed_finding
from monitor.storage.indexrow import IndexRow

__all__ = ["Chunk", "Parsed", "merged", "parse_all", "parse_chunk", "split"]


@dataclass(frozen=True)
class Chunk:
    """Proven entries of one log to parse: (index, body, integrated time, attestation)."""

    log: str
    entries: tuple[tuple[int, bytes, int | None, bytes | None], ...]
    index_all: bool
    seen: int  # unix seconds: the time of index rows of entries without an integrated time


@dataclass(frozen=True)
class Parsed:
    records: tuple[SigningRecord, ...]  # those that matched a rule
    findings: tuple[Finding, ...]
    malformed: tuple[MalformedEntry, ...]
    index_rows: tuple[IndexRow, ...]
    kinds: Mapping[str, int]  # entries parsed, by kind as served (malformed ones left out)


# seconds of parsing between two turns of the event loop: the batch being committed, fetches
# and API requests move on in between
SLICE_SECONDS = 0.01


class _Parser:
    """Parses a chunk's entries a slice at a time, gathering what a batch keeps."""

    def __init__(
        self, chunk: Chunk, engine: RuleEngine, cas: Sequence[CertificateAuthority]
    ) -> None:
        self.chunk = chunk
        self.engine = engine
        self.records: list[SigningRecord] = []
        self.findings: list[Finding] = []
        self.malformed: list[MalformedEntry] = []
        self.index_rows: list[IndexRow] = []
        self.kinds: dict[str, int] = {}

        def check_chain(r: SigningRecord) -> ParseResult:
            return with_chain_status(r, cas)

        self.check_chain = check_chain

    def parse(self, start: int, seconds: float) -> int:
        """Parse entries from ``start`` for about ``seconds`` (one at least); where it
        stopped."""
        chunk, kinds = self.chunk, self.kinds
        deadline = time.perf_counter() + seconds
        at = start
        while at < len(chunk.entries):
            if at > start and time.perf_counter() >= deadline:
                break
            index, body, integrated_time, attestation = chunk.entries[at]
            at += 1
            result = parse_entry(
                body,
                log=chunk.log,
                index=index,
                integrated_time=integrated_time,
                attestation=attestation,
            )
            if isinstance(result, MalformedEntry):
                self.malformed.append(result)
                self.findings.append(malformed_finding(result))
                continue
            kinds[result.kind] = kinds.get(result.kind, 0) + 1
            if chunk.index_all:
                self.index_rows.append(IndexRow.from_record(result, chunk.seen))
            found = self.engine.evaluate(result, self.check_chain)
            if found:
                self.records.append(result)
                self.findings.extend(found)
        return at

    def parsed(self) -> Parsed:
        return Parsed(
            tuple(self.records),
            tuple(self.findings),
            tuple(self.malformed),
            tuple(self.index_rows),
            self.kinds,
        )


def parse_all(chunk: Chunk, engine: RuleEngine, cas: Sequence[CertificateAuthority]) -> Parsed:
    """Parse and match every entry of ``chunk`` at once (on a parse worker: nothing else runs
    on its thread)."""
    p = _Parser(chunk, engine, cas)
    p.parse(0, float("inf"))
    return p.parsed()


def merged(parts: Sequence[Parsed]) -> Parsed:
    """The parts of a chunk, parsed apart, as one chunk's: in the order given."""
    if len(parts) == 1:
        return parts[0]
    kinds: dict[str, int] = {}
    for part in parts:
        for kind, n in part.kinds.items():
            kinds[kind] = kinds.get(kind, 0) + n
    return Parsed(
        tuple(r for part in parts for r in part.records),
        tuple(f for part in parts for f in part.findings),
        tuple(m for part in parts for m in part.malformed),
        tuple(row for part in parts for row in part.index_rows),
        kinds,
    )


def split(chunk: Chunk, parts: int) -> list[Chunk]:
    """``chunk`` in at most ``parts`` runs of consecutive entries, as even as can be."""
    n = len(chunk.entries)
    parts = max(1, min(parts, n))
    bounds = [n * i // parts for i in range(parts + 1)]
    return [
        Chunk(chunk.log, chunk.entries[a:b], chunk.index_all, chunk.seen)
        for a, b in itertools.pairwise(bounds)
    ]


async def parse_chunk(
    chunk: Chunk, engine: RuleEngine, cas: Sequence[CertificateAuthority]
) -> Parsed:
    """Parse and match every entry of ``chunk``, letting the event loop run every
    ``SLICE_SECONDS``."""
    p = _Parser(chunk, engine, cas)
    at = 0
    while at < len(chunk.entries):
        if at:
            await asyncio.sleep(0)
        at = p.parse(at, SLICE_SECONDS)
    return p.parsed()
