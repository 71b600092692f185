"""End-to-end backfill through the daemon (fetch, verify, parse, match, store), against the
simulator, beside the parse-only rate measured in the same run.

The simulator and the monitor each run in their own process, so that the monitor's CPU time
and peak memory (``wait4`` of its process) are its own: ``tlog-monitor sim`` serves the logs,
``tlog-monitor once`` backfills them into a fresh SQLite file.

- Rekor v2 tiles, every entry from 0, at several log sizes (the simulator grows between
  runs): entries a second, CPU seconds per 10,000 entries, peak RSS (flat in the size?);
- Rekor v1 within a 16 requests/second budget (10 entries a request): entries a second.

Targets (2 cores): v2 at least 5,000 entries/s, at least half the parse-only rate and at least
the least-work rate of one core (``bench_parse``: leaf hash, JSON, base64, the certificate or
key loaded, its extensions and SAN); v1 at least 150 entries/s; memory flat in the number of
entries, under 400 MB at 10,000,000 (measured when 10,000,000 is one of --sizes, else
extrapolated from the two largest runs). A missed target is reported, not an error: the exit
status is non-zero only when something crashed.

The parse-only rate the v2 share is judged against is that of the entries the backfill reads:
the simulator's own v2 entries, parsed in this process (the best of three passes). Parsing
real production entries (``bench_parse``, a different mix of kinds and certificates) is
reported beside it.

The default run (50,000 and 200,000 v2 entries, 20,000 v1 entries) takes about 4 minutes;
--workers 0,1,2 backfills the largest log again with each number of parse workers (about a
minute each), splitting the CPU between the monitor's process and its workers;
--parse-workers N backfills --sizes with N parse workers instead of the default;
--breakdown adds one more 200,000-entry backfill (about a minute) that times each stage of a
batch in the monitor's process (``bench.daemon_probe``); --profile one under cProfile.
``--sizes 10000000 --v1-entries 0`` measures memory at 10,000,000 (about an hour and a half:
the simulator builds the log first, at about 12,000 entries a second).

Run: .venv/bin/python -m bench.bench_daemon [--quick] [--sizes 50000,200000]
     [--v1-entries N] [--batch-size N] [--workers 0,1,2] [--breakdown] [--profile FILE]
     [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench import bench_parse
from bench.daemon_config import v1_log, v2_log, write_config
from bench.daemon_monitor import MonitorRun, run_monitor
from bench.daemon_profile import profile_summary
from bench.daemon_report import Report, as_json, render, render_scaling, render_stages
from bench.daemon_sim import BenchError, child_env, running_sim
from bench.daemon_targets import V1_BUDGET

FULL_SIZES = (50_000, 200_000)
QUICK_SIZES = (2_000, 5_000)


def sim_parse_rate(count: int) -> float:
    """Parse-only entries per CPU second on the simulator's own v2 entries (seed 1)."""
    from monitor.entries.parse import parse_entry  # noqa: PLC0415 - only here
    from monitor.sim.ca import SimCA  # noqa: PLC0415
    from monitor.sim.factory import EntryFactory  # noqa: PLC0415

    factory = EntryFactory(1, SimCA.create(1))
    bodies = [factory.v2_entry(i).body for i in range(count)]
    best = float("inf")
    for _ in range(3):  # the best of three: a shared machine only ever makes it slower
        t0 = time.process_time()
        for i, body in enumerate(bodies):
            parse_entry(body, log="bench", index=i)
        best = min(best, time.process_time() - t0)
    return count / best


