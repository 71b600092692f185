"""C2SP tlog-checkpoint: the signed tree head of a transparency log.

Body layout: ``<origin>\\n<size>\\n<base64 root>\\n[extension lines\\n]*``. Rekor v1 signs with a
key name (its configured hostname, ``rekor.sigstore.dev``) that differs from the origin
(``<hostname> - <treeID>``) and is not bound to the key; Rekor v2 uses the origin as key name.
Old v1 checkpoints carry a ``Timestamp:`` extension line.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from monitor.core.encoding import b64encode
from monitor.core.errors import NoteError, ProofError
from monitor.tlog.merkle import HASH_SIZE, verify_consistency
from monitor.tlog.note import NoteVerifier, SignedNote, decode_base64, verified_signatures

_FORMAT = "checkpoint-format"
_SIZE_RE = re.compile(r"0|[1-9][0-9]{0,18}")
MAX_TREE_SIZE = (1 << 63) - 1
# origins are short names (a host, a URL path, a pod name); the bound keeps a hostile log's
# origin indexable where checkpoints are stored per origin
MAX_ORIGIN_BYTES = 1024


@dataclass(frozen=True)
class Checkpoint:
    """The body of a checkpoint: who, how big, which root."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        """Parse the signed text of a checkpoint (the note text, ending in a newline)."""
        if not text.endswith("\n"):
            raise NoteError(_FORMAT, "checkpoint text does not end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError(_FORMAT, f"checkpoint has {len(lines)} lines, needs at least 3")
        origin, size_text, root_text, *extensions = lines
        if not origin:
            raise NoteError(_FORMAT, "checkpoint origin is empty")
        if len(origin.encode("utf-8")) > MAX_ORIGIN_BYTES:
            raise NoteError(_FORMAT, f"checkpoint origin is longer than {MAX_ORIGIN_BYTES} bytes")
        if not _SIZE_RE.fullmatch(size_text):
            raise NoteError(_FORMAT, f"checkpoint tree size {size_text[:40]!r} is not a decimal")
        size = int(size_text)
        if size > MAX_TREE_SIZE:
            raise NoteError(_FORMAT, "checkpoint tree size is out of range")
        root = decode_base64(root_text, "checkpoint root hash", _FORMAT)
        if len(root) != HASH_SIZE:
            raise NoteError(_FORMAT, f"checkpoint root hash is {len(root)} bytes, expected 32")
        if any(not e for e in extensions):
            raise NoteError(_FORMAT, "checkpoint has an empty extension line")
        return cls(origin=origin, size=size, root_hash=root, extensions=tuple(extensions))

    def to_text(self) -> str:
        lines = [self.origin, str(self.size), b64encode(self.root_hash)]
        return "\n".join([*lines, *self.extensions]) + "\n"


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint whose signature verified against a trusted key. ``raw`` is the whole note,
    kept as evidence; ``signers`` are the names on the signature lines that verified."""

    checkpoint: Checkpoint
    raw: str
    signers: tuple[str, ...]

    @property
    def origin(self) -> str:
        return self.checkpoint.origin

    @property
    def size(self) -> int:
        return self.checkpoint.size

    @property
    def root_hash(self) -> bytes:
        return self.checkpoint.root_hash


def open_checkpoint(raw: str | bytes, verifiers: Sequence[NoteVerifier]) -> SignedCheckpoint:
    """Parse a signed checkpoint and verify it; only then is its content returned."""
    note = SignedNote.from_text(raw)
    verified = verified_signatures(note, verifiers)
    checkpoint = Checkpoint.from_text(note.text)
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    return SignedCheckpoint(checkpoint, text, tuple(sig.name for _, sig in verified))


_V1_ORIGIN = re.compile(r"(.+) - ([0-9]{1,20})")


def v1_tree_id(origin: str) -> int | None:
    """The tree ID in a Rekor v1 checkpoint origin, or None if it is not of that form."""
    m = _V1_ORIGIN.fullmatch(origin)
    return int(m.group(2)) if m else None


ProofOf = Callable[[int, SignedCheckpoint], Awaitable[list[bytes]]]


async def consistency_failure(
    a: SignedCheckpoint, b: SignedCheckpoint, proof_of: ProofOf
) -> list[bytes] | None:
    """Two checkpoints of one tree proven consistent, whichever is the larger: None when
    they are, else the proof that failed (empty for one size with two roots).
    ``proof_of(size, larger)`` gets the log's proof that ``larger`` extends its tree of
    ``size`` (0 < size < larger.size); a log that cannot serve it raises."""
    if a.size == b.size:
        return None if a.root_hash == b.root_hash else []
    small, large = sorted((a, b), key=lambda c: c.size)
    if small.size == 0:
        return None  # the empty tree is a prefix of every tree
    proof = await proof_of(small.size, large)
    try:
        verify_consistency(small.size, large.size, proof, small.root_hash, large.root_hash)
    except ProofError:
        return proof
    return None
