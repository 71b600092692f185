"""Parse throughput on a realistic mix of real entries, and what dominates the cost.

Run: .venv/bin/python -m bench.bench_parse [--seconds S]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from bench.corpus import corpus
from monitor.entries.parse import parse_entry, with_chain_status
from monitor.entries.record import MalformedEntry
from monitor.trust import load_trust_root


def run(seconds: float) -> dict[str, float]:
    samples = corpus()
    for s in samples:  # warm up, and prove every sample parses
        r = parse_entry(s.body, log="bench", index=0, attestation=s.attestation)
        assert not isinstance(r, MalformedEntry), r.reason
    n = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    while time.perf_counter() - wall0 < seconds:
        for s in samples:
            parse_entry(s.body, log="bench", index=n, attestation=s.attestation)
        n += len(samples)
    cpu = time.process_time() - cpu0
    cas = load_trust_root().certificate_authorities
    parsed = [parse_entry(s.body, log="b", index=0) for s in samples]
    t0 = time.process_time()
    rounds = 0
    while time.process_time() - t0 < seconds / 4:
        for r in parsed:
            with_chain_status(r, cas)
        rounds += 1
    chain_cpu = (time.process_time() - t0) / (rounds * len(parsed))
    return {
        "entries": n,
        "cpu_seconds": cpu,
        "entries_per_cpu_second": n / cpu,
        "us_per_entry": cpu / n * 1e6,
        "chain_check_us_per_entry": chain_cpu * 1e6,
    }


def profile() -> str:
    samples = corpus()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(20):
        for s in samples:
            parse_entry(s.body, log="bench", index=0, attestation=s.attestation)
    prof.disable()
    stats = pstats.Stats(prof)
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:8]  # type: ignore[attr-defined]
    lines = [
        f"  {tt / total:6.1%}  {func[2]} ({func[0].rsplit('/', 1)[-1]}:{func[1]})"
        for func, (_, _, tt, _, _) in rows
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=5.0)
    args = p.parse_args()
    res = run(args.seconds)
    print(
        f"parse: {res['entries_per_cpu_second']:,.0f} entries per CPU second "
        f"({res['us_per_entry']:.1f} us per entry, {res['entries']:,} entries)"
    )
    print(
        f"Fulcio chain check (only where a rule needs it): "
        f"{res['chain_check_us_per_entry']:.0f} us per entry"
    )
    print("where parse time goes (self time):")
    print(profile())


if __name__ == "__main__":
    main()