def run(
    sizes: Sequence[int],
    v1_entries: int,
    *,
    quick: bool,
    parse_seconds: float,
    batch_size: int | None,
    profile: Path | None,
    breakdown: bool,
    keep: Path | None,
    workers: Sequence[int] = (),
    parse_workers: int | None = None,
) -> Report:
    started = time.perf_counter()
    print("parse-only ...", flush=True)
    parsed = bench_parse.run(parse_seconds)
    parse_rate = parsed["entries_per_cpu_second"]
    sim_rate = sim_parse_rate(1_000 if quick else 10_000)
    with tempfile.TemporaryDirectory(prefix="bench-daemon-") as tmp:
        work = keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        env = child_env(work)
        first = min(sizes)
        print(f"starting the simulator with {first:,} entries per log ...", flush=True)
        with (
            (work / "sim.stderr").open("w") as sim_log,
            running_sim(first, work / "sim", sim_log, env) as sim,
        ):
            # start-up alone (from the tip: nothing to read), once to cache the bytecode
            for label in ("warm-up", "startup"):
                cfg = write_config(
                    work / f"{label}.yaml",
                    sim,
                    work / f"{label}.db",
                    {**v2_log(batch_size), "start": "tip"},
                )
                startup = run_monitor(label, cfg, sim, work, expect_entries=0, env=env)
            grow: list[float] = []
            v2_runs: list[MonitorRun] = []
            for size in sorted(sizes):
                if size > sim.v2_size:
                    grow.append(sim.append_v2(size - sim.v2_size))
                label = f"v2-{size // 1000}k" if size >= 1000 else f"v2-{size}"
                print(f"{label}: backfilling {size:,} entries ...", flush=True)
                cfg = write_config(
                    work / f"{label}.yaml",
                    sim,
                    work / f"{label}.db",
                    v2_log(batch_size),
                    parse_workers,
                )
                v2_runs.append(run_monitor(label, cfg, sim, work, expect_entries=size, env=env))
                print(f"  {v2_runs[-1].rate:,.0f} entries/s", flush=True)
            v1_run = None
            if v1_entries > 0:
                n = min(v1_entries, sim.v1_size)
                print(f"v1: {n:,} entries at {V1_BUDGET:.0f} requests/s ...", flush=True)
                cfg = write_config(
                    work / "v1.yaml",
                    sim,
                    work / "v1.db",
                    v1_log(sim, sim.v1_size - n, batch_size),
                )
                v1_run = run_monitor("v1", cfg, sim, work, expect_entries=n, env=env)
            if profile is not None:
                size = sim.v2_size
                print(f"profiling a v2 backfill of {size:,} entries ...", flush=True)
                cfg = write_config(
                    work / "profile.yaml", sim, work / "profile.db", v2_log(batch_size)
                )
                run_monitor(
                    "profile", cfg, sim, work, expect_entries=size, env=env, profile=profile
                )
            scaling: list[tuple[int, MonitorRun]] = []
            for n in workers:
                size = sim.v2_size
                label = f"v2-w{n}"
                print(f"{label}: {size:,} entries with {n} parse workers ...", flush=True)
                cfg = write_config(
                    work / f"{label}.yaml", sim, work / f"{label}.db", v2_log(batch_size), n
                )
                scaling.append(
                    (n, run_monitor(label, cfg, sim, work, expect_entries=size, env=env))
                )
                print(f"  {scaling[-1][1].rate:,.0f} entries/s", flush=True)
            stages = None
            if breakdown:
                size = sim.v2_size
                print(f"timing the stages of a v2 backfill of {size:,} entries ...", flush=True)
                cfg = write_config(work / "probe.yaml", sim, work / "probe.db", v2_log(batch_size))
                run_monitor("probe", cfg, sim, work, expect_entries=size, env=env, probe=True)
                line = (work / "probe.stdout").read_text().rsplit("BREAKDOWN ", 1)[-1]
                stages = json.loads(line)
    return Report(
        quick=quick,
        parse_rate=parse_rate,
        sim_parse_rate=sim_rate,
        sim_start_seconds=sim.start_seconds,
        sim_entries=first,
        grow_seconds=grow,
        startup=startup,
        v2=v2_runs,
        v1=v1_run,
        batch_size=batch_size,
        breakdown=stages,
        seconds=time.perf_counter() - started,
        scaling=scaling,
        least_work_rate=parsed["least_work_per_cpu_second"],
        parse_workers=parse_workers,
    )


def _sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(s.replace("_", "")) for s in text.split(",") if s})
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected sizes like 50000,200000") from None
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected positive sizes")
    return sizes


def _counts(text: str) -> list[int]:
    try:
        counts = [int(s) for s in text.split(",") if s]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected counts like 0,1,2") from None
    if any(n < 0 for n in counts):
        raise argparse.ArgumentTypeError(f"{text!r}: expected counts of 0 or more")
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="a few thousand entries: does it work?")
    p.add_argument("--sizes", type=_sizes, help="v2 log sizes to backfill (default 50000,200000)")
    p.add_argument("--v1-entries", type=int, help="v1 entries to fetch (default 20000; 0: skip)")
    p.add_argument(
        "--batch-size", type=int, help="entries per transaction (default: the configuration's)"
    )
    p.add_argument("--parse-seconds", type=float, help="parse-only measurement (default 5)")
    p.add_argument("--profile", type=Path, help="also profile a v2 backfill (cProfile) into FILE")
    p.add_argument("--breakdown", action="store_true", help="also time the stages of a v2 backfill")
    p.add_argument(
        "--workers",
        type=_counts,
        default=[],
        help="also backfill the largest log with each of these parse_workers (e.g. 0,1,2)",
    )
    p.add_argument(
        "--parse-workers",
        type=int,
        help="parse_workers of the backfills of --sizes (default: the configuration's, auto)",
    )
    p.add_argument("--keep", type=Path, help="keep configs, databases and logs in this directory")
    p.add_argument("--json", type=Path, help="also write the results as JSON to FILE")
    args = p.parse_args(argv)
    sizes = args.sizes or list(QUICK_SIZES if args.quick else FULL_SIZES)
    v1_entries = args.v1_entries if args.v1_entries is not None else (300 if args.quick else 20_000)
    parse_seconds = args.parse_seconds or (1.0 if args.quick else 5.0)
    try:
        rep = run(
            sizes,
            v1_entries,
            quick=args.quick,
            parse_seconds=parse_seconds,
            batch_size=args.batch_size,
            profile=args.profile,
            breakdown=args.breakdown,
            keep=args.keep,
            workers=args.workers,
            parse_workers=args.parse_workers,
        )
    except BenchError as e:
        print(f"bench_daemon: {e}", file=sys.stderr)
        return 1
    print()
    print(render(rep))
    if rep.scaling:
        print(f"\nparse workers (v2, {rep.scaling[0][1].entries:,} entries):")
        print(render_scaling(rep))
    if rep.breakdown is not None:
        print(f"\nstages of a v2 backfill, timed in the monitor's process:\n{render_stages(rep)}")
    if args.profile is not None:
        print(f"\nwhere the monitor's time goes (v2, {rep.v2[-1].entries:,} entries, cProfile):")
        print(profile_summary(args.profile))
    if args.json is not None:
        args.json.write_text(json.dumps(as_json(rep), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
