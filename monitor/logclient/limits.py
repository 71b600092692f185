"""What a log may send, at most: sizes the client reads, holds and believes.

A log is hostile input, and what it sends costs memory before anything of it can be checked.
Each request therefore has a cap derived from what the protocol allows for exactly what was
asked, and an answer over it is refused as it is read (``LogHttp``'s ``max_bytes``):

- a Rekor v1 entry (its body and the attestation stored with it) is at most
  ``max_entry_bytes`` (1 MiB by default: real entries are a few KB, an attestation at most
  the 100 KiB the public log stores), and its answer at most that in base64 plus
  ``ENTRY_ENVELOPE`` for the ID, proof, checkpoint and timestamp beside it; a batch answer
  at most that per entry asked;
- a Rekor v2 entry bundle at most 256 entries of 65,535 bytes (the uint16 length prefix), a
  hash tile exactly 32 bytes a hash;
- a tree head is refused when it claims more than ``MAX_LOG_SIZE`` entries, whatever its
  signature: no log holds 2^48 entries (the public Rekor v1 log, every tree together, holds
  about 2^32), and a log that signs such a size promises entries it cannot serve.

What is read is held within a memory budget per log (``monitor.logclient.budget``), 64 MiB by
default: 4 batch answers of Rekor v1 at their cap, or 4 entry bundles of Rekor v2 at theirs,
while honest answers (a few KB an entry) leave room for hundreds ahead.

JSON answers are also bounded in values (``monitor.logclient.decode``): a value costs about 60
bytes once decoded, so 28 MiB of ``[],`` would be half a gigabyte.
"""

from __future__ import annotations

from typing import Final

from monitor.tlog.merkle import HASH_SIZE
from monitor.tlog.note import MAX_NOTE_BYTES
from monitor.tlog.tiles import MAX_ENTRY_SIZE

MAX_LOG_SIZE: Final = 1 << 48
DEFAULT_MAX_ENTRY_BYTES: Final = 1 << 20
DEFAULT_MEMORY_BUDGET: Final = 64 << 20
# what a Rekor v1 answer carries beside an entry's body and attestation: the entry ID, log ID,
# times, a SignedEntryTimestamp, and an inclusion proof (at most 64 hashes) with its checkpoint
ENTRY_ENVELOPE: Final = 64 << 10
# JSON values of one Rekor v1 LogEntry (about 20 fields, up to 64 proof hashes), with room
VALUES_PER_ENTRY: Final = 160

CHECKPOINT_ANSWER: Final = MAX_NOTE_BYTES
PROOF_ANSWER: Final = 64 << 10  # a consistency proof: at most 64 hashes in hex
PROOF_VALUES: Final = 256
LOG_INFO_ANSWER: Final = 1 << 20  # four tree heads per shard; Rekor v1 has three shards
LOG_INFO_VALUES: Final = 16_384


def base64_length(n: int) -> int:
    """Characters of ``n`` bytes in padded base64."""
    return 4 * -(-n // 3)


def v1_entry_answer(max_entry_bytes: int) -> int:
    """The most one Rekor v1 LogEntry may take in JSON."""
    return base64_length(max_entry_bytes) + ENTRY_ENVELOPE


def v1_batch_answer(asked: int, max_entry_bytes: int) -> int:
    """The most a Rekor v1 answer holding ``asked`` entries may take."""
    return 2 + asked * (v1_entry_answer(max_entry_bytes) + 1)


def v1_batch_values(asked: int) -> int:
    return 16 + asked * VALUES_PER_ENTRY


def bundle_answer(width: int) -> int:
    """The most an entry bundle of ``width`` entries may take."""
    return width * (2 + MAX_ENTRY_SIZE)


def tile_answer(width: int) -> int:
    """The size of a hash tile of ``width`` hashes (exactly)."""
    return width * HASH_SIZE
