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
import os
import pstats
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from bench import bench_parse, daemon_probe

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # of utime and stime in /proc/<pid>/stat

V2_TARGET = 5_000.0  # entries a second from v2 tiles
V2_PARSE_SHARE = 0.5  # of the parse-only rate
V1_BUDGET = 16.0  # requests a second the public Rekor v1 allows
V1_TARGET = 150.0  # entries a second within that budget
MEMORY_AT = 10_000_000  # entries
MEMORY_LIMIT_MB = 400.0

FULL_SIZES = (50_000, 200_000)
QUICK_SIZES = (2_000, 5_000)
MIN_FULL_V2 = 200_000  # the requirement: at least this many entries end to end

GHA = "https://token.actions.githubusercontent.com"

# Watch rules of an organisation, over identities that the simulator (seed 1) produces: a
# release policy for one repository (its matches off a tag break ``expect``: findings, each
# with a chain check), one that is always met (expected_use findings), a maintainer's e-mail
# address, a CI key in routine use, and a root key and an image that never appear. About 2%
# of the simulated entries match one of them.
RULES: list[dict[str, Any]] = [
    {
        "name": "go-lib-releases",
        "match": {"extensions": {"source-repository-uri": "https://github.com/tyrell-oss/go-lib"}},
        "expect": {
            "issuer": GHA,
            "san": "https://github.com/tyrell-oss/go-lib/.github/workflows/*.yml@refs/tags/v*",
            "extensions": {"runner-environment": "github-hosted"},
        },
        "severity": "high",
    },
    {
        "name": "py-api-provenance",
        "match": {"extensions": {"source-repository-uri": "https://github.com/stark/py-api"}},
        "expect": {
            "issuer": GHA,
            "san": "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/*",
        },
        "severity": "high",
    },
    {
        "name": "maintainer-emails",
        "match": {"san": ["trent.chen@corp.example", {"regex": "ops-[a-z]+@corp\\.example"}]},
        "severity": "medium",
    },
    {
        "name": "ci-deploy-key",
        "match": {
            "key_fingerprint": "sha256:bab963b3089778b89eb1f94724652703"
            "4ac7f4571f871599b40d9676b5587b12"
        },
        "severity": "low",
    },
    {
        "name": "offline-root-key",
        "match": {
            "key_fingerprint": "sha256:4cb32c4837c6dda8cfb1681efb3fef5f"
            "94ffce5b979e6bdb9139302c857af139"
        },
        "severity": "critical",
    },
    {
        "name": "app-images",
        "match": {"subject": "ghcr.io/tyrell-oss/*"},
        "expect": {"san": "https://github.com/tyrell-oss/*/.github/workflows/*@refs/tags/*"},
        "severity": "high",
    },
]

SINKS: list[dict[str, Any]] = [
    {
        "name": "soc",
        "type": "webhook",
        "url": "http://127.0.0.1:9/hook",
        "secret": "whsec_YmVuY2gtc2VjcmV0LWJlbmNoLXNlY3JldC1iZW5jaCE=",  # a dummy
        "min_severity": "medium",
    }
]

RESULT_LINE = re.compile(
    r"^(?P<name>\S+): (?P<entries>\d+) entries, (?P<findings>\d+) new findings, "
    r"cursor (?P<cursor>\d+) of (?P<size>\d+)$"
)


class BenchError(Exception):
    """Something crashed: the benchmark cannot report."""


# --- the simulator -----------------------------------------------------------------------------


