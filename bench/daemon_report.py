"""The results of the daemon's benchmark: judged against the targets, as text and as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench import daemon_probe
from bench.daemon_config import RULES
from bench.daemon_monitor import MonitorRun
from bench.daemon_targets import (
    MEMORY_AT,
    MEMORY_LIMIT_MB,
    MIN_FULL_V2,
    V1_BUDGET,
    V1_TARGET,
    V2_PARSE_SHARE,
    V2_TARGET,
)


@dataclass(frozen=True)
class Report:
    quick: bool
    parse_rate: float  # bench_parse: real entries, per CPU second
    sim_parse_rate: float
    sim_start_seconds: float
    sim_entries: int
    grow_seconds: list[float]
    startup: MonitorRun
    v2: list[MonitorRun]
    v1: MonitorRun | None
    batch_size: int | None  # None: the configuration's default for each API
    breakdown: dict[str, Any] | None  # from bench.daemon_probe
    seconds: float
    scaling: list[tuple[int, MonitorRun]] = field(default_factory=list)  # by parse_workers
    least_work_rate: float = 0.0  # bench_parse: the least work, entries per CPU second
    parse_workers: int | None = None  # of the --sizes backfills; None: the default (auto)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def memory_at(runs: Sequence[MonitorRun], entries: int) -> tuple[float, bool]:
    """Peak RSS at ``entries``: measured if a run had that many, else extrapolated
    linearly from the two largest runs (growth below zero counts as flat)."""
    for r in runs:
        if r.entries == entries:
            return r.peak_rss_mb, True
    if len(runs) < 2:
        return runs[-1].peak_rss_mb, False
    a, b = sorted(runs, key=lambda r: r.entries)[-2:]
    slope = max(0.0, (b.peak_rss_mb - a.peak_rss_mb) / (b.entries - a.entries))
    return b.peak_rss_mb + slope * (entries - b.entries), False


def render(rep: Report) -> str:
    out: list[str] = []
    w = out.append
    w(
        f"simulator: {rep.sim_entries:,} entries per log built in {rep.sim_start_seconds:.1f} s"
        + "".join(f"; grown in {s:.1f} s" for s in rep.grow_seconds)
    )
    w(
        f"parse-only (bench_parse, real entries): {rep.parse_rate:,.0f} entries per CPU second; "
        f"on the simulator's v2 entries: {rep.sim_parse_rate:,.0f}"
    )
    st = rep.startup
    w(
        f"monitor start-up alone (nothing to read): {st.wall_seconds:.1f} s wall, "
        f"{st.cpu_seconds:.1f} CPU s, peak RSS {st.peak_rss_mb:.0f} MB"
    )
    batch = rep.batch_size or "default"
    workers = "auto" if rep.parse_workers is None else rep.parse_workers
    w(
        f"v2 config: batch_size {batch}, parse_workers {workers}, index_all, "
        f"{len(RULES)} watch rules, SQLite"
    )
    w("")
    head = (
        f"{'run':<10} {'entries':>9} {'wall s':>7} {'entries/s':>9} {'CPU s':>7} "
        f"{'(sys)':>6} {'CPU s/10k':>9} {'peak RSS':>9} {'procs':>5} {'findings':>8} "
        f"{'sim CPU s':>9} "
        f"{'DB MB':>7} {'load':>5}"
    )
    w(head)
    w("-" * len(head))
    for r in [*rep.v2, *([rep.v1] if rep.v1 else [])]:
        w(
            f"{r.label:<10} {r.entries:>9,} {r.wall_seconds:>7.1f} {r.rate:>9,.0f} "
            f"{r.cpu_seconds:>7.1f} {r.sys_seconds:>6.1f} {r.cpu_per_10k:>9.2f} "
            f"{r.peak_rss_mb:>6.0f} MB {r.processes:>5} {r.findings:>8,} "
            f"{r.sim_cpu_seconds:>9.1f} {r.db_mb:>7.0f} "
            f"{r.load:>5.1f}"
        )
    w("")
    v2 = max(rep.v2, key=lambda r: r.entries)
    if len(rep.v2) >= 2:
        a, b = sorted(rep.v2, key=lambda r: r.entries)[-2:]
        marginal = (b.entries - a.entries) / (b.wall_seconds - a.wall_seconds)
        w(
            f"v2 marginal rate ({a.entries:,} -> {b.entries:,} entries, start-up excluded): "
            f"{marginal:,.0f} entries/s"
        )
    ratio = v2.rate / rep.sim_parse_rate
    w(
        f"v2 end-to-end / parse-only of the same (simulator's) entries: {ratio:.2f} "
        f"(/ parse-only of real production entries: {v2.rate / rep.parse_rate:.2f})"
    )
    least = v2.rate / rep.least_work_rate
    w(
        f"v2 end-to-end / the least-work rate of one core ({rep.least_work_rate:,.0f} entries "
        f"per CPU second on real production entries): {least:.2f}"
    )
    rss, measured = memory_at(rep.v2, MEMORY_AT)
    sizes = ", ".join(f"{r.peak_rss_mb:.0f} MB at {r.entries:,}" for r in rep.v2)
    how = "measured" if measured else "extrapolated linearly from the two largest runs"
    w(f"peak RSS: {sizes}; at {MEMORY_AT:,}: {rss:.0f} MB ({how})")
    w("")
    note = "  (quick run: too small to judge)" if rep.quick else ""
    w(f"targets{note}:")
    w(
        f"  {verdict(v2.rate >= V2_TARGET)}  v2 tiles >= {V2_TARGET:,.0f} entries/s: "
        f"{v2.rate:,.0f} ({v2.entries:,} entries)"
    )
    w(
        f"  {verdict(ratio >= V2_PARSE_SHARE)}  v2 tiles >= {V2_PARSE_SHARE:.0%} of parse-only "
        f"of the same entries ({rep.sim_parse_rate:,.0f}): {ratio:.0%}"
    )
    w(
        f"  {verdict(least >= 1)}  v2 tiles >= the least-work rate of one core "
        f"({rep.least_work_rate:,.0f}): {least:.2f} of it"
    )
    if rep.v1 is not None:
        w(
            f"  {verdict(rep.v1.rate >= V1_TARGET)}  v1 at {V1_BUDGET:.0f} requests/s >= "
            f"{V1_TARGET:.0f} entries/s: {rep.v1.rate:,.0f} ({rep.v1.entries:,} entries)"
        )
    w(
        f"  {verdict(rss < MEMORY_LIMIT_MB)}  memory flat, < {MEMORY_LIMIT_MB:.0f} MB at "
        f"{MEMORY_AT:,}: {rss:.0f} MB ({'measured' if measured else 'extrapolated'})"
    )
    if not rep.quick and v2.entries < MIN_FULL_V2:
        w(f"  note: the largest v2 run has fewer than {MIN_FULL_V2:,} entries")
    w(
        f"bench_daemon took {rep.seconds:.0f} s (load: the 1-minute load average after each run; "
        f"on 2 cores, above about 1.5 another process competed and the rates are low)"
    )
    return "\n".join(out)


def render_scaling(rep: Report) -> str:
    """The same backfill with 0, 1, 2... parse workers: its rate beside the first one's, and
    the CPU per 10,000 entries of the monitor's own process and of its workers."""
    base = rep.scaling[0][1].rate
    out = [
        f"  {'workers':>7} {'entries/s':>9} {'speed-up':>8} {'CPU s/10k':>9} "
        f"{'(monitor':>8} {'workers)':>8} {'peak RSS':>9} {'(monitor)':>9}"
    ]
    for n, r in rep.scaling:
        per = 10_000 / r.entries
        out.append(
            f"  {n:>7} {r.rate:>9,.0f} {r.rate / base:>7.2f}x {r.cpu_per_10k:>9.2f} "
            f"{r.main_cpu_seconds * per:>8.2f} {r.worker_cpu_seconds * per:>8.2f} "
            f"{r.peak_rss_mb:>6.0f} MB {r.own_rss_mb:>6.0f} MB"
        )
    return "\n".join(out)


