"""Every benchmark of the project in one run, written to ``bench/RESULTS.md``.

Parsing, rule matching, log fetching, the simulator's own rates (entries it makes and serves),
the daemon end to end (Rekor v2 tiles and Rekor v1 through the public request budget) and
storage with its history queries on SQLite and PostgreSQL. Each figure is given with its ratio
to the limit that matters for it: the parse-only rate measured in the same run, the request
budget, or the target the project set.
This machine is shared: ratios within one run mean more than absolute numbers.

Run: .venv/bin/python -m bench.report [--out bench/RESULTS.md] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import bench_fetch, bench_match, bench_parse, bench_sim
from bench.bench_match import TARGET_US as MATCH_TARGET_US
from bench.corpus import corpus, production_corpus
from bench.daemon_targets import V1_BUDGET, V1_TARGET, V2_TARGET
from monitor import __version__

RESULTS = Path(__file__).with_name("RESULTS.md")
V2_RATIO_TARGET = 0.5  # end to end from v2 tiles: at least half the parse-only rate
MEMORY_LIMIT_MB = 400.0  # peak RSS of the monitor and its workers, flat in the entries
PARSE_OVER_LEAST_LIMIT = 1.5  # the full parse per entry, beside the least work per entry
QUERY_LIMIT_MS = 100.0  # a responder's history query: interactive means p99 under this
V1_CEILING = V1_BUDGET * 10  # Rekor v1 serves at most 10 entries a request


@dataclass
class Section:
    title: str
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # what, figure, ratio
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _spread(r: dict[str, float]) -> str:
    """The ratios of the rounds of a parse measure: how far the machine's noise moved them."""
    return (
        f"median {r['round_ratio_median']:.2f}, {r['rounds']:.0f} rounds "
        f"{r['round_ratio_min']:.2f}-{r['round_ratio_max']:.2f}"
    )


def ratio(value: float, limit: float, label: str, *, higher_is_better: bool = True) -> str:
    """``value`` as a fraction of ``limit`` (named ``label``), and whether it meets it."""
    r = value / limit
    ok = r >= 1 if higher_is_better else r <= 1
    return f"{r:.2f} of {label}: {'PASS' if ok else 'FAIL'}"


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        memory = f"{mem_kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        memory = "unknown"
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "monitor": __version__,
        "cpu": f"{cpu}, {os.cpu_count()} logical cores",
        "memory": memory,
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "load at start": f"{os.getloadavg()[0]:.2f} (1-minute average)",
    }


def parse_section(seconds: float) -> tuple[Section, float]:
    t0 = time.perf_counter()
    r = bench_parse.run(seconds)  # the production-like corpus: the measure
    worst = bench_parse.run(seconds / 2, production_corpus(new_identities=True))
    warm = bench_parse.run(seconds / 2, corpus())
    s = Section("Parsing (one core, real production entries)")
    rate = r["entries_per_cpu_second"]
    s.rows.append(("parse-only rate", f"{rate:,.0f} entries per CPU second", "the reference"))
    s.rows.append(("per entry", f"{r['us_per_entry']:.1f} us", ""))
    s.rows.append(
        (
            "least work (leaf hash, JSON, base64, certificate or key loaded, its extensions "
            "and SAN)",
            f"{r['least_work_per_cpu_second']:,.0f} entries per CPU second, "
            f"{r['least_work_us_per_entry']:.1f} us per entry",
            f"{r['least_work_per_cpu_second'] / rate:.2f}x the parse-only rate",
        )
    )
    over = r["parse_over_least_work"]
    s.rows.append(
        (
            "full parse beside the least work",
            f"{over:.2f}x the least work's cost per entry (rounds: {_spread(r)})",
            ratio(over, PARSE_OVER_LEAST_LIMIT, f"the {PARSE_OVER_LEAST_LIMIT}x limit",
                  higher_is_better=False),
        )
    )  # fmt: skip
    for label, other in (
        ("the same with every identity, commit and run new too (the worst case)", worst),
        ("the same on the repeating corpus (every cache warm)", warm),
    ):
        s.rows.append(
            (
                label,
                f"{other['us_per_entry']:.1f} us per entry, "
                f"{other['parse_over_least_work']:.2f}x the least work's cost",
                "for comparison only",
            )
        )
    s.rows.append(
        (
            "Fulcio chain check (only where a rule needs it)",
            f"{r['chain_check_us_per_entry']:.0f} us per entry",
            f"{r['chain_check_us_per_entry'] / r['us_per_entry']:.1f}x a parse",
        )
    )
    s.notes.append(
        "the parse and the least work take turns on the same entries, a round each, so that "
        "their ratio holds on a shared machine; the measure is the production-like corpus: "
        "the real entries' mix with every Fulcio certificate issued afresh (key, serial, "
        "validity, subject key identifier and SCT new each time, as Fulcio issues them); the "
        "worst case also gives every certificate a new identity, commit and run, so that only "
        "the issuer's parts (issuer, key usages, CA key identifier, issuer name) repeat; the "
        "repeating corpus, the real entries over and over, keeps every cache warm"
    )
    s.seconds = time.perf_counter() - t0
    return s, r["us_per_entry"]