class Sim:
    """``tlog-monitor sim`` in its own process."""

    def __init__(self, entries: int, out: Path, log: IO[str], env: dict[str, str]) -> None:
        self.out = out
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable, "-m", "monitor.cli.main", "sim", "--listen", "127.0.0.1:0",
                "--entries", str(entries), "--out", str(out),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        url = None
        for line in self.proc.stdout:
            m = re.match(r"simulator: (http://\S+) ", line)
            if m:
                url = m.group(1)
            if line.startswith("trust files:"):
                break
        if url is None or self.proc.poll() is not None:
            self.stop()
            raise BenchError(f"the simulator did not start (see {log.name})")
        self.base_url = url
        self.start_seconds = time.perf_counter() - t0
        self.v1_size = self.v2_size = entries

    def append_v2(self, count: int) -> float:
        """Grow the v2 log by ``count`` entries; seconds it took."""
        t0 = time.perf_counter()
        req = urllib.request.Request(  # noqa: S310 - http to our own simulator
            f"{self.base_url}/admin/append",
            data=json.dumps({"v2": count}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=600) as resp:  # noqa: S310
            state = json.load(resp)
        self.v2_size = int(state["v2"][-1]["size"])
        return time.perf_counter() - t0

    def cpu_seconds(self) -> float:
        """User + system CPU the simulator has used so far."""
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@contextmanager
def running_sim(entries: int, out: Path, log: IO[str], env: dict[str, str]) -> Iterator[Sim]:
    sim = Sim(entries, out, log, env)
    try:
        yield sim
    finally:
        sim.stop()


# --- the monitor ------------------------------------------------------------------------------


class TreeMemory(threading.Thread):
    """Samples the resident memory of a process and all its descendants (worker processes,
    if the monitor starts any): the peak of their sum, and the most processes seen at once.
    ``wait4`` alone gives only the largest single process."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak_kb = 0
        self.max_procs = 0
        self.cpu: dict[int, float] = {}  # CPU seconds of each process, as last seen
        self.own_peak_kb = 0  # the monitor's own process alone
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.sample()
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join()

    def sample(self) -> None:
        parents: dict[int, int] = {}
        cpu: dict[int, float] = {}
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    stat = (d / "stat").read_text()
                except OSError:
                    continue  # gone meanwhile
                fields = stat.rsplit(")", 1)[1].split()
                parents[int(d.name)] = int(fields[1])
                cpu[int(d.name)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        tree, frontier = {self.pid}, [self.pid]
        while frontier:
            parent = frontier.pop()
            kids = [p for p, pp in parents.items() if pp == parent and p not in tree]
            tree.update(kids)
            frontier += kids
        total = 0
        for pid in tree:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            m = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
            kb = int(m.group(1)) if m else 0
            total += kb
            if pid == self.pid:
                self.own_peak_kb = max(self.own_peak_kb, kb)
        self.peak_kb = max(self.peak_kb, total)
        self.max_procs = max(self.max_procs, len(tree))
        for pid in tree:
            if pid in cpu:
                self.cpu[pid] = max(self.cpu.get(pid, 0.0), cpu[pid])

    def main_share(self) -> tuple[float, float]:
        """CPU seconds of the monitor's own process and of its children (its parse workers),
        as last sampled: up to a sampling interval short of the whole."""
        own = self.cpu.get(self.pid, 0.0)
        return own, sum(v for pid, v in self.cpu.items() if pid != self.pid)


@dataclass(frozen=True)
class MonitorRun:
    label: str
    entries: int
    findings: int
    wall_seconds: float
    cpu_seconds: float  # user + system of the monitor's process and the workers it waited for
    sys_seconds: float
    peak_rss_mb: float  # the sum over its processes, sampled (at least the largest one's)
    largest_process_mb: float  # ru_maxrss: the largest single process of the tree
    own_rss_mb: float  # the monitor's own process alone (sampled)
    processes: int  # the most processes at once (1 unless it starts workers)
    main_cpu_seconds: float  # of them, the monitor's own process (sampled)
    worker_cpu_seconds: float  # and its children, the parse workers (sampled)
    sim_cpu_seconds: float  # what serving it cost the simulator meanwhile
    db_mb: float
    load: float  # 1-minute load average at the end: above ~1.5, something else competed

    @property
    def rate(self) -> float:
        return self.entries / self.wall_seconds

    @property
    def cpu_per_10k(self) -> float:
        return self.cpu_seconds / self.entries * 10_000


def write_config(
    path: Path, sim: Sim, db: Path, log: dict[str, Any], workers: int | None = None
) -> Path:
    """A configuration of the one log ``log`` on the simulator, into a fresh database
    (``workers``: its ``parse_workers``; None: the default)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    doc: dict[str, Any] = {
        "trust": {
            "trusted_root": str(sim.out / "trusted_root.json"),
            "signing_config": str(sim.out / "signing_config.json"),
        },
        "logs": [log],
        "database": {"url": f"sqlite+aiosqlite:///{db}"},
        "watch": RULES,
        "alerts": {"sinks": SINKS},
    }
    if workers is not None:
        doc["processing"] = {"parse_workers": workers}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _batch(batch_size: int | None) -> dict[str, Any]:
    """The ``batch_size`` setting: None measures the configuration's default."""
    return {} if batch_size is None else {"batch_size": batch_size}


def v2_log(batch_size: int | None) -> dict[str, Any]:
    return {
        "name": "v2",
        "api": "v2",
        "discover": True,
        "start": 0,
        **_batch(batch_size),
        "requests_per_second": 100,
        "burst": 50,
        "index_all": True,
    }


def v1_log(sim: Sim, start: int, batch_size: int | None) -> dict[str, Any]:
    # burst and concurrency: the defaults
    return {
        "name": "v1",
        "api": "v1",
        "url": sim.base_url,
        "start": start,
        **_batch(batch_size),
        "requests_per_second": V1_BUDGET,
        "index_all": True,
    }


def run_monitor(
    label: str,
    config: Path,
    sim: Sim,
    work: Path,
    *,
    expect_entries: int,
    env: dict[str, str],
    profile: Path | None = None,
    probe: bool = False,
) -> MonitorRun:
    """``tlog-monitor once --config config`` in a child process, measured by ``wait4``
    (``profile``: under cProfile; ``probe``: ``bench.daemon_probe`` instead)."""
    cmd = [sys.executable]
    if profile is not None:
        cmd += ["-m", "cProfile", "-o", str(profile)]
    if probe:
        cmd += ["-m", "bench.daemon_probe", str(config)]
    else:
        cmd += ["-m", "monitor.cli.main", "once", "--config", str(config), "--log-format", "json"]
    out_path, err_path = work / f"{label}.stdout", work / f"{label}.stderr"
    sim_cpu0 = sim.cpu_seconds()
    with out_path.open("w") as out, err_path.open("w") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err)  # noqa: S603
        memory = TreeMemory(proc.pid)
        memory.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            memory.stop()
        wall = time.perf_counter() - t0
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    sim_cpu = sim.cpu_seconds() - sim_cpu0
    stdout = out_path.read_text()
    # 0: nothing new, 1: new findings; 2 (the monitor failed) or a signal: a crash
    if code not in (0, 1):
        tail = "".join(err_path.read_text().splitlines(keepends=True)[-20:])
        raise BenchError(f"{label}: the monitor exited with {code}:\n{stdout}{tail}")
    results = [m for m in map(RESULT_LINE.match, stdout.splitlines()) if m]
    entries = sum(int(m["entries"]) for m in results)
    if entries != expect_entries or "INTEGRITY FAILURE" in stdout:
        raise BenchError(f"{label}: expected {expect_entries:,} entries, got:\n{stdout}")
    db = next(work.glob(f"{label}.db"), None)
    return MonitorRun(
        label=label,
        entries=entries,
        findings=sum(int(m["findings"]) for m in results),
        wall_seconds=wall,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        sys_seconds=usage.ru_stime,
        peak_rss_mb=max(memory.peak_kb, usage.ru_maxrss) / 1024,  # kilobytes on Linux
        largest_process_mb=usage.ru_maxrss / 1024,
        own_rss_mb=memory.own_peak_kb / 1024,
        processes=max(1, memory.max_procs),
        main_cpu_seconds=memory.main_share()[0],
        worker_cpu_seconds=memory.main_share()[1],
        sim_cpu_seconds=sim_cpu,
        db_mb=db.stat().st_size / 2**20 if db is not None else 0.0,
        load=os.getloadavg()[0],
    )