def render_stages(rep: Report) -> str:
    b = rep.breakdown
    assert b is not None
    n, wall, cpu, main = b["entries"], b["wall"], b["cpu"], b["main_thread_cpu"]
    stages: dict[str, float] = b["stages"]
    out = [
        f"  {n:,} entries (batch_size {rep.batch_size or 'default'}) in {wall:.1f} s "
        f"= {n / wall:,.0f}/s",
        f"  CPU: the monitor's process {cpu:.1f} s (main thread {main:.1f} s, other threads, "
        f"SQLite's among them, {cpu - main:.1f} s); worker processes {b['worker_cpu']:.1f} s",
        "  time inside each stage, in the monitor's process (stages that overlap need not add "
        "up to the wall time):",
    ]

    def row(title: str, seconds: float) -> str:
        return (
            f"    {title:<36} {seconds:6.1f} s {seconds / wall:6.1%} of wall "
            f"{seconds / n * 1e6:7.1f} us/entry"
        )

    steps = {k: v for k, v in stages.items() if k.startswith(daemon_probe.STEP_PREFIX)}
    for name, seconds in sorted(stages.items(), key=lambda kv: -kv[1]):
        if name not in steps:
            out.append(row(name, seconds))
    if "commit (awaited by the pass)" in stages:
        outside = max(0.0, wall - stages["commit (awaited by the pass)"])
        out.append(row("outside commit (fetch, prove)", outside))
    if steps:
        out.append(
            "  the store's steps, in order (its transaction's end writes and syncs the WAL):"
        )
        for name, seconds in steps.items():
            out.append(row("  " + name.removeprefix(daemon_probe.STEP_PREFIX), seconds))
    return "\n".join(out)


def as_json(rep: Report) -> dict[str, Any]:
    """The report as a JSON document, with each v2 and v1 run's rate and CPU per 10,000."""
    doc = asdict(rep)
    for run_doc, r in zip(doc["v2"], rep.v2, strict=True):
        run_doc.update(rate=r.rate, cpu_per_10k=r.cpu_per_10k)
    if rep.v1 is not None:
        doc["v1"].update(rate=rep.v1.rate, cpu_per_10k=rep.v1.cpu_per_10k)
    return doc