def match_section(seconds: float, parse_us: float) -> Section:
    t0 = time.perf_counter()
    s = Section("Rule matching (on parsed entries)")
    for r in bench_match.run(seconds):
        n = len(r["rules"])
        s.rows.append(
            (
                f"{n:,} rules: evaluate",
                f"{r['evaluate_us']:.1f} us per entry",
                f"{ratio(r['evaluate_us'], MATCH_TARGET_US, 'the limit', higher_is_better=False)}; "
                f"{r['evaluate_us'] / parse_us:.2f} of a parse",
            )
        )
    s.notes.append(f"limit: {MATCH_TARGET_US:.0f} us per entry with 1,000 rules")
    s.seconds = time.perf_counter() - t0
    return s


def fetch_section(seconds: float, parse_rate: float) -> Section:
    t0 = time.perf_counter()
    r = asyncio.run(bench_fetch.run(seconds))
    s = Section("Fetching from the simulator over loopback (no parsing)")
    s.rows.append(
        (
            f"Rekor v1 within {V1_BUDGET:.0f} requests/s",
            f"{r['v1_budget_16rps']:,.0f} entries/s",
            f"{r['v1_budget_16rps'] / V1_CEILING:.2f} of the {V1_CEILING:.0f}/s the budget allows",
        )
    )
    s.rows.append(("Rekor v1, no budget", f"{r['v1_unlimited']:,.0f} entries/s", ""))
    s.rows.append(
        (
            "Rekor v2 entry bundles",
            f"{r['v2_bundles']:,.0f} entries/s",
            f"{r['v2_bundles'] / parse_rate:.2f}x the parse-only rate",
        )
    )
    s.seconds = time.perf_counter() - t0
    return s


def sim_section(entries: int) -> Section:
    t0 = time.perf_counter()
    r = bench_sim.run(entries, parse_count=2_000 if entries < 10_000 else 10_000)
    s = Section(f"The simulator ({entries:,} entries per log, real signatures)")
    parse = r["parse_rate"]
    rows = (
        ("generates Rekor v1 entries (signed once, kept)", r["generate"]["v1"]),
        ("generates Rekor v2 entries (signed once, kept)", r["generate"]["v2"]),
        ("builds Rekor v2 entry bundles afresh", r["serve"]["v2_bundles"]),
        ("serves Rekor v1 LogEntries (proof, checkpoint, SET each)", r["serve"]["v1_entries"]),
    )
    for what, rate in rows:
        s.rows.append((what, f"{rate:,.0f} entries/s", f"{rate / parse:.2f}x the parse-only rate"))
    kept = r["signature_bytes_per_entry"]
    s.rows.append(
        ("memory for the kept signatures", f"{kept['v1']:.0f} bytes an entry (v1), "
         f"{kept['v2']:.0f} (v2)", "beside the tree's 64")
    )  # fmt: skip
    s.notes.append(
        f"parse-only: {parse:,.0f} entries per CPU second on the simulator's v2 entries, in "
        "this run; serving re-renders bodies around the signatures made when the entries were "
        "appended: while a monitor reads, the simulator signs no entry, only what Rekor v1 signs "
        "per answer (checkpoints, SETs); a full Rekor v2 bundle is served from the copy gzipped "
        "when its tile filled (up to 256 MiB of them), built afresh (uncompressed, as measured "
        "here) only beyond that, for a partial tile, or where a fault alters it"
    )
    s.seconds = time.perf_counter() - t0
    return s


