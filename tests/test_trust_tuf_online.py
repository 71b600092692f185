"""Live TUF refresh against Sigstore's production repository (``-m online`` only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.trust.tuf import refresh_trust_root


@pytest.mark.online
def test_refresh_production_trust_root(tmp_path: Path) -> None:
    trust = refresh_trust_root(tmp_path)
    v1 = trust.log_by_url("https://rekor.sigstore.dev")
    assert v1 is not None
    assert v1.log_id.hex().startswith("c0d23d6a")
    assert trust.v2_shards(), "the Rekor v2 signing config lists at least one shard"
    # a second refresh works from the cached metadata
    assert refresh_trust_root(tmp_path).logs
