"""Passes within a log's memory budget, against the simulator over loopback: when what a chunk
holds reaches a quarter of the budget the chunk is cut short, proven where it was cut (Rekor v1:
the inclusion proof of its last entry; Rekor v2: a proof of that prefix from the tiles) and
stored; every entry is still proven and stored once, findings are the same, the budget is
never exceeded but by the piece a pass waits for, and it is all given back."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from monitor.daemon import PassContext, RekorV1Source, RekorV2Source, catch_up
from monitor.logclient.v1 import RekorV1Client
from monitor.logclient.v2 import RekorV2Client
from monitor.storage.store import Store
from tests.simlog import FAST, harness, run
from tests.test_daemon_pass import RULES

BUDGET = 1 << 20
MALLORY = {"email": "mallory@evil.example"}


@pytest.mark.slow
@pytest.mark.parametrize("api", ["v1", "v2"])
def test_a_small_budget_cuts_chunks_and_loses_nothing(tmp_path: Path, api: str) -> None:
    # an entry of the simulator is about 3 KB: a batch of ten may take 8 KB each
    policy = dataclasses.replace(FAST, memory_budget_bytes=BUDGET, max_entry_bytes=8192)

    async def body() -> None:
        async with harness(tmp_path, entries=300, shards=1, policy=policy) as h:
            await h.admin("plant", {"index": 1234, "identity": MALLORY})
            await h.admin("append", {"v1": 1700, "v2": 1700})
            store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}")
            batches: list[int] = []
            ctx = PassContext(
                api, store, RULES, h.trust.certificate_authorities, progress=batches.append
            )
            client: RekorV1Client | RekorV2Client
            try:
                if api == "v1":
                    client = h.v1
                    got = await catch_up(RekorV1Source(client), ctx, start=0, chunk=4096)
                else:
                    client = h.v2
                    got = await catch_up(RekorV2Source(client), ctx, start=0, chunk=4096)
                assert (got.entries, got.findings, got.cursor, got.failure) == (2000, 1, 2000, None)
                assert sum(batches) == 2000
                assert len(batches) > 4  # one chunk of 4096 would hold ~6 MB: cut short
                assert max(batches) < 4096
                state = await store.log_state(api)
                assert state is not None
                assert state.verified_size == 2000
            finally:
                await store.close()
            assert client.budget.used == 0
            # the limit; beyond it only the piece waited for, and the chunk being stored (a
            # quarter of the budget, and the piece that reached it)
            cap = client.batch_cap(10) if isinstance(client, RekorV1Client) else client.bundle_cap()
            assert client.budget.peak <= BUDGET + BUDGET // 4 + 2 * cap

    run(body)