def run_json(module: str, args: Sequence[str], out_flag: str) -> dict[str, Any]:
    """Run a benchmark module in its own process; its JSON results."""
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        out = Path(tmp) / "out.json"
        cmd = [sys.executable, "-m", module, *args, out_flag, str(out)]
        print(f"$ {' '.join(cmd[1:])}", flush=True)
        subprocess.run(cmd, check=True, stdout=sys.stderr)  # noqa: S603 - our own modules
        doc: dict[str, Any] = json.loads(out.read_text())
        return doc


def daemon_section(quick: bool) -> tuple[Section, dict[str, Any]]:
    t0 = time.perf_counter()
    args = ["--quick", "--workers", "0,1"] if quick else ["--workers", "0,1,2"]
    d = run_json("bench.bench_daemon", args, "--json")
    s = Section("The daemon end to end (fetch, verify, parse, match, store; SQLite, index_all on)")
    parse_rate, same_rate = d["parse_rate"], d["sim_parse_rate"]
    for run in d["v2"]:
        share = run["rate"] / same_rate
        s.rows.append(
            (
                f"Rekor v2 tiles, {run['entries']:,} entries",
                f"{run['rate']:,.0f} entries/s, {run['cpu_per_10k']:.2f} CPU s per 10,000, "
                f"peak {run['peak_rss_mb']:.0f} MB",
                f"{ratio(run['rate'], V2_TARGET, f'{V2_TARGET:,.0f}/s')}; "
                f"{share:.2f} of the parse-only rate of the same entries "
                f"({'PASS' if share >= V2_RATIO_TARGET else 'FAIL'} at {V2_RATIO_TARGET}); "
                f"{run['rate'] / parse_rate:.2f} of that of production entries",
            )
        )
    largest = max(d["v2"], key=lambda r: r["entries"])
    least = d["least_work_rate"]
    s.rows.append(
        (
            f"Rekor v2 tiles, {largest['entries']:,} entries, beside the least work",
            f"{largest['rate']:,.0f} entries/s; the least work: {least:,.0f} entries per CPU "
            "second on one core",
            ratio(largest["rate"], least, "the least-work rate of one core"),
        )
    )
    scaling = d["scaling"]
    for workers, run in scaling:
        run["rate"] = run["entries"] / run["wall_seconds"]  # a property: not in the JSON
        per = 10_000 / run["entries"]
        s.rows.append(
            (
                f"Rekor v2 tiles, {run['entries']:,} entries, {workers} parse workers",
                f"{run['rate']:,.0f} entries/s; CPU s per 10,000: "
                f"{run['main_cpu_seconds'] * per:.2f} the monitor's process, "
                f"{run['worker_cpu_seconds'] * per:.2f} its workers; peak "
                f"{run['peak_rss_mb']:.0f} MB",
                f"{run['rate'] / scaling[0][1]['rate']:.2f}x the rate without workers",
            )
        )
    s.rows.append(
        (
            "peak memory",
            f"{largest['peak_rss_mb']:.0f} MB at {largest['entries']:,} entries",
            ratio(
                largest["peak_rss_mb"],
                MEMORY_LIMIT_MB,
                f"{MEMORY_LIMIT_MB:.0f} MB",
                higher_is_better=False,
            ),
        )
    )
    if d.get("v1"):
        v1 = d["v1"]
        s.rows.append(
            (
                f"Rekor v1 within {V1_BUDGET:.0f} requests/s, {v1['entries']:,} entries",
                f"{v1['rate']:,.0f} entries/s",
                f"{ratio(v1['rate'], V1_TARGET, f'{V1_TARGET:.0f}/s')}; "
                f"{v1['rate'] / V1_CEILING:.2f} of the {V1_CEILING:.0f}/s the budget allows",
            )
        )
    s.notes.append(
        f"parse-only rates in the same run: {same_rate:,.0f} entries per CPU second on the "
        f"simulator's v2 entries (those the backfills read), {parse_rate:,.0f} on real "
        "production entries; the simulator and the monitor run as separate processes on the "
        "same cores"
    )
    s.notes.append(
        "parse workers: `processing.parse_workers`; the default, `auto`, is one per core beyond "
        "the first (one here); the monitor's own process fetches, proves and stores"
    )
    s.seconds = time.perf_counter() - t0
    return s, d


