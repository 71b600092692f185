"""Fetch throughput from the simulator over loopback: Rekor v1 batch retrieval (unlimited and
within a 16 requests/second budget) and Rekor v2 entry bundles.

Run: .venv/bin/python -m bench.bench_fetch [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import aiohttp

from monitor.core.metrics import ClientMetrics
from monitor.logclient.http import HttpPolicy, LogHttp
from monitor.logclient.v1 import RekorV1Client
from monitor.logclient.v2 import RekorV2Client
from monitor.sim.run import SimConfig, start
from monitor.trust import load_trust_root

V1_BUDGET = 16.0  # requests a second the public Rekor v1 allows


async def _v1_rate(client: RekorV1Client, start_index: int, seconds: float) -> float:
    """Entries a second, fetching 10-entry batches with enough in flight to fill the budget."""
    t0 = time.perf_counter()
    n, index = 0, start_index
    while time.perf_counter() - t0 < seconds:
        got = await client.entries(range(index, index + 80))
        n += len(got)
        index += 80
    return n / (time.perf_counter() - t0)


async def _v2_rate(client: RekorV2Client, size: int, seconds: float) -> float:
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < seconds:
        n += len(await client.entries(0, size, size))
    return n / (time.perf_counter() - t0)


async def run(seconds: float) -> dict[str, float]:
    entries = 60_000
    with tempfile.TemporaryDirectory() as out:
        sim = await start(SimConfig(entries=entries, shards=1, seed=3), out=Path(out))
        trust = load_trust_root(f"{out}/trusted_root.json", f"{out}/signing_config.json")
        v1_log = trust.log_by_url(sim.base_url)
        (v2_log,) = trust.v2_shards()
        assert v1_log is not None
        metrics = ClientMetrics.standalone()
        results = {}
        async with aiohttp.ClientSession() as session:
            for label, policy in (
                ("v1_unlimited", HttpPolicy(requests_per_second=10_000, burst=64,
                                            max_concurrency=8)),
                ("v1_budget_16rps", HttpPolicy(requests_per_second=V1_BUDGET, burst=1,
                                               max_concurrency=8)),
            ):  # fmt: skip
                client = RekorV1Client(
                    LogHttp(v1_log.base_url, session, log=label, metrics=metrics, policy=policy),
                    v1_log,
                )
                results[label] = await _v1_rate(client, 0, seconds)
            v2 = RekorV2Client(
                LogHttp(
                    v2_log.base_url,
                    session,
                    log="v2",
                    metrics=metrics,
                    policy=HttpPolicy(requests_per_second=10_000, burst=64, max_concurrency=8),
                ),
                v2_log,
            )
            results["v2_bundles"] = await _v2_rate(v2, 20_000, seconds)
        await sim.stop()
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=8.0)
    args = p.parse_args()
    res = asyncio.run(run(args.seconds))
    ceiling = V1_BUDGET * 10
    print(f"v1 batch retrieval, unlimited: {res['v1_unlimited']:,.0f} entries/s")
    print(
        f"v1 batch retrieval, {V1_BUDGET:.0f} requests/s budget: "
        f"{res['v1_budget_16rps']:,.0f} entries/s = "
        f"{res['v1_budget_16rps'] / ceiling:.1%} of the {ceiling:.0f} the budget allows"
    )
    print(f"v2 entry bundles: {res['v2_bundles']:,.0f} entries/s")


if __name__ == "__main__":
    main()
