"""Parsing and matching a chunk of proven entries into what a batch keeps: the records that
matched, the findings, malformed entries and index rows.

It runs on the event loop's thread. Measured on this 2-core machine, handing chunks to a
worker process (spawned; pickled there and back) did not pay off: the worker became the
bottleneck (~150 us an entry with the trip, against ~100 in place) while the event loop sat
mostly idle. Slicing the parse so the previous chunk's transaction could run in between did
not pay off either (the database work needs this thread too); both were measured and left
out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from monitor.entries.parse import parse_entry, with_chain_status
from monitor.entries.record import MalformedEntry, ParseResult, SigningRecord
from monitor.findings import Finding
from monitor.rules.engine import RuleEngine, malformed_finding
from monitor.storage.batch import IndexRow
from monitor.trust import CertificateAuthority

__all__ = ["Chunk", "Parsed", "parse_chunk"]


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


def parse_chunk(chunk: Chunk, engine: RuleEngine, cas: Sequence[CertificateAuthority]) -> Parsed:
    records: list[SigningRecord] = []
    findings: list[Finding] = []
    malformed: list[MalformedEntry] = []
    index_rows: list[IndexRow] = []
    kinds: dict[str, int] = {}

    def check_chain(r: SigningRecord) -> ParseResult:
        return with_chain_status(r, cas)

    for index, body, integrated_time, attestation in chunk.entries:
        result = parse_entry(
            body,
            log=chunk.log,
            index=index,
            integrated_time=integrated_time,
            attestation=attestation,
        )
        if isinstance(result, MalformedEntry):
            malformed.append(result)
            findings.append(malformed_finding(result))
            continue
        kinds[result.kind] = kinds.get(result.kind, 0) + 1
        if chunk.index_all:
            index_rows.append(IndexRow.from_record(result, chunk.seen))
        found = engine.evaluate(result, check_chain)
        if found:
            records.append(result)
            findings.extend(found)
    return Parsed(tuple(records), tuple(findings), tuple(malformed), tuple(index_rows), kinds)