def storage_section(entries: int, rounds: int) -> tuple[Section, dict[str, Any]]:
    t0 = time.perf_counter()
    d = run_json(
        "bench.bench_storage",
        ["--entries", str(entries), "--rounds", str(rounds), "--batches", "10"],
        "--out",
    )
    s = Section(
        f"Storage and history queries ({entries:,} entries of the log per engine, "
        "5% of them matched and stored whole)"
    )
    for engine, r in d.items():
        ins = r["insert"]
        s.rows.append(
            (
                f"{engine}: store_batch",
                f"{ins['matched_entries_per_second']:,.0f} matched entries/s, "
                f"{ins['index_all_rows_per_second']:,.0f} index_all rows/s",
                "",
            )
        )
        sizes = r["sizes"]
        s.rows.append(
            (
                f"{engine}: bytes",
                f"{sizes['stored_entry_bytes']:,.0f} per matched entry, "
                f"{sizes['index_all_row_bytes']:,.0f} per index_all row",
                "",
            )
        )
        worst = max(r["queries"].items(), key=lambda kv: kv[1]["p99_ms"])
        for shape, q in r["queries"].items():
            s.rows.append(
                (
                    f"{engine}: {shape}",
                    f"p50 {q['p50_ms']:.1f} ms, p99 {q['p99_ms']:.1f} ms "
                    f"({q['mean_rows']:.0f} rows)",
                    ratio(
                        q["p99_ms"],
                        QUERY_LIMIT_MS,
                        f"{QUERY_LIMIT_MS:.0f} ms",
                        higher_is_better=False,
                    ),
                )
            )
        s.notes.append(f"{engine}: slowest p99 is {worst[0]!r} at {worst[1]['p99_ms']:.1f} ms")
    s.notes.append(
        f"limit: p99 under {QUERY_LIMIT_MS:.0f} ms for an interactive query; "
        "`make bench-storage` grows the same to 1,000,000 and 10,000,000 entries and "
        "measures at each size (about 45 minutes)"
    )
    s.seconds = time.perf_counter() - t0
    return s, d


AUDIT_ENTRIES = 225_000_000  # a whole Rekor v2 shard, about 2027
MATCHED_SHARE = 0.02  # entries a watch list matches, as in the benchmark's rules