def child_env(work: Path) -> dict[str, str]:
    """The environment of the simulator and the monitor: bytecode is cached (in ``work``, not
    in the source tree), as it is where the monitor is installed, so that a run does not
    compile every module it imports again."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env


# --- parse-only -------------------------------------------------------------------------------


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


# --- profile ----------------------------------------------------------------------------------

STAGES = (  # synchronous functions of the main thread, whose cumulative time cProfile gets right
    ("gzip decompress of tiles", "~", "<method 'decompress' of 'zlib.Decompress' objects>"),
    ("leaf hashes", "monitor/tlog/merkle.py", "leaf_hash"),
    ("verify_extension", "tlog/proofs.py", "verify_extension"),
    ("parse", "entries/parse.py", "parse_entry"),
    ("match (rules, chain checks)", "rules/engine.py", "evaluate"),
    ("  of which chain checks", "entries/parse.py", "with_chain_status"),
    ("index_all rows", "storage/batch.py", "from_record"),
    ("idle: awaiting network or SQLite", "~", "<method 'poll' of 'select.epoll' objects>"),
)


def profile_summary(path: Path, top: int = 12) -> str:
    """Where the monitor's main thread spends its time. SQLite itself runs in aiosqlite's
    thread, which cProfile does not see; and the store's coroutines switch greenlets, which
    confuses cumulative times: ``--breakdown`` measures the stages of a batch instead."""
    stats = pstats.Stats(str(path))
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]]
    raw = stats.stats  # type: ignore[attr-defined]
    total = stats.total_tt  # type: ignore[attr-defined]
    lines = [f"  total {total:.1f} s in the main thread (profiled, so slower than measured)"]
    lines.append("  by function (cumulative):")
    for title, file, func in STAGES:
        cum = max(
            (v[3] for (f, _, fn), v in raw.items() if fn == func and f.endswith(file)),
            default=None,
        )
        if cum is not None:
            lines.append(f"    {cum:7.1f} s {cum / total:6.1%}  {title}")
    lines.append("  by function (self time):")
    rows = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    for (file, line, func), (_, calls, tt, _, _) in rows:
        where = "" if file == "~" else f" ({file.rsplit('/', 2)[-2:][-1]}:{line})"
        lines.append(f"    {tt:7.1f} s {tt / total:6.1%}  {func}{where}  [{calls:,} calls]")
    return "\n".join(lines)


# --- the report -------------------------------------------------------------------------------


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
    w(f"v2 config: batch_size {batch}, index_all, {len(RULES)} watch rules, SQLite")
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


# --- main -------------------------------------------------------------------------------------


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
                    work / f"{label}.yaml", sim, work / f"{label}.db", v2_log(batch_size)
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
        doc = asdict(rep)
        for run_doc, r in zip(doc["v2"], rep.v2, strict=True):
            run_doc.update(rate=r.rate, cpu_per_10k=r.cpu_per_10k)
        if rep.v1 is not None:
            doc["v1"].update(rate=rep.v1.rate, cpu_per_10k=rep.v1.cpu_per_10k)
        args.json.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
