"""One backfill: ``tlog-monitor once`` in a child process, measured (wall and CPU time, peak
memory of its process tree, what serving it cost the simulator)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.daemon_sim import ROOT, BenchError, Sim
from bench.tree_memory import TreeMemory

RESULT_LINE = re.compile(
    r"^(?P<name>\S+): (?P<entries>\d+) entries, (?P<findings>\d+) new findings, "
    r"cursor (?P<cursor>\d+) of (?P<size>\d+)$"
)


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