def projection_section(daemon: dict[str, Any], storage: dict[str, Any]) -> Section:
    """Hours to audit ``AUDIT_ENTRIES`` with ``index_all`` and the disk it takes, from what
    this run measured."""
    s = Section(f"Projection: auditing {AUDIT_ENTRIES:,} entries with index_all")
    largest = max(daemon["v2"], key=lambda r: r["entries"])
    hours = AUDIT_ENTRIES / largest["rate"] / 3600
    sim_share = largest["sim_cpu_seconds"] / largest["wall_seconds"]
    s.rows.append(
        (
            "this machine, as measured (2 cores shared with the simulator)",
            f"{hours:.1f} hours at {largest['rate']:,.0f} entries/s",
            f"the simulator took {sim_share:.0%} of a core",
        )
    )
    one = next((r for n, r in daemon["scaling"] if n == 1), None)
    if one is not None:
        main_us = one["main_cpu_seconds"] / one["entries"] * 1e6
        worker_us = one["worker_cpu_seconds"] / one["entries"] * 1e6
        for cores in (2, 8):
            rate = min(1e6 / main_us, (cores - 1) * 1e6 / worker_us)
            bound = "the monitor's own process" if rate * main_us >= 1e6 - 1 else "the workers"
            s.rows.append(
                (
                    f"{cores} cores to itself, {cores - 1} parse workers",
                    f"{AUDIT_ENTRIES / rate / 3600:.1f} hours at {rate:,.0f} entries/s",
                    f"bound by {bound}",
                )
            )
        s.notes.append(
            f"from the 1-worker run: {main_us:.0f} us of CPU per entry in the monitor's own "
            f"process (fetch, prove, store, SQLite's thread included) and {worker_us:.0f} us in "
            "its worker (parse, match); with n cores, n - 1 workers share the parse and the "
            "monitor's process stays one: the rate is the lower of the two; assumed: cores as "
            "fast as these, the log serving tiles at that rate (about 3 KB an entry, so "
            "30 MB/s at 10,000 entries/s), SQLite on a local SSD, and storage keeping its "
            "per-row cost as it grows (see `make bench-storage`)"
        )
    for engine, r in storage.items():
        row_bytes = r["sizes"]["index_all_row_bytes"]
        entry_bytes = r["sizes"]["stored_entry_bytes"]
        index_gb = row_bytes * AUDIT_ENTRIES / 1e9
        matched_gb = entry_bytes * AUDIT_ENTRIES * MATCHED_SHARE / 1e9
        s.rows.append(
            (
                f"{engine}: disk",
                f"{index_gb:,.0f} GB of index_all ({row_bytes:,.0f} bytes a row) and "
                f"{matched_gb:,.0f} GB of matched entries",
                f"provision {1.5 * (index_gb + matched_gb):,.0f} GB",
            )
        )
    s.notes.append(
        f"disk: bytes per row as measured above at this run's size; matched entries at "
        f"{MATCHED_SHARE:.0%} of the log (a broad watch list); provision half as much again "
        "for the write-ahead log, vacuum and growth"
    )
    return s


def render(info: dict[str, str], sections: Sequence[Section], seconds: float) -> str:
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`python -m bench.report`); every figure below comes from one "
        "run on the machine described here. The machine is shared, so compare ratios within "
        "the run rather than absolute numbers across runs.",
        "",
        "| | |",
        "| --- | --- |",
        *(f"| {k} | {v} |" for k, v in info.items()),
        f"| whole run | {seconds / 60:.1f} minutes |",
        "",
    ]
    for s in sections:
        lines += [f"## {s.title}", "", "| what | measured | ratio |", "| --- | --- | --- |"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in s.rows]
        lines += ["", *(f"- {n}" for n in s.notes), f"- took {s.seconds:.0f} s", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, default=RESULTS, help="where to write the report")
    p.add_argument("--quick", action="store_true", help="small sizes: does every part work?")
    args = p.parse_args(argv)
    started = time.perf_counter()
    info = machine()
    print("parsing ...", flush=True)
    parse, parse_us = parse_section(1.0 if args.quick else 5.0)
    parse_rate = 1e6 / parse_us
    print("matching ...", flush=True)
    match = match_section(1.0 if args.quick else 4.0, parse_us)
    print("fetching ...", flush=True)
    fetch = fetch_section(1.0 if args.quick else 5.0, parse_rate)
    print("the simulator ...", flush=True)
    sim = sim_section(5_000 if args.quick else 50_000)
    print("the daemon end to end ...", flush=True)
    daemon, daemon_doc = daemon_section(args.quick)
    print("storage and queries ...", flush=True)
    storage, storage_doc = storage_section(
        5_000 if args.quick else 100_000, 10 if args.quick else 50
    )
    projection = projection_section(daemon_doc, storage_doc)
    info["load at end"] = f"{os.getloadavg()[0]:.2f} (1-minute average)"
    sections = [parse, match, fetch, sim, daemon, storage, projection]
    text = render(info, sections, time.perf_counter() - started)
    args.out.write_text(text)
    print(text)
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
