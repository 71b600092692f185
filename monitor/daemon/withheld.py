"""A log that signs a tree and then does not serve it: when an outage becomes a lie.

Entries (Rekor v1) or tiles and bundles (Rekor v2) that a pass cannot get are an outage at
first: the pass fails and is retried, and the health findings say the log is unreachable. The
log's client keeps since when the data promised by a signed tree head has been owed
(``monitor.logclient.owed``); once that is ``missing_after`` (the log's setting, 10 minutes by
default) the pass stores a ``missing_entries`` integrity failure with the signed tree head as
evidence, and the log is no longer "unreachable": it answers, and does not serve what it
signed. Any entry stored clears the clock, and a later pass that proves new entries resolves
the finding. Entries a Rekor v1 log leaves out of its answers, even asked again, are that
finding at once (``not_served``); so is a tree head claiming more entries than a log can hold,
refused by the client (``checkpoint-size``).
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from datetime import UTC, datetime

from monitor.core.errors import MissingEntriesError, MonitorError
from monitor.core.findings import IntegrityType
from monitor.daemon.source import Tree
from monitor.logclient.owed import Owed
from monitor.tlog.checkpoint import SignedCheckpoint
from monitor.tlog.proofs import IntegrityFailure, VerifiedTree

__all__ = ["not_served", "withheld"]

ERROR_SHOWN = 300  # characters of the last error kept in the evidence


def withheld(
    owed: Owed,
    key: Hashable,
    missing_after: float,
    error: MonitorError,
    *,
    checkpoint: SignedCheckpoint,
    verified: VerifiedTree,
    tree_id: int | None = None,
    now: float | None = None,
) -> IntegrityFailure | None:
    """The ``missing_entries`` failure once the data ``checkpoint`` promises beyond
    ``verified`` has been owed for ``missing_after`` seconds (``error`` the last reason it
    could not be had), else None: an outage still, for the caller to raise as it was."""
    at = time.time() if now is None else now
    since = owed.failing(key, at)
    waited = at - since
    if waited < missing_after:
        return None
    first, end = verified.size, checkpoint.size
    evidence: dict[str, object] = {
        "index": first,
        "missing_first_index": first,
        "missing_end_index": end,
        "new": {
            "size": checkpoint.size,
            "root_hash": checkpoint.root_hash.hex(),
            "checkpoint": checkpoint.raw,
        },
        "verified_size": verified.size,
        "owed_since": datetime.fromtimestamp(since, UTC).isoformat(),
        "owed_seconds": round(waited),
        "last_error": str(error)[:ERROR_SHOWN],
    }
    if tree_id is not None:
        evidence["tree_id"] = str(tree_id)
    return IntegrityFailure(
        IntegrityType.MISSING_ENTRIES,
        f"{checkpoint.origin}: the log signed a tree of {checkpoint.size} entries and has not "
        f"served entries [{first}, {end}) of it for {waited:.0f}s (missing_after is "
        f"{missing_after:.0f}s); last error: {str(error)[:ERROR_SHOWN]}",
        evidence,
    )


def not_served(e: MissingEntriesError, state: VerifiedTree, tree: Tree) -> IntegrityFailure:
    """Entries of a signed tree that the log answered without, even when asked again (Rekor
    v1): withheld, as far as anyone can tell, at once. The first one is named (tree-local,
    like every index in evidence)."""
    first = min(e.indexes)
    head = tree.head
    return IntegrityFailure(
        IntegrityType.MISSING_ENTRIES,
        f"the log did not serve {len(e.indexes)} entries of its signed tree {tree.tree_id} "
        f"(size {head.size}), from global index {first}",
        {
            "tree_id": str(tree.tree_id),
            "index": first - tree.start,
            "missing_global_indexes": sorted(e.indexes)[:100],
            "missing_count": len(e.indexes),
            "new": {"size": head.size, "root_hash": head.root_hash.hex(), "checkpoint": head.raw},
            "verified_size": state.size,
        },
    )
